"""The op types of every exported ParC family next to its baseline's (portability check).

    python tools/deploy/op_report.py [--size 224] [--pairs deit swin parcnet convnext]
        [--impl gemm] [--json out.json]

Each pair is exported by the one exporter (what tools/deploy/export_onnx.py, the mmdeploy
pipeline and the deployment benchmark export: opset 17, batch 1, ParC as it ships, or with
--impl another exportable form set on every ParC layer). Printed per pair: the op types and
counts of both graphs, and what ``parc_mm.deploy.report.onnx_op_report`` flags as
non-portable (``DFT``, an attention ``Softmax``, the non-finite guard's ``IsNaN`` /
``IsInf`` / ``Where``, a ``Resize`` or input-shaped ``Reshape`` of a weight). Exit status 1
when a ParC graph is flagged.
"""
import argparse
import sys
import tempfile


def report(pairs, size: int, impl=None) -> dict:
    from parc_mm.analysis.onnx_benchmark import PAIRS, export_pair
    out = {}
    for key in pairs:
        name = PAIRS[key][0]
        with tempfile.TemporaryDirectory() as tmp:
            graphs = export_pair(name, size, tmp, impls=(impl, ))
            out[name] = {v: g['report'] for v, g in graphs.items()}
    return out


def main(argv=None):
    from parc_mm.analysis.onnx_benchmark import PAIRS
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--pairs', nargs='+', default=list(PAIRS), choices=list(PAIRS))
    p.add_argument('--size', type=int, default=224)
    from parc_mm.ops import impl_choices
    p.add_argument('--impl', default=None, choices=impl_choices(exportable=True),
                   help='a ParC form set on every layer (default: as it ships, auto)')
    p.add_argument('--json', default=None)
    a = p.parse_args(argv)
    if a.json:  # (refused before the work, not after it)
        from parc_mm.utils.fileio import check_result_file
        check_result_file(a.json)
    import warnings
    warnings.filterwarnings('ignore')
    rep = report(a.pairs, a.size, a.impl)
    bad = False
    for name, g in rep.items():
        base, parc = g['baseline'], g['parc']
        print(f'\n## {name} vs its baseline, {a.size}x{a.size} ({a.impl or "auto"})\n')
        print('| op | ParC | baseline |\n|---|---|---|')
        for op in sorted(set(base['ops']) | set(parc['ops'])):
            print(f'| {op} | {parc["ops"].get(op, 0)} | {base["ops"].get(op, 0)} |')
        print(f'| **nodes** | {sum(parc["ops"].values())} | {sum(base["ops"].values())} |')
        print(f'\nnon-portable: ParC {parc["non_portable"] or "none"}, baseline '
              f'{base["non_portable"] or "none"}')
        bad |= bool(parc['non_portable'])
    if a.json:
        from parc_mm.utils.fileio import write_result
        write_result(a.json, dict(size=a.size, impl=a.impl or 'auto', pairs=rep), 'op_report')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())

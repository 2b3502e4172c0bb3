"""Deployment speed: ParC models against their baselines in each runtime (ONNX Runtime fp32
and int8, OpenVINO, MNN, ncnn, ExecuTorch, LiteRT).

    python tools/analysis/benchmark_onnx.py                       # every pair at its sizes
    python tools/analysis/benchmark_onnx.py --runtimes onnxruntime openvino mnn ncnn \
        --pairs deit --sizes 224 512 --rounds 15 --threads 2 --json work_dirs/bench.json

Pairs (ParC model vs baseline): deit (ParC-DeiT-S vs DeiT-S), swin (ParC-Swin-T vs Swin-T),
parcnet (ParC-Net-S vs MobileViT-S), convnext (ParC-ConvNeXt-XT vs ConvNeXt-XT), parcnetv2
(ParCNetV2-XT vs its official direct form). Both are exported by the one exporter that
tools/deploy/export.py and the mmdeploy pipeline use (opset 17, batch 1; ParC in the
runtime's form, as tools/deploy/export.py --runtime gives it) and converted by the runtime's
own converter (ExecuTorch and LiteRT: lowered from the folded torch.export program); int8
(ONNX Runtime only) by its static QDQ quantization, calibrated on random inputs (speed only);
timed in interleaved rounds; ratios are medians of per-round ratios with 95 % bootstrap
intervals (``≈``: the interval holds 1.0). ``--impls``: other exportable ParC forms to time
beside the runtime's own, each set on every ParC layer (their own rows). A baseline a runtime
cannot convert is reported as not timed. For ncnn (tensors of rank 4 at most) patch merging is
exported in its rank-4 form for both models (as tools/deploy/export.py does) and the
baselines' attention too (parc_mm.deploy.rank4; the matrix says so). --profile adds ONNX
Runtime's (and OpenVINO's) profile of each pair: ms per op type and per module, to explain a
ratio.
"""
import argparse
import sys


def main(argv=None):
    from parc_mm.analysis.onnx_benchmark import PAIRS
    from parc_mm.deploy.runtimes import RUNTIMES
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--pairs', nargs='+', default=list(PAIRS), choices=list(PAIRS))
    p.add_argument('--sizes', nargs='+', type=int, default=None,
                   help='input sizes (square); default: each pair\'s own (224 / 256 / 512)')
    p.add_argument('--runtimes', nargs='+', default=['onnxruntime'], choices=list(RUNTIMES),
                   help='where to time each pair (default onnxruntime)')
    p.add_argument('--rounds', type=int, default=10)
    p.add_argument('--reps', type=int, default=5, help='runs per variant per round (median)')
    p.add_argument('--threads', type=int, default=2, help="the runtime's intra-op threads")
    from parc_mm.ops import impl_choices
    p.add_argument('--impls', nargs='+', default=[], choices=impl_choices(auto=False,
                                                                         exportable=True),
                   help="other export forms to time beside the runtime's own")
    p.add_argument('--no-int8', action='store_true')
    p.add_argument('--profile', action='store_true',
                   help="also profile each pair's graphs with the runtime's profiler (ONNX "
                        "Runtime's; OpenVINO's performance counters): ms per op type and per "
                        'module, baseline against ParC (where the time goes)')
    p.add_argument('--json', default=None, help='write every row (with its rounds) here')
    p.add_argument('--markdown', default=None,
                   help='write the speed table and the portability matrix here')
    a = p.parse_args(argv)
    import warnings

    import torch

    from parc_mm.analysis.onnx_benchmark import matrix, table, time_pair, to_json
    from parc_mm.deploy import runtimes
    warnings.filterwarnings('ignore')
    torch.set_num_threads(a.threads)
    for r in a.runtimes:
        runtimes.require(r)
    from parc_mm.utils.fileio import check_result_file
    for out in (a.json, a.markdown):  # refused before any work, not after it
        if out:
            check_result_file(out)
    rows, skipped = [], []
    for runtime in a.runtimes:
        for key in a.pairs:
            name, sizes = PAIRS[key]
            for size in a.sizes or sizes:
                try:
                    got = time_pair(name, size, rounds=a.rounds, reps=a.reps,
                                    threads=a.threads, int8=not a.no_int8,
                                    impls=[None, *a.impls], runtime=runtime)
                except RuntimeError as e:  # e.g. an attention baseline ncnn cannot take
                    skipped.append(dict(runtime=runtime, model=name, size=size, why=str(e)))
                    print(f'{runtime} {name} {size}: not timed: {e}', flush=True)
                    continue
                rows += got
                print(table(got).splitlines()[-1], flush=True)
    versions = {r: _version(r) for r in a.runtimes}
    print(f'\n{", ".join(f"{k} {v}" for k, v in versions.items())}, CPU, {a.threads} threads, '
          f'batch 1, {a.rounds} rounds x {a.reps} runs\n')
    print(table(rows))
    print()
    print(matrix(rows, skipped))
    extra = [r for r in rows if r.variant.startswith('parc-') and not r.variant.endswith('int8')]
    for r in extra:
        print(f'{r.runtime} {r.model} {r.size}: {r.variant} / baseline {r.ratio:.3f}x '
              f'[{r.ci[0]:.3f}, {r.ci[1]:.3f}], {r.ms:.1f} ms')
    profiles, prof_text = {}, []
    if a.profile:
        from parc_mm.analysis.onnx_benchmark import profile_pair, profile_table
        for runtime in [r for r in a.runtimes if r in ('onnxruntime', 'openvino')]:
            for key in a.pairs:
                name, sizes = PAIRS[key]
                for size in a.sizes or sizes:
                    prof = profile_pair(name, size, a.threads, runtime=runtime)
                    profiles[f'{runtime} {name} {size}'] = prof
                    prof_text.append(profile_table(name, size, prof))
                    print('\n' + prof_text[-1], flush=True)
    if a.json:
        from parc_mm.utils.fileio import write_result
        write_result(a.json, dict(versions=versions, threads=a.threads, rounds=a.rounds,
                                  reps=a.reps, impls=a.impls, rows=to_json(rows),
                                  skipped=skipped, profiles=profiles), 'benchmark_onnx')
    if a.markdown:
        from parc_mm.utils.fileio import write_text_result
        head = (f'{", ".join(f"{k} {v}" for k, v in versions.items())}; CPU, {a.threads} '
                f'threads, batch 1, {a.rounds} rounds x {a.reps} runs; command: '
                f'`python tools/analysis/benchmark_onnx.py {" ".join(argv or sys.argv[1:])}`')
        write_text_result(a.markdown, '\n\n'.join([head, table(rows), matrix(rows, skipped)]
                                                  + prof_text), 'benchmark_onnx')
    return 0


def _version(runtime: str) -> str:
    import importlib.metadata as md
    dist = {'mnn': 'MNN'}.get(runtime, runtime)
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return '?'


if __name__ == '__main__':
    sys.exit(main())

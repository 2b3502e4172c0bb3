"""Deployment speed in ONNX Runtime: ParC models against their baselines, fp32 and int8.

    python tools/analysis/benchmark_onnx.py                       # every pair at its sizes
    python tools/analysis/benchmark_onnx.py --pairs deit --sizes 224 512 --rounds 15 \
        --impls direct gemm --threads 2 --json work_dirs/onnx_bench.json

Pairs (ParC model vs baseline): deit (ParC-DeiT-S vs DeiT-S), swin (ParC-Swin-T vs Swin-T),
parcnet (ParC-Net-S vs MobileViT-S), convnext (ParC-ConvNeXt-XT vs ConvNeXt-XT), parcnetv2
(ParCNetV2-XT vs its official direct form). Both are exported by the one exporter that
tools/deploy/export_onnx.py and the mmdeploy pipeline use (opset 17, batch 1; ParC as it ships),
int8 by ONNX Runtime's static QDQ quantization (calibrated on random inputs: speed only),
timed in interleaved rounds; ratios are medians of per-round ratios with 95 % bootstrap
intervals (``≈``: the interval holds 1.0). ``--impls``: other exportable ParC forms to time
beside the shipped one (``auto``), each set on every ParC layer (their own rows).
"""
import argparse
import sys


def main(argv=None):
    from parc_mm.analysis.onnx_benchmark import PAIRS
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--pairs', nargs='+', default=list(PAIRS), choices=list(PAIRS))
    p.add_argument('--sizes', nargs='+', type=int, default=None,
                   help='input sizes (square); default: each pair\'s own (224 / 256 / 512)')
    p.add_argument('--rounds', type=int, default=10)
    p.add_argument('--reps', type=int, default=5, help='runs per variant per round (median)')
    p.add_argument('--threads', type=int, default=2, help="ONNX Runtime's intra-op threads")
    from parc_mm.ops import impl_choices
    p.add_argument('--impls', nargs='+', default=[], choices=impl_choices(auto=False,
                                                                         exportable=True),
                   help='other export forms to time beside the shipped one (auto)')
    p.add_argument('--no-int8', action='store_true')
    p.add_argument('--json', default=None, help='write every row (with its rounds) here')
    a = p.parse_args(argv)
    import warnings

    import torch

    from parc_mm.analysis.onnx_benchmark import table, time_pair, to_json
    warnings.filterwarnings('ignore')
    torch.set_num_threads(a.threads)
    rows = []
    for key in a.pairs:
        name, sizes = PAIRS[key]
        for size in a.sizes or sizes:
            got = time_pair(name, size, rounds=a.rounds, reps=a.reps, threads=a.threads,
                            int8=not a.no_int8, impls=[None, *a.impls])
            rows += got
            print(table(got).splitlines()[-1], flush=True)
    import onnxruntime
    print(f'\nONNX Runtime {onnxruntime.__version__}, CPU, {a.threads} threads, batch 1, '
          f'{a.rounds} rounds x {a.reps} runs\n')
    print(table(rows))
    extra = [r for r in rows if r.variant.startswith('parc-') and not r.variant.endswith('int8')]
    for r in extra:
        print(f'{r.model} {r.size}: {r.variant} / baseline {r.ratio:.3f}x '
              f'[{r.ci[0]:.3f}, {r.ci[1]:.3f}], {r.ms:.1f} ms')
    if a.json:
        from parc_mm.utils.fileio import write_result
        write_result(a.json, dict(onnxruntime=onnxruntime.__version__, threads=a.threads,
                                  rounds=a.rounds, reps=a.reps, impls=['auto', *a.impls],
                                  rows=to_json(rows)), 'benchmark_onnx')
    return 0


if __name__ == '__main__':
    sys.exit(main())

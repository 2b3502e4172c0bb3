"""Params and FLOPs of any config's model (ParC counted by its implementation, FFT included).

    python tools/analysis/get_flops.py CONFIG [--shape 224 | --shape 800 1333] [--impl direct]
"""
import argparse


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--shape', type=int, nargs='+', default=None,
                   help='input H [W]; default 224 (cls), 512 (seg), 800 1333 (det)')
    from parc_mm.ops import impl_choices
    p.add_argument('--impl', default='direct', choices=impl_choices(),
                   help='ParC implementation to count (direct = the paper convention)')
    a = p.parse_args(argv)
    from parc_mm.analysis.complexity import build_from_config, complexity
    from parc_mm.ops import set_impl
    model, task, _ = build_from_config(a.config)
    set_impl(model, a.impl)
    from parc_mm.apis.tasks import TASKS
    shape = a.shape or list(TASKS[task].test_size)
    h, w = (shape[0], shape[0]) if len(shape) == 1 else shape[:2]
    r = complexity(model, (3, h, w), task)
    print(f'config: {a.config}\ninput: 3x{h}x{w}  ParC impl: {a.impl}\n'
          f'params: {r["params"] / 1e6:.3f} M\nflops: {r["flops"] / 1e9:.3f} G '
          f'(ParC layers: {r["parc_flops"] / 1e6:.2f} M)')
    return r


if __name__ == '__main__':
    main()

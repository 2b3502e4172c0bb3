"""Benchmark the ParC implementations against depthwise 3x3 / 7x7 convs, in one process.

    python tools/analysis/benchmark_parc.py                  # ConvNeXt-T stage shapes (det, seg)
    python tools/analysis/benchmark_parc.py --sweep          # crossover sweep behind 'auto'
    python tools/analysis/benchmark_parc.py --linear         # the linear mode (ParCNetV2)
    python tools/analysis/benchmark_parc.py --device cuda --dtype bf16 --compile
    python tools/analysis/benchmark_parc.py --backbones [--backbone-size 512]  # ParC-Net-S
    python tools/analysis/benchmark_parc.py --models all --inputs 224 det --rounds 10 \
        [--json out.json]  # whole backbones vs baselines, interleaved, with 95% intervals

Shapes are the stage shapes of ConvNeXt-T at an 800x1344 detection input (det s1-s4) and a
512x512 segmentation crop (seg s1-s4). On CPU they are scaled down by ``--scale`` (default
0.5 on CPU, 1 on CUDA) along H and W. Times are medians in ms; ratios are against dw 7x7
measured in the same run.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn

from parc_mm.models.layers import ParCHW
from parc_mm.ops import impl_choices, select_impl  # noqa: E402
from parc_mm.ops.registry import get_impl

STAGES: List[Tuple[str, int, int, int]] = [
    ('det s1', 96, 200, 334), ('det s2', 192, 100, 167), ('det s3', 384, 50, 84),
    ('det s4', 768, 25, 42), ('seg s1', 96, 128, 128), ('seg s2', 192, 64, 64),
    ('seg s3', 384, 32, 32), ('seg s4', 768, 16, 16)
]
DTYPES = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def timeit(fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def _make_modules(c: int, h: int, w: int, device, dense: bool = False) -> Dict[str, nn.Module]:
    mods: Dict[str, nn.Module] = {
        'dw3x3': nn.Conv2d(c, c, 3, padding=1, groups=c),
        'dw7x7': nn.Conv2d(c, c, 7, padding=3, groups=c),
    }
    for impl in impl_choices():
        mods[impl] = ParCHW(c, (h, w), impl=impl, dense=dense)
    return {k: v.to(device) for k, v in mods.items()}


def bench_shape(c, h, w, batch, device, dtype, reps, backward, compile_mode=False,
                dense=False) -> Dict[str, float]:
    mods = _make_modules(c, h, w, device, dense)
    x = torch.randn(batch, c, h, w, device=device)
    res = {}
    amp = dtype != torch.float32
    for name, m in mods.items():
        if compile_mode:
            m = torch.compile(m)
        xi = x.clone().requires_grad_(backward)

        def run():
            with torch.autocast(device.type, dtype=dtype, enabled=amp):
                y = m(xi)
            if backward:
                y.float().sum().backward()
            return y

        if not backward:
            with torch.no_grad():
                res[name] = timeit(run, device, reps)
        else:
            res[name] = timeit(run, device, reps)
    return res


def ran_by_auto(c, h, w, batch, device, dtype, backward) -> str:
    """What ``auto`` actually ran for the H / W halves (the dtype the conv runs in under
    autocast, the grad mode of the row): recorded from one call, not re-derived."""
    from parc_mm.ops.functional import recorded_impls
    m = ParCHW(c, (h, w), impl='auto').to(device)
    x = torch.randn(batch, c, h, w, device=device, requires_grad=backward)
    with recorded_impls() as ran, torch.set_grad_enabled(backward), \
            torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        m(x)
    return '/'.join(ran)


def stage_table(args, device, dtype) -> None:
    scale = args.scale if args.scale else (1.0 if device.type == 'cuda' else 0.5)
    cols = ['dw3x3', 'dw7x7', *impl_choices()]
    print(f'\n### ParC vs depthwise convs: {device}, {args.dtype}, batch {args.batch}, '
          f'scale {scale}, torch {torch.__version__}, threads {torch.get_num_threads()}'
          f'{", compiled" if args.compile else ""}\n')
    for backward in ([False, True] if args.backward else [False]):
        print(f'**{"forward + backward" if backward else "forward"}** (median ms; '
              'x = ratio to dw7x7; auto picks per half: H-impl / W-impl)\n')
        print('| shape (C x H x W) | ' + ' | '.join(cols) + ' | auto chose | best ParC |')
        print('|---' * (len(cols) + 3) + '|')
        for label, c, h, w in STAGES:
            h, w = max(1, round(h * scale)), max(1, round(w * scale))
            r = bench_shape(c, h, w, args.batch, device, dtype, args.reps, backward,
                            args.compile)
            chose = ran_by_auto(c, h, w, args.batch, device, dtype, backward)
            best = min(impl_choices(auto=False), key=r.get)
            cells = [f'{r[k]:.3f}' if k in ('dw3x3', 'dw7x7') else
                     f'{r[k]:.3f} ({r[k] / r["dw7x7"]:.1f}x)' for k in cols]
            print(f'| {label} {c}x{h}x{w} | ' + ' | '.join(cells) + f' | {chose} | {best} |')
            sys.stdout.flush()
        print()


# (label, channels, H, W, kernel): the oversized convs of ParCNetV2-XT / T at 224 and of
# ParCNetV2-XT at a 800x1312 detection input (the official kernels: 2s - 1 at 224)
LINEAR_SHAPES: List[Tuple[str, int, int, int, int]] = [
    ('XT 224 s1', 48, 56, 56, 111), ('XT 224 s2', 96, 28, 28, 55),
    ('XT 224 s3', 192, 14, 14, 27), ('XT 224 s4', 320, 7, 7, 13),
    ('T 224 s1', 64, 56, 56, 111), ('T 224 s3', 320, 14, 14, 27),
    ('XT det s1', 48, 200, 328, 111), ('XT det s2', 96, 100, 164, 55),
    ('XT det s3', 192, 50, 82, 27), ('XT det s4', 320, 25, 41, 13),
]


def linear_table(args, device, dtype) -> None:
    """The linear (oversized, zero-padded) mode per direction: eval without and with the
    kernel cache (inference mode), forward + backward; the data behind its ``auto`` rule."""
    from parc_mm.ops import linear_conv
    from parc_mm.ops.functional import recorded_impls
    impls = tuple(n for n in impl_choices(auto=False) if get_impl(n).linear is not None)
    print(f'\n### linear mode (ParCNetV2 oversized convs): {device}, batch {args.batch}, '
          f'torch {torch.__version__}, threads {torch.get_num_threads()} (median ms; '
          '"official" = direct)\n')
    print('| shape | dir | eval direct / fft / gemm | eval cached gemm / fft | '
          'train direct / fft / gemm | auto: eval / cached / train |')
    print('|---|---|---|---|---|---|')
    for label, c, h, w, k in LINEAR_SHAPES:
        for d in ('H', 'W'):
            x = torch.randn(args.batch, c, h, w, device=device)
            wt = torch.randn((c, 1, k, 1) if d == 'H' else (c, 1, 1, k), device=device)
            ev, ca, tr, auto = {}, {}, {}, []
            with torch.no_grad():
                for i in impls:
                    ev[i] = timeit(lambda i=i: linear_conv(x, wt, None, d, c, i), device,
                                   args.reps)
                for i in ('gemm', 'fft'):
                    cache: dict = {}
                    ca[i] = timeit(lambda i=i, cache=cache: linear_conv(
                        x, wt, None, d, c, i, kernel_cache=cache), device, args.reps)
                for cache in (None, {}):
                    with recorded_impls() as ran:
                        linear_conv(x, wt, None, d, c, kernel_cache=cache)
                    auto.append(ran[-1])
            xg, wg = x.clone().requires_grad_(), wt.clone().requires_grad_()
            for i in impls:
                tr[i] = timeit(lambda i=i: linear_conv(xg, wg, None, d, c, i).sum().backward(),
                               device, max(2, args.reps // 2))
            with recorded_impls() as ran:
                linear_conv(xg, wg, None, d, c)
            auto.append(ran[-1])

            def cells(r):
                best = min(r, key=r.get)
                return ' / '.join(f'**{r[i]:.2f}**' if i == best else f'{r[i]:.2f}' for i in r)

            print(f'| {label} {c}x{h}x{w} K{k} | {d} | {cells(ev)} | {cells(ca)} | '
                  f'{cells(tr)} | {" / ".join(auto)} |', flush=True)


def sweep(args, device, dtype) -> None:
    """Fastest impl per global length n (square maps), depthwise and dense: the data
    behind ``select_impl``."""
    print(f'\n### crossover sweep: {device}, {args.dtype}, batch {args.batch} (forward ms)\n')
    print('| kind | C | n | direct | fft | gemm | fastest | auto |')
    print('|---|---|---|---|---|---|---|---|')
    for dense, chans in ((False, (96, 384)), (True, (128, 512))):
        for c in chans:
            for n in (7, 14, 24, 32, 48, 64, 96, 128):
                if dense and n > 64:
                    continue
                r = bench_shape(c, n, n, args.batch, device, dtype, args.reps, False,
                                dense=dense)
                fastest = min(impl_choices(auto=False), key=r.get)
                auto = select_impl(n, n, c // 2, device, dtype, dense=dense)
                print(f'| {"dense" if dense else "dw"} | {c} | {n} | {r["direct"]:.3f} | '
                      f'{r["fft"]:.3f} | {r["gemm"]:.3f} | {fastest} | {auto} |')
                sys.stdout.flush()


def neck_table(args, device, dtype) -> None:
    """FPN vs ParCFPN forward (+backward) at the pyramid of an H x W input, ParC-ConvNeXt-XT
    channels, in one process."""
    from mmdet.models.necks import FPN

    from parc_mm.models.necks import ParCFPN
    h, w = args.neck_size
    chans = [48, 96, 192, 384]
    xs = [torch.randn(args.batch, c, -(-h // s), -(-w // s), device=device)
          for c, s in zip(chans, (4, 8, 16, 32))]
    kw = dict(in_channels=chans, out_channels=256, num_outs=5)
    print(f'\n### FPN vs ParCFPN: {device}, input {h}x{w}, batch {args.batch}, {args.dtype}\n')
    print('| neck | params (M) | forward ms | forward+backward ms |')
    print('|---|---|---|---|')
    base = None
    for name, m in (('FPN', FPN(**kw)), ('ParCFPN', ParCFPN(parc_cfg=dict(img_size=(h, w)), **kw))):
        m = m.to(device)
        n = sum(p.numel() for p in m.parameters()) / 1e6
        amp = dtype != torch.float32

        def fwd(bwd):
            with torch.autocast(device.type, dtype=dtype, enabled=amp):
                outs = m([x.requires_grad_(bwd) for x in xs])
            if bwd:
                sum(o.float().sum() for o in outs).backward()

        with torch.no_grad():
            f = timeit(lambda: fwd(False), device, args.reps)
        fb = timeit(lambda: fwd(True), device, args.reps)
        base = base or (f, fb)
        print(f'| {name} | {n:.3f} | {f:.2f} ({f / base[0]:.2f}x) | '
              f'{fb:.2f} ({fb / base[1]:.2f}x) |')


def backbone_table(args, device, dtype) -> None:
    """ParC-Net-S with each ParC implementation vs MobileViT-S (mmpretrain), whole backbone,
    forward (+backward), in one process; ratios against MobileViT-S."""
    from mmpretrain.models.backbones import MobileViT

    from parc_mm.models import ParCNet
    from parc_mm.ops import set_impl
    s = args.backbone_size
    # training-mode BN after the channel attention's global pooling needs >1 sample
    b = max(args.batch, 2)
    x = torch.randn(b, 3, s, s, device=device)
    print(f'\n### ParC-Net-S vs MobileViT-S: {device}, input {s}x{s}, batch {b}, '
          f'{args.dtype}\n')
    print('| backbone | params (M) | forward ms | forward+backward ms |')
    print('|---|---|---|---|')
    models = [('MobileViT-S', MobileViT(arch='small', out_indices=(4, )))]
    for impl in impl_choices():
        models.append((f'ParC-Net-S ({impl})', set_impl(ParCNet('s'), impl)))
    base = None
    for name, m in models:
        m = m.to(device)
        m.train()  # (mmpretrain's MobileViT.train returns None)
        n = sum(p.numel() for p in m.parameters()) / 1e6
        if args.compile:
            m = torch.compile(m)
        amp = dtype != torch.float32

        def fwd(bwd):
            with torch.autocast(device.type, dtype=dtype, enabled=amp):
                out = m(x)[-1]
            if bwd:
                out.float().sum().backward()

        with torch.no_grad():
            f = timeit(lambda: fwd(False), device, args.reps)
        fb = timeit(lambda: fwd(True), device, args.reps) if args.backward else float('nan')
        base = base or (f, fb)
        print(f'| {name} | {n:.3f} | {f:.2f} ({f / base[0]:.2f}x) | '
              f'{fb:.2f} ({fb / base[1]:.2f}x) |')
        sys.stdout.flush()


def models_table(args, device, dtype) -> None:
    """Whole ParC backbones vs their baselines (parc_mm.analysis.benchmark): every impl and auto,
    interleaved rounds, median ratio with a 95% bootstrap interval, training memory."""

    from parc_mm.analysis.benchmark import INPUTS, MODELS, summary, table, to_json
    names = list(MODELS) if args.models == ['all'] else args.models
    unknown = set(names) - set(MODELS)
    if unknown:
        raise SystemExit(f'unknown --models {sorted(unknown)}; choose from {list(MODELS)}')
    scale = args.scale if args.scale is not None else (1.0 if device.type == 'cuda' else 0.5)
    rows = []
    for name in names:
        for inp in args.inputs:
            h, w = INPUTS[inp]
            if inp != '224':  # dense-prediction inputs are scaled on CPU
                h, w = int(h * scale) // 32 * 32, int(w * scale) // 32 * 32
            rows += run_models(name, (h, w), device, dtype, args)
            print(table([r for r in rows if r.model == name and r.input == (h, w)]) + '\n',
                  flush=True)
    print(f'\n### all rows ({device}, {args.dtype}, batch {args.batch}, {args.rounds} rounds, '
          f'compile={args.compile})\n')
    print(table(rows))
    print('\n### summary: auto against the baseline and against the best fixed impl\n')
    print(summary(rows))
    if args.json:
        from parc_mm.utils.fileio import write_result
        write_result(args.json, dict(device=str(device), dtype=args.dtype, batch=args.batch,
                                     rounds=args.rounds, compile=args.compile,
                                     torch=torch.__version__, rows=to_json(rows)),
                     'benchmark_parc')
        print(f'wrote {args.json}')


def run_models(name, size, device, dtype, args):
    from parc_mm.analysis.benchmark import run_model
    modes = ['fwd', 'fwd+bwd'] if args.backward else ['fwd']
    return run_model(name, size, device, dtype, modes=modes, rounds=args.rounds,
                     batch=args.batch, compile_=args.compile, impls=args.impls)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--dtype', default='fp32', choices=sorted(DTYPES))
    p.add_argument('--batch', type=int, default=None, help='default: 2 on CUDA, 1 on CPU')
    p.add_argument('--scale', type=float, default=None, help='spatial scale of the shapes')
    p.add_argument('--reps', type=int, default=None, help='default: 20 on CUDA, 5 on CPU')
    p.add_argument('--no-backward', dest='backward', action='store_false')
    p.add_argument('--compile', action='store_true', help='torch.compile every module')
    p.add_argument('--sweep', action='store_true', help='run the crossover sweep instead')
    p.add_argument('--linear', action='store_true',
                   help="the linear mode's implementations on ParCNetV2's shapes instead")
    p.add_argument('--neck', action='store_true', help='FPN vs ParCFPN instead')
    p.add_argument('--neck-size', type=int, nargs=2, default=[800, 1333])
    p.add_argument('--models', nargs='+', default=None,
                   help="whole backbones vs baselines: 'all' or names of "
                        'parc_mm.analysis.benchmark.MODELS')
    p.add_argument('--inputs', nargs='+', default=['224', 'det'], choices=['224', '512', 'det'])
    p.add_argument('--impls', nargs='+', default=list(impl_choices()),
                   help="variants of each ParC model (--models): impls, and the ablations "
                        "'auto-nocache' (eval inference caches off) / 'auto-noguard' (the "
                        "non-finite guard of direct / gemm off)")
    p.add_argument('--rounds', type=int, default=10, help='interleaved rounds (--models)')
    p.add_argument('--json', default=None, help='also write the --models rows as JSON')
    p.add_argument('--backbones', action='store_true',
                   help='ParC-Net-S (each impl) vs MobileViT-S instead')
    p.add_argument('--backbone-size', type=int, default=256)
    args = p.parse_args(argv)
    if args.json:  # (refused before the work, not after it)
        from parc_mm.utils.fileio import check_result_file
        check_result_file(args.json)
    device = torch.device(args.device)
    if args.batch is None:
        args.batch = 2 if device.type == 'cuda' else 1
    if args.reps is None:
        args.reps = 20 if device.type == 'cuda' else 5
    dtype = DTYPES[args.dtype]
    torch.manual_seed(0)
    if args.sweep:
        sweep(args, device, dtype)
    elif args.linear:
        linear_table(args, device, dtype)
    elif args.neck:
        neck_table(args, device, dtype)
    elif args.backbones:
        backbone_table(args, device, dtype)
    elif args.models:
        models_table(args, device, dtype)
    else:
        stage_table(args, device, dtype)


if __name__ == '__main__':
    main()

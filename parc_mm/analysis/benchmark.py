"""Model-level speed of ParC backbones against their baselines, with honest statistics.

Every ParC backbone is timed next to its baseline in the same process, in *interleaved*
rounds (each round times the baseline and every variant once, in turn), so that drifts of the
machine hit all of them alike. Each round gives a ratio variant / baseline; the table reports
the median ratio with a 95% bootstrap confidence interval over the rounds, and says ``≈`` when
the interval holds 1.0 (the two are not distinguishable at this many rounds). Training memory
is the bytes autograd saves for the backward pass (exact and deterministic on any device);
on CUDA the peak allocation is reported as well.
"""
from __future__ import annotations

import contextlib
import random
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from parc_mm.ops.registry import impl_names


def _convnext(arch: str, blocks: str):
    from parc_mm.models import ParCConvNeXt
    return lambda: ParCConvNeXt(arch=arch, parc_cfg=dict(blocks=blocks), out_indices=[3],
                                gap_before_final_norm=False)


def _resnet(blocks: str):
    from parc_mm.models import ParCResNet
    return lambda: ParCResNet(depth=50, parc_cfg=dict(blocks=blocks), out_indices=(3, ))


def _mv2(blocks: str):
    from parc_mm.models import ParCMobileNetV2
    return lambda: ParCMobileNetV2(parc_cfg=dict(blocks=blocks), out_indices=(7, ))


def _parcnet():
    from parc_mm.models import ParCNet
    return lambda: ParCNet('s', out_indices=(4, ))


def _mobilevit():
    from mmpretrain.models.backbones import MobileViT
    return lambda: MobileViT(arch='small', out_indices=(4, ))


def _deit(parc: bool):
    from mmpretrain.models import VisionTransformer

    from parc_mm.models import ParCViT
    cls = ParCViT if parc else VisionTransformer
    return lambda: cls(arch='deit-small', out_type='featmap', out_indices=[11])


def _swin(parc: bool):
    from mmpretrain.models import SwinTransformer

    from parc_mm.models import ParCSwin
    cls = ParCSwin if parc else SwinTransformer
    return lambda: cls(arch='tiny', out_indices=(3, ))


def _v2(arch: str, impl: str = 'auto'):
    from parc_mm.models import ParCNetV2
    return lambda: ParCNetV2(arch=arch, parc_cfg=dict(impl=impl), out_indices=(3, ),
                             gap_before_final_norm=False)


# name -> (ParC model, baseline): builders
MODELS: Dict[str, Tuple[Callable, Callable]] = {
    'ParC-ConvNeXt-XT (paper)': (_convnext('xt', 'paper'), _convnext('xt', 'none')),
    'ParC-ConvNeXt-XT (all)': (_convnext('xt', 'all'), _convnext('xt', 'none')),
    'ParC-ConvNeXt-T (paper)': (_convnext('tiny', 'paper'), _convnext('tiny', 'none')),
    'ParC-ConvNeXt-T (all)': (_convnext('tiny', 'all'), _convnext('tiny', 'none')),
    'ParC-ResNet50 (paper)': (_resnet('paper'), _resnet('none')),
    'ParC-MobileNetV2 (paper)': (_mv2('paper'), _mv2('none')),
    'ParC-Net-S': (_parcnet(), _mobilevit()),
    # the ViT -> ConvNet conversions against the attention models they replace
    'ParC-DeiT-S': (_deit(True), _deit(False)),
    'ParC-Swin-T': (_swin(True), _swin(False)),
    # ParCNetV2 against itself computed as the official code does (direct padded convs with
    # the 111 / 55 / 27 / 13-tap kernels): what the linear mode's FFT / GEMM buy
    'ParCNetV2-XT (vs official direct)': (_v2('xt'), _v2('xt', 'direct')),
    'ParCNetV2-T (vs official direct)': (_v2('tiny'), _v2('tiny', 'direct')),
}
INPUTS = {'224': (224, 224), '512': (512, 512), 'det': (800, 1333)}


@dataclass
class Row:
    model: str
    input: Tuple[int, int]
    mode: str  # 'fwd' | 'fwd+bwd'
    variant: str  # 'baseline' | 'auto' | 'direct' | 'fft' | 'gemm' | an ABLATIONS key
    ms: float  # median over rounds
    ratio: float = 1.0  # median of the per-round ratios to the baseline
    ci: Tuple[float, float] = (1.0, 1.0)
    saved_mb: Optional[float] = None  # bytes autograd saves for backward (fwd+bwd only)
    peak_mb: Optional[float] = None  # CUDA peak allocation
    rounds: List[float] = field(default_factory=list)
    # fwd rows: ms inside the ParC layers' forward (CPU; fused paths that bypass the layers,
    # e.g. the token mixer's 2-D FFT, are not counted), median over rounds
    parc_ms: Optional[float] = None

    @property
    def distinguishable(self) -> bool:
        return not self.ci[0] <= 1.0 <= self.ci[1]


def bootstrap_ci(values: Sequence[float], n: int = 2000, seed: int = 0) -> Tuple[float, float]:
    """95% percentile-bootstrap interval of the median of ``values``."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the tensors autograd saves for the backward of ``fn()`` (each storage once)."""
    seen, total = set(), 0

    def pack(t):
        nonlocal total
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return total


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize()


def _no_inference_cache():
    # forward rows run the ParC nets in inference mode (parc_mm.ops.inference_mode) but this
    # one: the model as a validation loop inside training runs it, every call from the params
    return contextlib.nullcontext()


def _no_finite_guard():
    from unittest import mock
    return mock.patch('parc_mm.ops.functional._nan_where_not_finite', lambda y, *a: y)


# ablation variants of 'auto': what a feature costs or saves, timed in the same rounds
ABLATIONS: Dict[str, Callable] = {'auto-nocache': _no_inference_cache,
                                  'auto-noguard': _no_finite_guard}


_PARC_CLOCK = [0.0]


def _parc_timers(nets: Dict[str, nn.Module]) -> list:
    """Forward hooks adding the time spent inside each ParC layer to ``_PARC_CLOCK``."""
    from parc_mm.ops.export import parc_layers
    hooks = []
    for net in nets.values():
        for _, layer in parc_layers(net):
            def pre(mod, args):
                mod._parc_t0 = time.perf_counter()

            def post(mod, args, out):
                _PARC_CLOCK[0] += time.perf_counter() - mod._parc_t0

            hooks += [layer.register_forward_pre_hook(pre), layer.register_forward_hook(post)]
    return hooks


def run_model(name: str, size: Tuple[int, int], device: torch.device, dtype: torch.dtype,
              modes: Sequence[str] = ('fwd', 'fwd+bwd'), rounds: int = 10, batch: int = 1,
              compile_: bool = False, impls: Optional[Sequence[str]] = None,
              warmup: int = 2) -> List[Row]:
    """Time one ParC model (each impl) against its baseline, interleaved; see the module doc."""
    from parc_mm.ops import impl_choices, inference_mode, set_impl
    impls = impl_choices() if impls is None else impls
    build_parc, build_base = MODELS[name]
    torch.manual_seed(0)
    nets = {'baseline': build_base()}
    for impl in impls:
        torch.manual_seed(0)
        nets[impl] = set_impl(build_parc(), 'auto' if impl in ABLATIONS else impl)
    amp = dtype != torch.float32
    x = torch.randn(batch, 3, *size, device=device)
    rows = []
    for mode in modes:
        train = mode != 'fwd'
        calls = {}
        for v, net in nets.items():
            net.to(device)
            net.train(train)  # (mmpretrain's MobileViT.train returns None)
            if not train and v not in ('baseline', 'auto-nocache'):
                inference_mode(net, True)
            if train and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                             for m in net.modules()) and batch == 1:
                net.apply(lambda m: m.eval() if isinstance(
                    m, nn.modules.batchnorm._BatchNorm) else None)  # batch 1: BN stats frozen
            f = torch.compile(net) if compile_ else net

            def call(f=f, train=train, v=v):
                ablate = ABLATIONS[v]() if v in ABLATIONS else contextlib.nullcontext()
                with ablate, torch.autocast(device.type, dtype=dtype, enabled=amp):
                    out = f(x)[-1]
                if train:
                    out.float().mean().backward()

            calls[v] = call
        times: Dict[str, List[float]] = {v: [] for v in calls}
        parc_times: Dict[str, List[float]] = {v: [] for v in calls}
        hooks = [] if train or device.type != 'cpu' else _parc_timers(nets)
        for _ in range(warmup):
            for v, c in calls.items():
                with torch.set_grad_enabled(train):
                    c()
        for _ in range(rounds):
            for v, c in calls.items():  # interleaved: every variant once per round
                _sync(device)
                _PARC_CLOCK[0] = 0.0
                t = time.perf_counter()
                with torch.set_grad_enabled(train):
                    c()
                _sync(device)
                times[v].append((time.perf_counter() - t) * 1e3)
                parc_times[v].append(_PARC_CLOCK[0] * 1e3)
        for h in hooks:
            h.remove()
        base = times['baseline']
        for v in calls:
            ratios = [a / b for a, b in zip(times[v], base)]
            row = Row(name, size, mode, v, statistics.median(times[v]),
                      statistics.median(ratios), bootstrap_ci(ratios), rounds=times[v])
            if hooks:
                row.parc_ms = statistics.median(parc_times[v])
            if train:
                net = nets[v]

                def fwd(net=net):
                    with torch.autocast(device.type, dtype=dtype, enabled=amp):
                        return net(x)[-1]

                row.saved_mb = saved_bytes(fwd) / 2**20
                if device.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats(device)
                    calls[v]()
                    row.peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
            rows.append(row)
    return rows


def _ratio(median: float, ci: Tuple[float, float]) -> str:
    """``1.023x [0.981, 1.060] ≈`` (``≈``: the interval holds 1.0)."""
    return f'{median:.3f}x [{ci[0]:.3f}, {ci[1]:.3f}]' + (' ≈' if ci[0] <= 1.0 <= ci[1] else '')


def table(rows: List[Row]) -> str:
    """Markdown: one line per (model, input, mode, variant)."""
    out = ['| model | input | mode | variant | ms | ratio to baseline [95% CI] | '
           'saved for backward MB (ratio) | in ParC layers ms |',
           '|---|---|---|---|---|---|---|---|']
    base_mem = {(r.model, r.input, r.mode): r.saved_mb for r in rows if r.variant == 'baseline'}
    for r in rows:
        if r.variant == 'baseline':
            ratio = '1 (baseline)'
        else:
            ratio = _ratio(r.ratio, r.ci)
        mem = '-'
        if r.saved_mb is not None:
            b = base_mem[(r.model, r.input, r.mode)]
            mem = f'{r.saved_mb:.1f} ({r.saved_mb / b:.3f}x)' if b else f'{r.saved_mb:.1f}'
        parc = '-' if r.parc_ms is None else f'{r.parc_ms:.1f}'
        out.append(f'| {r.model} | {r.input[0]}x{r.input[1]} | {r.mode} | {r.variant} | '
                   f'{r.ms:.2f} | {ratio} | {mem} | {parc} |')
    return '\n'.join(out)


def summary(rows: List[Row]) -> str:
    """Markdown, one line per (model, input, mode): ``auto`` against the baseline, the best
    fixed impl, ``auto`` against that impl (per-round ratios, 95% interval: is auto
    distinguishably slower than the best choice in hindsight?), the ablations, memory."""
    out = ['| model | input | mode | baseline ms | auto / baseline [95% CI] | best fixed impl / '
           'baseline | auto / best fixed [95% CI] | auto, caches off | auto, guard off | '
           'saved for backward (auto / baseline) |', '|---|---|---|---|---|---|---|---|---|---|']

    groups: Dict[tuple, Dict[str, Row]] = {}
    for r in rows:
        groups.setdefault((r.model, r.input, r.mode), {})[r.variant] = r
    for (model, inp, mode), g in groups.items():
        base, auto = g.get('baseline'), g.get('auto')
        if base is None or auto is None:
            continue
        fixed = [r for v, r in g.items() if v in impl_names()]
        best = min(fixed, key=lambda r: r.ratio) if fixed else None
        if best:
            per_round = [a / b for a, b in zip(auto.rounds, best.rounds)]
            vs_best = _ratio(statistics.median(per_round), bootstrap_ci(per_round))
        else:
            vs_best = '-'
        best_s = f'{best.variant} {best.ratio:.3f}x' if best else '-'
        abl = [f'{g[v].ratio:.3f}x' if v in g else '-' for v in ('auto-nocache', 'auto-noguard')]
        mem = (f'{auto.saved_mb / base.saved_mb:.3f}x' if auto.saved_mb and base.saved_mb
               else '-')
        out.append(f'| {model} | {inp[0]}x{inp[1]} | {mode} | {base.ms:.1f} | '
                   f'{_ratio(auto.ratio, auto.ci)} | {best_s} | '
                   f'{vs_best} | {abl[0]} | {abl[1]} | {mem} |')
    return '\n'.join(out)


def to_json(rows: List[Row]) -> List[dict]:
    return [dict(asdict(r), distinguishable=r.distinguishable) for r in rows]

"""The one place a ParC implementation is chosen.

Every call resolves its ``impl`` here, in this order:

1. **explicit** (a layer's or call's ``impl`` other than ``'auto'``): run as given, after
   checking that it runs on the call's device and dtype, has the call's boundary mode and,
   inside an export for another runtime, is exportable; otherwise refused with the fix
   (never run silently somewhere it cannot);
2. **global** (:func:`set_default_impl` / :func:`parc_impl`): what every ``auto`` runs, where
   it can (a default that cannot run the call, or export, falls through);
3. **export** (inside ``torch.onnx.export`` / ``torch.export``): the portable form
   (:func:`export_impl`);
4. **autotuned** (opt-in, :mod:`.autotuner`): timed on the real call and cached;
5. **rule** (:func:`select_impl`): measured per device, dtype and shape.

The token mixer's fused path is planned here too (:func:`mixer_plan`). The names that tools
offer come from the registry (:func:`impl_choices`); changing the global default bumps the
registry's generation, so layers that keep their resolved impl re-resolve. The measurements
behind the rules are in docs/benchmarks.md, with the commands that made them.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional, Tuple

import torch

from . import autotuner
from .registry import available_impls, changed, get_impl, impl_names
from .resize import axis
from .tracing import exporting, exporting_graph

_GLOBAL_IMPL: Optional[str] = None


def impl_choices(auto: bool = True, exportable: bool = False) -> Tuple[str, ...]:
    """The implementation names a tool offers: every registered one (``exportable``: those
    that export), then ``'auto'``."""
    names = tuple(n for n in impl_names() if get_impl(n).exportable or not exportable)
    return names + (('auto', ) if auto else ())


def check_impl(impl: str) -> str:
    """``impl`` if it is ``'auto'`` or a registered implementation, else a ValueError."""
    if impl != 'auto':
        get_impl(impl)
    return impl


def set_default_impl(impl: Optional[str]) -> None:
    """Make every ParC layer built with ``impl='auto'`` run ``impl`` where it can (None
    restores the measured choice). Layers built with an explicit impl are not affected."""
    global _GLOBAL_IMPL
    _GLOBAL_IMPL = None if impl in (None, 'auto') else check_impl(impl)
    changed()


def global_impl() -> Optional[str]:
    """The impl every ``auto`` layer runs (:func:`set_default_impl`), or None."""
    return _GLOBAL_IMPL


@contextlib.contextmanager
def parc_impl(impl: Optional[str]) -> Iterator[None]:
    """Context manager form of :func:`set_default_impl`."""
    old = _GLOBAL_IMPL
    set_default_impl(impl)
    try:
        yield
    finally:
        set_default_impl(old)


def require(impl: str, device: torch.device, dtype: torch.dtype,
            mode: str = 'circular') -> str:
    """An explicit ``impl`` if it can run this call; a ValueError with the fix if not."""
    spec = get_impl(impl)
    spec.compute_for(mode)  # (names the impls that have the mode)
    if not spec.available(device, dtype, mode):
        ok = available_impls(device, dtype, mode=mode)
        raise ValueError(
            f'ParC impl {impl!r} does not run on {device.type} in {dtype} (it runs on '
            f'{", ".join(spec.devices)} in {", ".join(str(d) for d in spec.dtypes)}): use '
            f"impl='auto' or one of {tuple(ok)}")
    if exporting_graph() and not spec.exportable:
        ok = available_impls(device, dtype, exportable=True, mode=mode)
        raise ValueError(
            f'ParC impl {impl!r} cannot be exported (it traces into ops that runtimes do not '
            f"run): export with impl='auto' (parc_mm.ops.set_impl(model, 'auto')), which takes "
            f'the export form, or one of {tuple(ok)}')
    return impl


# The export form of ``auto``: the circulant (or Toeplitz) GEMM for depthwise kernels up to
# EXPORT_GEMM_MAX taps, where it is the faster graph in ONNX Runtime; beyond, the matrix grows
# as n^2 and the Concat + Conv form is kept. Never the FFT (no portable DFT).
EXPORT_IMPL = 'direct'
EXPORT_GEMM_MAX = 64


def export_impl(device: torch.device, dtype: torch.dtype, n: Optional[int] = None,
                dense: bool = False, mode: str = 'circular') -> str:
    """What ``auto`` exports as for a map of ``n`` along the conv's axis (see
    :data:`EXPORT_GEMM_MAX`), or another exportable implementation where that one cannot
    run."""
    want = 'gemm' if n is not None and not dense and int(n) <= EXPORT_GEMM_MAX else EXPORT_IMPL
    if get_impl(want).available(device, dtype, mode):
        return want
    ok = available_impls(device, dtype, exportable=True, mode=mode)
    if not ok:
        raise RuntimeError(f'no exportable ParC implementation runs the {mode} mode on '
                           f'{device} in {dtype}')
    return ok[0]


def choose(impl: str, x: torch.Tensor, weight: torch.Tensor, groups: int, direction: str,
           out_dtype: torch.dtype, cached: bool, mode: str,
           run: Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor]) -> str:
    """The implementation a validated ParC call runs (the order of the module docstring).
    ``run(impl, x, weight)`` computes the call with one impl (for the autotuner)."""
    if impl != 'auto':
        return require(impl, x.device, out_dtype, mode)
    ax = axis(direction)
    forced = _GLOBAL_IMPL
    if forced is not None:
        spec = get_impl(forced)
        if spec.available(x.device, out_dtype, mode) and (spec.exportable or
                                                          not exporting_graph()):
            return forced
    if exporting():  # no timing, no cached choice that may not export
        return export_impl(x.device, out_dtype, x.shape[ax], dense=weight.shape[1] > 1,
                           mode=mode)
    # the rule decides by the dtype the conv runs in (under autocast: the autocast dtype,
    # whatever the input's), as the autotuner's key does
    training = torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)
    return autotuner.choose(
        x, weight, groups, direction, run,
        candidates=available_impls(x.device, out_dtype, differentiable=training, mode=mode),
        mode=mode,
    ) or select_impl(x.shape[ax], x.shape[5 - ax], x.shape[1], x.device, out_dtype,
                     dense=weight.shape[1] > 1, cached=cached, mode=mode,
                     taps=weight.shape[ax], direction=direction, training=training)


def select_impl(n: int, other: int, channels: int, device: torch.device,
                dtype: torch.dtype, dense: bool = False, cached: bool = False,
                mode: str = 'circular', taps: Optional[int] = None, direction: str = 'H',
                training: bool = False) -> str:
    """The measured rule for one ParC call (``impl='auto'``, nothing forced or autotuned).

    Args:
        n: length of the global axis (the kernel length after resizing).
        other: length of the other spatial axis.
        channels: input channels of this ParC call.
        dense: True for dense (groups=1) kernels as ParC-ResNet50 uses.
        cached: the kernel's transform is cached (eval-mode inference of a ParC layer: the
            circulant matrix / spectrum is built once per input size, not per call).
        mode: ``'circular'`` (ParC) or ``'linear'`` (zero-padded, ParCNetV2's oversized conv).
        taps: the linear mode's kernel length after cropping to what reaches the map
            (``min(K, 2n - 1)``).
        direction, training: the linear mode's rule depends on both (CPU: a transform along
            the last axis is contiguous, along H strided; training times the backward too).

    CPU: in training (forward + backward, nothing cached) the FFT; in cached inference the
    GEMM with its stored circulant matrix up to a global length of 128, the FFT beyond; dense
    kernels: direct below 24 taps, the FFT above. CUDA: cuDNN's direct conv on small calls
    (launch-bound), the GEMM in reduced precision (tensor cores), the FFT on long axes;
    not re-measured on a GPU by this project (the autotuner measures instead of trusting
    it). Measurements: docs/benchmarks.md (``tools/analysis/benchmark_parc.py``).
    """
    if exporting():
        return export_impl(device, dtype, n, dense, mode)
    if mode == 'linear':
        return _select_linear(n, taps if taps is not None else 2 * n - 1, device, dense, cached,
                              direction, training)
    if device.type == 'cuda':
        work = n * other * channels
        if work < 1_500_000:
            return 'direct'
        if dtype in (torch.float16, torch.bfloat16):
            return 'gemm'
        return 'fft' if (n >= 128 or dense) else 'gemm'
    if dense:
        return 'fft' if n >= 24 else 'direct'
    if cached:
        return 'gemm' if n <= 128 else 'fft'
    return 'fft'


def _select_linear(n: int, taps: int, device: torch.device, dense: bool, cached: bool,
                   direction: str, training: bool) -> str:
    """The linear (oversized, zero-padded) mode's rule, judged on whole ParCNetV2 backbones
    rather than single layers (inside a network the FFT's padded complex buffers are fresh
    allocations every call). Short kernels: the direct conv. Cached inference: the Toeplitz
    GEMM up to maps of 384 (the matrix grows as n^2), then the FFT. Training: the GEMM up to
    64; beyond, the GEMM along H and the FFT along W (the contiguous axis)."""
    if device.type == 'cuda':
        return 'direct' if taps * n < 4096 else 'fft'
    if dense or taps <= 15:
        return 'direct'
    if cached:
        return 'gemm' if n <= 384 else 'fft'
    if n <= 64 or direction == 'H':
        return 'gemm'
    return 'fft'


# The token mixer's fused 2-D FFT beats its four per-layer calls on CPU up to this many tokens
# (ParC-DeiT at 224, ParC-Swin stages 2-4); beyond, the per-layer circulant GEMM.
FUSED_FFT_MAX_TOKENS = 800


def _default_for(impl: str) -> str:
    """``impl``, or for ``'auto'`` the global default where it may run (exportable inside an
    export)."""
    if impl != 'auto' or _GLOBAL_IMPL is None:
        return impl
    return _GLOBAL_IMPL if get_impl(_GLOBAL_IMPL).exportable or not exporting_graph() \
        else 'auto'


def mixer_plan(impl: str, tokens: int, device: torch.device, dtype: torch.dtype,
               tracing_onnx: bool) -> Optional[str]:
    """How a :class:`~parc_mm.models.layers.ParCTokenMixer` runs its four ParC convs:
    ``'traced'`` (an ONNX export by tracing: two convs and a constant), ``'fused'`` (one 2-D
    FFT), an impl for all four, or None (each layer's own choice). ``impl``: the mixer's
    layers' impl. Fused when that is ``fft`` (set, or the global default); ``auto`` on CPU:
    fused up to :data:`FUSED_FFT_MAX_TOKENS` tokens, the circulant GEMM beyond; elsewhere,
    and when autotuning (which times the per-layer calls), each layer's own ``auto``."""
    impl = _default_for(impl)
    if tracing_onnx:
        if impl != 'auto':
            require(impl, device, dtype)
        return 'traced'
    if exporting_graph():
        return None
    if impl == 'fft':
        return 'fused'
    if impl != 'auto' or autotuner.autotune_enabled() or device.type != 'cpu' or exporting():
        return None
    return 'fused' if tokens <= FUSED_FFT_MAX_TOKENS else 'gemm'


def mixer_conv_impl(impl: str, device: torch.device, dtype: torch.dtype, n: int) -> str:
    """The impl of one conv of the mixer's traced form (:func:`mixer_plan` ``'traced'``)."""
    impl = _default_for(impl)
    return export_impl(device, dtype, n) if impl == 'auto' else require(impl, device, dtype)


__all__ = ['EXPORT_GEMM_MAX', 'FUSED_FFT_MAX_TOKENS', 'check_impl', 'choose', 'export_impl',
           'global_impl', 'impl_choices', 'mixer_conv_impl', 'mixer_plan',
           'parc_impl', 'require', 'select_impl', 'set_default_impl']

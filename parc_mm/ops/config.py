"""Which ParC implementation runs: the rule behind ``impl='auto'`` and the global override
(the counterpart of timm's ``layers/config.py``)."""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import torch

from .registry import available_impls, changed, get_impl

# The built-in implementations (parc_mm.ops.functional registers them; others may be added
# with parc_mm.ops.registry.register_impl).
IMPLS = ('direct', 'fft', 'gemm')

# Global override of ``impl='auto'`` (None = use the measured rule). See ``parc_impl``.
_GLOBAL_IMPL: Optional[str] = None


def compiling() -> bool:
    """Inside torch.compile tracing, TorchScript tracing or scripting, or an export."""
    compiler = getattr(torch, 'compiler', None)
    if compiler is not None and compiler.is_compiling():
        return True
    return torch.jit.is_tracing() or torch.jit.is_scripting() or exporting()


def exporting() -> bool:
    """Inside an export (``torch.onnx.export`` with either exporter, ``torch.export``,
    ``torch.jit.trace``): the graph must hold exportable implementations only, no host-side
    checks, and kernels of static shape."""
    compiler = getattr(torch, 'compiler', None)
    is_exporting = getattr(compiler, 'is_exporting', None)
    if is_exporting is not None and is_exporting():
        return True
    onnx = getattr(torch, 'onnx', None)
    if onnx is not None and getattr(onnx, 'is_in_onnx_export', lambda: False)():
        return True
    return torch.jit.is_tracing()


def tracing_onnx() -> bool:
    """Inside an ONNX export by TorchScript tracing (``torch.onnx.export(dynamo=False)``,
    mmdeploy): the graph's weights are constants, and tensors computed outside the trace
    (:func:`untraced`) enter it as constants too. Not under a plain ``torch.jit.trace``,
    whose module keeps live parameters (a later weight write must still reach the output)."""
    onnx = getattr(torch, 'onnx', None)
    return torch._C._get_tracing_state() is not None and onnx is not None and \
        onnx.is_in_onnx_export()


@contextlib.contextmanager
def untraced():
    """Suspend TorchScript tracing: what is computed inside becomes a constant of the trace
    (for values that depend on parameters only, e.g. folded kernels)."""
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        with torch.no_grad():
            yield
    finally:
        torch._C._set_tracing_state(state)


# What ``auto`` exports as: a depthwise ParC conv with a kernel of up to EXPORT_GEMM_MAX taps
# as the circulant GEMM (one MatMul with a constant (C, n, n) matrix), longer ones and dense
# convs as plain Concat + Conv; never the FFT (ONNX ``DFT`` exports only with the dynamo
# exporter, runs in few runtimes and slower). Measured in ONNX Runtime 1.32 (CPU, 2 threads,
# batch 1; tools/analysis/benchmark_onnx.py --impls gemm direct), GEMM / direct per model:
# ParC-DeiT-S 0.709 / 0.742 of DeiT-S at 224, ParC-Swin-T 0.703 / 0.791 of Swin-T at 512,
# ParC-Net-S 0.611 / 0.660 of MobileViT-S at 512 (maps up to 64); the matrix grows as n^2,
# so beyond 64 taps the Concat + Conv form is kept (also far smaller files).
EXPORT_IMPL = 'direct'
EXPORT_GEMM_MAX = 64


def export_impl(device: torch.device, dtype: torch.dtype, n: Optional[int] = None,
                dense: bool = False, mode: str = 'circular') -> str:
    """What ``auto`` exports as for a map of ``n`` along the conv's axis (see
    :data:`EXPORT_GEMM_MAX`; in the linear mode the matrix is the ``n x n`` Toeplitz one and
    the other form a plain padded Conv), or another exportable implementation where that one
    cannot run."""
    want = 'gemm' if n is not None and not dense and int(n) <= EXPORT_GEMM_MAX else EXPORT_IMPL
    if get_impl(want).available(device, dtype, mode):
        return want
    ok = available_impls(device, dtype, exportable=True, mode=mode)
    if not ok:
        raise RuntimeError(f'no exportable ParC implementation runs the {mode} mode on '
                           f'{device} in {dtype}')
    return ok[0]


def check_impl(impl: str) -> str:
    """``impl`` if it is ``'auto'`` or a registered implementation, else a ValueError."""
    if impl != 'auto':
        get_impl(impl)
    return impl


def set_default_impl(impl: Optional[str]) -> None:
    """Force every ParC module built with ``impl='auto'`` to use ``impl`` (None restores
    the measured rule). Modules built with an explicit impl are not affected."""
    global _GLOBAL_IMPL
    _GLOBAL_IMPL = None if impl is None else check_impl(impl)
    if _GLOBAL_IMPL == 'auto':
        _GLOBAL_IMPL = None
    changed()  # layers that keep their resolved impl re-resolve


def global_impl() -> Optional[str]:
    """The impl forced for every ``auto`` layer (:func:`set_default_impl`), or None."""
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


def select_impl(n: int, other: int, channels: int, device: torch.device,
                dtype: torch.dtype, dense: bool = False, cached: bool = False,
                mode: str = 'circular', taps: Optional[int] = None, direction: str = 'H',
                training: bool = False) -> str:
    """The fastest exact implementation for one ParC call (``impl='auto'``).

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

    The rule is measured (``tools/analysis/benchmark_parc.py``; docs/operator.md "Choosing
    the implementation"), not guessed:

    * CPU (2-core x86, torch 2.14, fp32, the depthwise shapes of ParC-ConvNeXt XT / T at 224
      and at a 384x640 detection input): in training (forward + backward, nothing cached) the
      FFT is fastest or within ~20% of the fastest on every shape, the circulant GEMM up to 3x
      slower; in cached inference the GEMM with its stored circulant matrix is fastest up to a
      global length of ~128 (1.3-2.4x faster than the FFT), the FFT beyond. Dense kernels
      (C x C x n): direct below 24, FFT above (the dense GEMM is 2-5x slower).
    * CUDA: cuDNN direct wins on small maps (launch-bound); FFT/GEMM have a ~0.18 ms
      floor, so they win once ``n * other * channels`` is large (stage 1-2 of detection
      inputs). GEMM is preferred in reduced precision (tensor cores; cuFFT half needs
      power-of-two sizes, so the FFT path runs in float32 anyway). Not re-measured on a GPU
      by this project: the autotuner (:mod:`.autotuner`) measures instead of trusting it.
    """
    if _GLOBAL_IMPL is not None:
        if get_impl(_GLOBAL_IMPL).available(device, dtype, mode):
            return _GLOBAL_IMPL  # (an override without this boundary mode: the rule below)
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
    # CPU (and anything else)
    if dense:
        return 'fft' if n >= 24 else 'direct'
    if cached:
        return 'gemm' if n <= 128 else 'fft'
    return 'fft'


def _select_linear(n: int, taps: int, device: torch.device, dense: bool, cached: bool,
                   direction: str, training: bool) -> str:
    """The rule of the linear (oversized, zero-padded) mode, judged on whole ParCNetV2
    backbones on CPU (2 cores, fp32; XT / T at 224 and at detection inputs, every fixed impl
    timed in the same rounds; docs/operator.md) rather than on single layers, where the FFT
    looks better than it is inside a network (its padded complex buffers are fresh
    allocations every call). Short kernels: the direct conv. Inference with the kernel's
    matrix cached: the Toeplitz GEMM up to maps of 384 (the matrix grows as n^2), then the FFT.
    Training: the GEMM on maps up to 64; beyond, the GEMM along H and the FFT along W (the
    contiguous axis). CUDA: not measured by this project (the autotuner measures instead of
    trusting it)."""
    if device.type == 'cuda':
        return 'direct' if taps * n < 4096 else 'fft'
    if dense or taps <= 15:
        return 'direct'
    if cached:
        return 'gemm' if n <= 384 else 'fft'
    if n <= 64 or direction == 'H':
        return 'gemm'
    return 'fft'

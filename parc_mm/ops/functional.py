"""ParC: position-aware circular convolution (ParC-Net, ECCV'22) and Fast-ParC.

The operator is a circular *cross-correlation* along one spatial axis with a kernel as long
as that axis (a global kernel)::

    xp = x + pe
    y[o, i] = b[o] + sum_{c in group(o)} sum_{s=0}^{n-1} k[o, c, s] * xp[c, (i + s) mod n]

Three exact implementations compute it:

* ``direct``: ``conv2d`` on ``cat(xp, xp[:n-1])`` along the axis (what the official code does);
* ``fft``:    ``irfft(rfft(xp) * conj(rfft(k)), n)`` (Fast-ParC), always in float32;
* ``gemm``:   ``M @ xp`` with the circulant matrix ``M[o, c, i, j] = k[o, c, (j - i) mod n]``.

``auto`` picks one per call from the shape, device and dtype (:mod:`.dispatch`).

Parameters are stored at a *base* size and resized to the actual length on every forward with
``F.interpolate(bilinear, align_corners=True)`` (a no-op at the base size), as the first
author's detection/segmentation code does; ImageNet checkpoints therefore load unchanged.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, List, Optional

import torch
import torch.nn.functional as F

from . import dispatch, tracing
from .dispatch import check_impl
from .registry import Implementation, get_impl, register_impl
from .resize import DIRECTIONS, axis


def _circulant(k: torch.Tensor) -> torch.Tensor:
    """(..., n) -> (..., n, n) with M[..., i, j] = k[..., (j - i) mod n]. In an ONNX export
    by tracing it is built outside the trace: the graph holds the matrix as a constant
    instead of the gather that builds it."""
    if tracing.tracing_onnx():
        with tracing.untraced():
            return _circulant_of(k.detach())
    return _circulant_of(k)


def _circulant_of(k: torch.Tensor) -> torch.Tensor:
    n = k.shape[-1]
    ar = torch.arange(n, device=k.device)
    idx = (ar.view(1, n) - ar.view(n, 1)) % n
    return k[..., idx]


def _toeplitz(k: torch.Tensor, n: int) -> torch.Tensor:
    """(..., K) -> (..., n, n) with T[..., i, t] = k[..., t - i + K // 2] (0 outside the
    kernel): the linear mode's matrix. A constant of the graph in an ONNX export by tracing,
    like the circulant."""
    if tracing.tracing_onnx():
        with tracing.untraced():
            return _toeplitz_of(k.detach(), n)
    return _toeplitz_of(k, n)


def _toeplitz_of(k: torch.Tensor, n: int) -> torch.Tensor:
    taps = k.shape[-1]
    ar = torch.arange(n, device=k.device)
    idx = ar.view(1, n) - ar.view(n, 1) + taps // 2
    idx = torch.where((idx >= 0) & (idx < taps), idx, torch.full_like(idx, taps))
    return F.pad(k, (0, 1))[..., idx]  # index ``taps``: the appended zero


def next_fast_len(m: int) -> int:
    """The smallest ``2^a * s >= m`` with ``s`` in (1, 3, 5, 7, 9, 15): lengths the CPU (MKL /
    pocketfft) and cuFFT transform fast. A length with a small power of two is several times
    slower even when 5- or 7-smooth (docs/benchmarks.md)."""
    best = None
    for odd in (1, 3, 5, 7, 9, 15):
        v = odd
        while v < m:
            v *= 2
        best = v if best is None else min(best, v)
    return best


def _linear_direct(x, w, groups, direction, cache=None):
    # the official form: a depthwise (K, 1) / (1, K) conv with zero padding K // 2
    taps = w.shape[axis(direction)]
    pad = (taps // 2, 0) if direction == 'H' else (0, taps // 2)
    return F.conv2d(x, w, None, 1, pad, 1, groups)


def _pad_along(t: torch.Tensor, ax: int, before: int, after: int) -> torch.Tensor:
    return F.pad(t, (0, 0, before, after) if ax == 2 else (before, after))


def _linear_fft(x, w, groups, direction, cache=None):
    """Zero-padded correlation = circular correlation on a buffer of a fast length
    ``L >= n + K - 1`` (input at offset K // 2, kernel zero-extended), first n outputs."""
    ax = axis(direction)
    n, taps = x.shape[ax], w.shape[ax]
    length = next_fast_len(n + taps - 1)
    xp = _pad_along(x, ax, taps // 2, length - n - taps // 2)
    wp = _pad_along(w, ax, 0, length - taps)
    y = _fft(xp, wp, groups, direction, cache)
    return y.narrow(ax, 0, n)


def _linear_gemm(x, w, groups, direction, cache=None):
    n = x.shape[axis(direction)]
    return _matrix_product(x, w, groups, direction, cache, lambda k: _toeplitz(k, n), n)


def _direct(x: torch.Tensor, w: torch.Tensor, groups: int, direction: str) -> torch.Tensor:
    # NCHW-contiguous: conv on a channels_last-strided concat is several times slower.
    x = x.contiguous()
    if direction == 'H':
        xp = torch.cat([x, x[:, :, :-1]], dim=2) if x.shape[2] > 1 else x
    else:
        xp = torch.cat([x, x[:, :, :, :-1]], dim=3) if x.shape[3] > 1 else x
    return F.conv2d(xp, w, None, 1, 0, 1, groups)


def _cached(cache: Optional[dict], key, make):
    if cache is None:
        return make()
    if key not in cache:
        cache[key] = make()
    return cache[key]


def _spectrum_view(kf: torch.Tensor, ax: int) -> torch.Tensor:
    """(C, nf) -> broadcastable against a (B, C, H, W) spectrum along axis ``ax``."""
    return kf.view(1, kf.shape[0], -1, 1) if ax == 2 else kf.view(1, kf.shape[0], 1, -1)


class _DepthwiseFFTCorrelation(torch.autograd.Function):
    """Depthwise circular correlation along ``ax`` by FFT, with the backward written out in
    real FFTs: ``dx = irfft(rfft(g) * rfft(k))`` (the adjoint: a circular convolution) and
    ``dk = irfft(sum_{batch, other axis} rfft(x) * conj(rfft(g)))``. Autograd through
    ``rfft`` instead runs a full complex FFT of the zero-padded gradient plus copies (slower:
    docs/benchmarks.md). Saves ``x`` and
    ``k`` (the bytes autograd saved for the spectrum); the backward is itself differentiable
    (double backward works)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, k: torch.Tensor, ax: int) -> torch.Tensor:
        ctx.save_for_backward(x, k)
        ctx.ax = ax
        kf = _spectrum_view(torch.fft.rfft(k, dim=-1).conj(), ax)
        # training keeps the unnormalised transform (the rounding training was tuned with);
        # inference (_fft below) normalises on the way in against overflow
        return torch.fft.irfft(torch.fft.rfft(x, dim=ax) * kf, n=x.shape[ax], dim=ax)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, k = ctx.saved_tensors
        ax = ctx.ax
        n = x.shape[ax]
        gf = torch.fft.rfft(g, dim=ax)
        gx = gk = None
        if ctx.needs_input_grad[0]:
            kf = _spectrum_view(torch.fft.rfft(k, dim=-1), ax)
            gx = torch.fft.irfft(gf * kf, n=n, dim=ax)
        if ctx.needs_input_grad[1]:
            cross = (torch.fft.rfft(x, dim=ax) * gf.conj()).sum(dim=(0, 5 - ax))  # (C, nf)
            gk = torch.fft.irfft(cross, n=n, dim=-1)
        return gx, gk, None


def _rfft(x: torch.Tensor, ax: int) -> torch.Tensor:
    # norm='forward' (1/n on the way in, none on the way out): the spectrum of a large but
    # finite activation (3e37 in float32) must not overflow where the direct sum does not
    return torch.fft.rfft(x, dim=ax, norm='forward')


def _irfft(xf: torch.Tensor, n: int, ax: int) -> torch.Tensor:
    return torch.fft.irfft(xf, n=n, dim=ax, norm='forward')


def _fft(x: torch.Tensor, w: torch.Tensor, groups: int, direction: str,
         cache: Optional[dict] = None) -> torch.Tensor:
    b, c, h, wd = x.shape
    o, ci = w.shape[0], w.shape[1]
    ax = axis(direction)
    n = x.shape[ax]
    k = w.reshape(o, ci, n)
    if (ci == 1 and o == c and torch.is_grad_enabled() and (x.requires_grad or k.requires_grad)
            and not tracing.compiling()):
        return _DepthwiseFFTCorrelation.apply(x, k.reshape(o, n), ax)
    xf = _rfft(x, ax)
    kf = _cached(cache, ('fft', k.dtype), lambda: torch.fft.rfft(k, n=n, dim=-1).conj())
    nf = kf.shape[-1]
    if ci == 1 and o == c:  # depthwise: a broadcast product
        yf = xf * _spectrum_view(kf.reshape(o, nf), ax)
    else:
        co = o // groups
        kf = kf.reshape(groups, co, ci, nf)
        if direction == 'H':
            yf = torch.einsum('bgifw,goif->bgofw', xf.reshape(b, groups, ci, nf, wd), kf)
            yf = yf.reshape(b, o, nf, wd)
        else:
            yf = torch.einsum('bgihf,goif->bgohf', xf.reshape(b, groups, ci, h, nf), kf)
            yf = yf.reshape(b, o, h, nf)
    return _irfft(yf, n, ax)


def _gemm(x: torch.Tensor, w: torch.Tensor, groups: int, direction: str,
          cache: Optional[dict] = None) -> torch.Tensor:
    n = x.shape[axis(direction)]
    return _matrix_product(x, w, groups, direction, cache, _circulant, n)


def _matrix_product(x: torch.Tensor, w: torch.Tensor, groups: int, direction: str,
                    cache: Optional[dict], matrix, n: int) -> torch.Tensor:
    """``M @ x`` along the conv's axis with the (n x n) matrix ``matrix(kernel)`` of each
    (output, input) channel pair: the circulant (circular mode) or Toeplitz (linear mode)."""
    b, c, h, wd = x.shape
    o, ci = w.shape[0], w.shape[1]
    taps = w.shape[axis(direction)]
    if ci == 1 and o == c:  # depthwise: a batch of (n x n) matrices, one per channel
        if b == 1 and tracing.exporting_program():
            # a 3-D bmm without broadcasting: a broadcast matmul lowers to expand copies of
            # the constant matrices on every call, outside ExecuTorch's XNNPACK delegate
            if direction == 'H':
                return torch.bmm(_cached(cache, ('gemm', w.dtype),
                                         lambda: matrix(w.reshape(o, taps))),
                                 x.reshape(c, h, wd)).reshape(1, c, h, wd)
            return torch.bmm(x.reshape(c, h, wd), _cached(cache, ('gemmT', w.dtype), lambda: matrix(
                w.reshape(o, taps)).transpose(-1, -2).contiguous())).reshape(1, c, h, wd)
        if direction == 'H':
            return torch.matmul(_cached(cache, ('gemm', w.dtype),
                                        lambda: matrix(w.reshape(o, taps))), x)
        # y = x @ M^T, with M^T stored contiguous (faster than a transposed view)
        return torch.matmul(x, _cached(cache, ('gemmT', w.dtype), lambda: matrix(
            w.reshape(o, taps)).transpose(-1, -2).contiguous()))
    m = _cached(cache, ('gemm', w.dtype),  # (O, Ci, n_i, n_j)
                lambda: matrix(w.reshape(o, ci, taps)))
    co = o // groups
    # (G, Co*n_i, Ci*n_j)
    m = m.reshape(groups, co, ci, n, n).permute(0, 1, 3, 2, 4).reshape(groups, co * n, ci * n)
    if direction == 'H':
        xg = x.reshape(b, groups, ci * n, wd)
        return torch.matmul(m, xg).reshape(b, o, n, wd)
    xg = x.reshape(b, groups, ci, h, n).permute(0, 1, 3, 2, 4).reshape(b, groups, h, ci * n)
    y = torch.matmul(xg, m.transpose(-1, -2))  # (B, G, H, Co*n)
    return y.reshape(b, groups, h, co, n).permute(0, 1, 3, 2, 4).reshape(b, o, h, n)


def check_float(x: torch.Tensor, weight: torch.Tensor) -> None:
    """ParC is defined on real floating-point tensors; the implementations disagree on any
    other (integer rounding, complex parts dropped by the real FFT), so refuse them."""
    for name, t in (('input', x), ('weight', weight)):
        if not t.is_floating_point():
            raise TypeError(f'ParC needs a real floating-point {name}, got {t.dtype}: cast it '
                            '(e.g. x.float()); complex and integer tensors are not supported.')


def autocast_out_dtype(x: torch.Tensor, w: torch.Tensor) -> torch.dtype:
    """The dtype a ParC call returns (and computes in, but for the FFT's float32): the
    autocast dtype under autocast, else the promotion of input and weight."""
    dev = x.device.type
    if torch.is_autocast_enabled(dev) and x.is_floating_point():
        return torch.get_autocast_dtype(dev)
    return torch.promote_types(x.dtype, w.dtype)


MODES = ('circular', 'linear')


def circular_conv(x: torch.Tensor,
                  weight: torch.Tensor,
                  bias: Optional[torch.Tensor] = None,
                  direction: str = 'H',
                  groups: int = 1,
                  impl: str = 'auto',
                  kernel_cache: Optional[dict] = None) -> torch.Tensor:
    """Circular cross-correlation of ``x`` along H or W with a global kernel.

    Args:
        x: ``(B, C, H, W)``.
        weight: ``(O, C // groups, H, 1)`` for direction H, ``(O, C // groups, 1, W)`` for W;
            its global length must equal the input's (use :func:`resize_to` first).
        bias: ``(O,)`` or None.
        direction: ``'H'`` or ``'W'``.
        groups: conv groups (C for depthwise, 1 for dense).
        impl: ``'direct' | 'fft' | 'gemm' | 'auto'``.
        kernel_cache: a dict the caller owns for this exact ``weight``: the FFT path keeps the
            kernel's spectrum there and the GEMM path its circulant matrix, so that repeated
            calls skip computing them. The caller clears it when the weight changes (the ParC
            layers do, in eval mode: :class:`~parc_mm.models.layers.ParCConv2d`).

    Returns:
        ``(B, O, H, W)``. The FFT path runs in float32 (also under autocast) and returns the
        dtype the direct path would.
    """
    return global_conv(x, weight, bias, direction, groups, impl, kernel_cache, 'circular')


def linear_conv(x: torch.Tensor,
                weight: torch.Tensor,
                bias: Optional[torch.Tensor] = None,
                direction: str = 'H',
                groups: int = 1,
                impl: str = 'auto',
                kernel_cache: Optional[dict] = None) -> torch.Tensor:
    """Zero-padded ("same") cross-correlation of ``x`` along H or W with an odd kernel of any
    length ``K``, ParCNetV2's oversized convolution (``K = 2n - 1`` reaches every position
    from every other)::

        y[o, i] = b[o] + sum_c sum_{s<K} k[o, c, s] * x[c, i + s - K // 2]   (x = 0 outside)

    ``weight``: ``(O, C // groups, K, 1)`` (H) or ``(O, C // groups, 1, K)`` (W). Taps that
    reach no input (``K > 2n - 1``) are cropped symmetrically before dispatch. The same
    implementations as :func:`circular_conv`: ``direct`` (the official padded conv), ``fft``
    (zero-padded to a fast length ``>= n + K - 1``), ``gemm`` (a Toeplitz matrix), ``auto``.
    """
    return global_conv(x, weight, bias, direction, groups, impl, kernel_cache, 'linear')


def global_conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                direction: str, groups: int, impl: str, kernel_cache: Optional[dict],
                mode: str) -> torch.Tensor:
    """:func:`circular_conv` (``mode='circular'``) or :func:`linear_conv` (``'linear'``)."""
    if mode not in MODES:
        raise ValueError(f'ParC boundary mode must be one of {MODES}, got {mode!r}')
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'H' or 'W', got {direction!r}")
    if x.dim() != 4:
        raise ValueError(f'ParC expects a 4-D (B, C, H, W) input, got shape {tuple(x.shape)}')
    if weight.dim() != 4:
        raise ValueError(f'ParC weight must be 4-D, got shape {tuple(weight.shape)}')
    if not isinstance(groups, int) or groups < 1 or weight.shape[0] % groups:
        raise ValueError(f'ParC-{direction} groups must be a positive int dividing the '
                         f'{weight.shape[0]} output channels, got {groups!r}')
    ax = axis(direction)
    n = x.shape[ax]
    if mode == 'circular' and (weight.shape[ax] != n or weight.shape[5 - ax] != 1):
        raise ValueError(
            f'ParC-{direction} weight {tuple(weight.shape)} does not fit input {tuple(x.shape)}: '
            f'expected (O, C/groups, {n if ax == 2 else 1}, {1 if ax == 2 else n}); '
            'resize it with parc_mm.ops.resize_to first.')
    if mode == 'linear':
        taps = weight.shape[ax]
        if weight.shape[5 - ax] != 1 or taps % 2 == 0:
            raise ValueError(
                f'linear ParC-{direction} needs an odd kernel along {direction} of shape '
                f'(O, C/groups, {"K, 1" if ax == 2 else "1, K"}), got {tuple(weight.shape)}: '
                'an even length has no centre tap (zero padding K // 2 would shift the output); '
                'resize it to an odd length (e.g. 2n - 1) with parc_mm.ops.resize_to.')
        if taps > 2 * n - 1:  # taps beyond +-(n - 1) multiply only the zero padding
            weight = weight.narrow(ax, taps // 2 - (n - 1), 2 * n - 1)
    if x.shape[1] != weight.shape[1] * groups:
        raise ValueError(f'ParC-{direction} expects {weight.shape[1] * groups} input channels '
                         f'(weight {tuple(weight.shape)}, groups={groups}), got {x.shape[1]}')
    if bias is not None and bias.shape != (weight.shape[0], ):
        raise ValueError(f'ParC-{direction} bias must have shape ({weight.shape[0]},) (one per '
                         f'output channel), got {tuple(bias.shape)}')
    impl = check_impl(impl)
    check_float(x, weight)
    out_dtype = autocast_out_dtype(x, weight)
    if x.shape[0] == 0:  # empty batch: every impl returns an empty tensor
        return x.new_zeros((0, weight.shape[0], x.shape[2], x.shape[3]), dtype=out_dtype)
    impl = resolve_impl(impl, x, weight, groups, direction, out_dtype, kernel_cache, mode)
    y = compute(impl, x, weight, groups, direction, out_dtype, kernel_cache, mode)
    if bias is not None:
        y = y + bias.to(y.dtype).view(1, -1, 1, 1)
    return y


def resolve_impl(impl: str, x: torch.Tensor, weight: torch.Tensor, groups: int, direction: str,
                 out_dtype: torch.dtype, kernel_cache: Optional[dict] = None,
                 mode: str = 'circular') -> str:
    """The exact implementation a (validated) :func:`circular_conv` / :func:`linear_conv` call
    runs (:func:`parc_mm.ops.dispatch.choose`)."""
    return dispatch.choose(
        impl, x, weight, groups, direction, out_dtype, kernel_cache is not None, mode,
        lambda i, xx, ww: compute(i, xx, ww, groups, direction, out_dtype, kernel_cache, mode))


_RECORDERS: list = []


@contextlib.contextmanager
def recorded_impls() -> Iterator[List[str]]:
    """Inside the block, the implementations that actually ran, in call order (what ``auto``
    chose, under the autocast / grad mode of the call): ``with recorded_impls() as ran:``."""
    ran: List[str] = []
    _RECORDERS.append(ran)
    try:
        yield ran
    finally:
        _RECORDERS.remove(ran)


def compute(impl: str, x: torch.Tensor, weight: torch.Tensor, groups: int, direction: str,
            out_dtype: torch.dtype, cache: Optional[dict] = None,
            mode: str = 'circular') -> torch.Tensor:
    """One exact implementation (a registered name, already resolved: not ``'auto'``),
    without the bias, in ``out_dtype``; ``cache``: a dict the caller owns for this exact
    weight. Dispatches through :mod:`.registry`: an unknown name raises."""
    spec = get_impl(impl)
    fn = spec.compute_for(mode)
    for ran in _RECORDERS:
        ran.append(impl)
    ax = axis(direction)
    # NCHW-contiguous on every path: a block that permutes to NHWC for its LayerNorm / MLP
    # (ConvNeXt) hands on a channels_last-strided tensor, several times slower to convolve
    x = x.contiguous()
    if spec.compute_dtype is not None:
        # e.g. the FFT: cuFFT in half precision only takes power-of-two sizes
        cdt = spec.compute_dtype(x.dtype, weight.dtype)
        with torch.autocast(x.device.type, enabled=False):
            y = fn(x.to(cdt), weight.to(cdt), groups, direction, cache)
    else:
        # Outside autocast mixed input / weight dtypes follow type promotion (an fp16 input
        # into an fp32 module computes and returns fp32), the same for every impl.
        if not torch.is_autocast_enabled(x.device.type):
            x, weight = x.to(out_dtype), weight.to(out_dtype)
        y = fn(x, weight, groups, direction, cache)
    if not spec.propagates_non_finite:
        y = _nan_where_not_finite(y, x, groups, ax)
    return y.to(out_dtype)


def _nan_where_not_finite(y: torch.Tensor, x: torch.Tensor, groups: int, ax: int) -> torch.Tensor:
    """Non-finite inputs give NaN in every output that sums over them (the whole row or column
    of the global axis, all output channels of the group): what the FFT computes. Without this
    direct/gemm give +-inf there, and ``auto`` would change the result with the map size."""
    if tracing.exporting():
        return y  # deployed graphs carry no guard (IsNaN / IsInf / Where nodes)
    if x.device.type == 'cpu' and not tracing.compiling():
        # fast path: one reduction says the input is finite (a sum that overflows only sends
        # us to the exact check below). No sync to avoid on CPU; on GPUs and under
        # torch.compile the masked form below is used unconditionally (no host sync).
        # (.item() + math.isfinite: half the cost of bool(torch.isfinite(...)) on a 0-d tensor)
        if math.isfinite(x.sum(dtype=torch.promote_types(x.dtype, torch.float32)).item()):
            return y
    finite = torch.isfinite(x).all(dim=ax, keepdim=True)  # (B, C, 1, W) or (B, C, H, 1)
    b, c = x.shape[:2]
    if groups != c or y.shape[1] != c:  # dense / grouped: any channel of the group
        finite = finite.reshape(b, groups, c // groups, *finite.shape[2:]).all(2, keepdim=True)
        finite = finite.expand(b, groups, y.shape[1] // groups, *finite.shape[3:])
        finite = finite.reshape(b, y.shape[1], *finite.shape[3:])
    return torch.where(finite, y, torch.full((), float('nan'), dtype=y.dtype, device=y.device))


def _float32_or_64(x_dtype: torch.dtype, w_dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if torch.float64 in (x_dtype, w_dtype) else torch.float32


def _direct_impl(x, w, groups, direction, cache=None):
    return _direct(x, w, groups, direction)


register_impl(Implementation('direct', _direct_impl, exportable=True, linear=_linear_direct))
register_impl(Implementation('fft', _fft, compute_dtype=_float32_or_64, caches=('fft', ),
                             propagates_non_finite=True, linear=_linear_fft))
register_impl(Implementation('gemm', _gemm, exportable=True, caches=('gemm', 'gemmT'),
                             linear=_linear_gemm))

"""The depthwise ParC-H followed by ParC-W as one 2-D FFT (the ParC-ViT / ParC-Swin token
mixer's fused path) and its real-FFT autograd Function."""
from __future__ import annotations

from typing import Optional

import torch

from . import tracing
from .functional import autocast_out_dtype, check_float


def separable_circular_conv2d(x: torch.Tensor, kh: torch.Tensor, kw: torch.Tensor,
                              spectrum: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A depthwise ParC-H followed by ParC-W (no bias, no PE) in one 2-D FFT round trip.

    Args:
        x: ``(B, C, H, W)``.
        kh: ``(C, H)``, the per-channel H kernels; kw: ``(C, W)``, the W kernels.
        spectrum: ``separable_spectrum(kh, kw, dtype)`` computed before (a caller that
            keeps it across calls, in eval mode), or None.

    The two circular cross-correlations commute and compose to one with the separable 2-D
    kernel ``kh[:, :, None] * kw[:, None, :]``, whose spectrum is the outer product of the
    1-D spectra: ``irfft2(rfft2(x) * conj(fft(kh)) x conj(rfft(kw)))``. Same arithmetic as
    two 1-D FFT passes, half the transforms and launches. Float32 like the ``fft`` path.
    """
    b, c, h, w = x.shape
    if kh.shape != (c, h) or kw.shape != (c, w):
        raise ValueError(f'separable ParC: kernels {tuple(kh.shape)} / {tuple(kw.shape)} do not '
                         f'fit input {tuple(x.shape)}: expected ({c}, {h}) / ({c}, {w})')
    check_float(x, kh)
    out_dtype = autocast_out_dtype(x, kh)
    cdt = separable_dtype(x, kh)
    with torch.autocast(x.device.type, enabled=False):
        if (spectrum is None and torch.is_grad_enabled() and not tracing.compiling()
                and (x.requires_grad or kh.requires_grad or kw.requires_grad)):
            y = _SeparableFFTCorrelation.apply(x.to(cdt), kh.to(cdt), kw.to(cdt))
        else:
            spec = separable_spectrum(kh, kw, cdt) if spectrum is None else spectrum
            y = torch.fft.irfft2(torch.fft.rfft2(x.to(cdt), norm='forward') * spec, s=(h, w),
                                 norm='forward')
    return y.to(out_dtype)


class _SeparableFFTCorrelation(torch.autograd.Function):
    """:func:`separable_circular_conv2d` for training, with the backward in real 2-D FFTs
    (as :class:`_DepthwiseFFTCorrelation`): ``dx = irfft2(rfft2(g) * conj(S))``; the kernel
    gradients contract the cross-correlation ``R = irfft2(sum_batch rfft2(x) conj(rfft2(g)))``
    (C x H x W) with the other kernel: ``dkh = R @ kw``, ``dkw = R^T @ kh``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kh: torch.Tensor, kw: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, kh, kw)
        spec = separable_spectrum(kh, kw, x.dtype)
        return torch.fft.irfft2(torch.fft.rfft2(x) * spec, s=x.shape[2:])

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, kh, kw = ctx.saved_tensors
        size = x.shape[2:]
        gf = torch.fft.rfft2(g)
        gx = gkh = gkw = None
        if ctx.needs_input_grad[0]:
            gx = torch.fft.irfft2(gf * separable_spectrum(kh, kw, x.dtype).conj(), s=size)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            r = torch.fft.irfft2((torch.fft.rfft2(x) * gf.conj()).sum(0), s=size)  # (C, H, W)
            if ctx.needs_input_grad[1]:
                gkh = torch.einsum('chw,cw->ch', r, kw)
            if ctx.needs_input_grad[2]:
                gkw = torch.einsum('chw,ch->cw', r, kh)
        return gx, gkh, gkw


def separable_dtype(x: torch.Tensor, kh: torch.Tensor) -> torch.dtype:
    """The dtype :func:`separable_circular_conv2d` computes in: float64 if either is, else
    float32 (also under autocast)."""
    return torch.float64 if torch.float64 in (x.dtype, kh.dtype) else torch.float32


def separable_spectrum(kh: torch.Tensor, kw: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``(C, H, W // 2 + 1)``: the spectrum of the separable kernel ``kh x kw`` (conjugated:
    a correlation)."""
    with torch.autocast(kh.device.type, enabled=False):
        return torch.fft.fft(kh.to(dtype), dim=-1).conj()[:, :, None] * \
            torch.fft.rfft(kw.to(dtype), dim=-1).conj()[:, None, :]

"""ParCNetV2's oversized convolution: a depthwise global conv along H, then one along W, with
zero padding (the *linear* boundary mode of the ParC operator) and a kernel about twice the
feature map, so that every position reaches every other and the zero padding tells the
kernel where it is (no position embedding)."""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn

from parc_mm.ops.dispatch import check_impl
from parc_mm.ops.functional import linear_conv
from parc_mm.ops.resize import DIRECTIONS, axis, resize_on_load, resize_to, resized_param

from .parc import InferencePlanMixin

Interpolate = Union[bool, int, None]


def _check_interpolate(interpolate: Interpolate, kernel_size: int) -> Interpolate:
    if interpolate is None or isinstance(interpolate, bool):
        if not interpolate and kernel_size % 2 == 0:
            raise ValueError(f'an oversized conv without interpolation needs an odd kernel_size '
                             f'(zero padding K // 2 on both sides), got {kernel_size}')
        return bool(interpolate)
    if not isinstance(interpolate, int) or interpolate < 1 or interpolate % 2 == 0:
        raise ValueError('interpolate must be False (the kernel as stored), True (resized to '
                         '2n - 1 for a map of n) or an odd positive int (resized to that length),'
                         f' got {interpolate!r}')
    return interpolate


class LinearParCConv2d(InferencePlanMixin, nn.Module):
    """One direction of the oversized conv: ``(K, 1)`` (H) or ``(1, K)`` (W) kernels, zero
    padding ``K // 2``, computed by the ParC operator in its linear mode
    (:func:`parc_mm.ops.linear_conv`: direct / FFT / Toeplitz GEMM / auto).

    Args:
        channels: input = output channels.
        direction: ``'H'`` or ``'W'``.
        kernel_size: the stored kernel length (official: ``2 * 56 - 1 = 111`` in stage 1 at
            224 input).
        groups: ``channels`` for depthwise (default, as ParCNetV2), 1 for dense.
        bias: a learned per-channel bias.
        interpolate: ``False`` (official default): the stored kernel on any input; ``True``:
            resized to ``2n - 1`` for a map of ``n`` on every forward (bilinear,
            ``align_corners=True``); an odd int: resized to that length.
        impl: ``'auto' | 'direct' | 'fft' | 'gemm'``.

    Parameter names and shapes are those of ``nn.Conv2d`` (``weight``, ``bias``), as the
    official ``conv_h`` / ``conv_w``: checkpoints load by name.
    """

    def __init__(self, channels: int, direction: str = 'H', kernel_size: int = 13,
                 groups: Optional[int] = None, bias: bool = False,
                 interpolate: Interpolate = False, impl: str = 'auto') -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"LinearParCConv2d direction must be 'H' or 'W', got {direction!r}")
        groups = channels if groups is None else groups
        for name, v in (('channels', channels), ('kernel_size', kernel_size), ('groups', groups)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f'LinearParCConv2d {name} must be a positive int, got {v!r}')
        if channels % groups:
            raise ValueError(f'channels ({channels}) must be divisible by groups ({groups})')
        self.channels = channels
        self.direction = direction
        self.kernel_size = kernel_size
        self.groups = groups
        self.interpolate = _check_interpolate(interpolate, kernel_size)
        self.impl = check_impl(impl)
        kshape = (kernel_size, 1) if direction == 'H' else (1, kernel_size)
        self.weight = nn.Parameter(torch.empty(channels, channels // groups, *kshape))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        nn.init.trunc_normal_(self.weight, std=0.02)

    def extra_repr(self) -> str:
        return (f'{self.channels}, direction={self.direction}, kernel_size={self.kernel_size}, '
                f'groups={self.groups}, bias={self.bias is not None}, '
                f'interpolate={self.interpolate}, impl={self.impl}')

    def taps(self, n: int) -> int:
        """The kernel length used on a map of ``n`` along the conv's axis."""
        if self.interpolate is True:
            return 2 * int(n) - 1
        if self.interpolate is False:
            return self.kernel_size
        return self.interpolate

    def forward(self, x: torch.Tensor, impl: Optional[str] = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f'LinearParCConv2d-{self.direction} built for (B, {self.channels}, '
                             f'H, W) got {tuple(x.shape)}')
        n = x.shape[axis(self.direction)]
        taps = self.taps(n)
        cache = self._inference_plan((n, x.dtype, x.device), (self.weight, self.bias),
                                     lambda: {'weight': resize_to(self.weight, taps,
                                                                  self.direction)})
        w = resize_to(self.weight, taps, self.direction) if cache is None else cache['weight']
        return linear_conv(x, w, self.bias, self.direction, self.groups, impl or self.impl,
                           kernel_cache=cache)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        self.set_inference(False)
        resize_on_load(self, ('weight', ), state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    @torch.no_grad()
    def resize_(self, size: int) -> 'LinearParCConv2d':
        """Fix the kernel to the one used on a map of ``size`` (for an export at a fixed input
        size: no resize in the graph); a layer that does not interpolate is unchanged."""
        self.set_inference(False)
        taps = self.taps(size)
        if taps != self.kernel_size:
            self.weight = resized_param(self.weight, taps, self.direction)
            self.kernel_size = taps
        self.interpolate = False
        return self


class OversizeConv2d(nn.Module):
    """ParCNetV2's oversized depthwise conv: :class:`LinearParCConv2d` along H, then along W,
    on all channels (official ``OversizeConv2d``; children ``conv_h`` / ``conv_w``)."""

    def __init__(self, channels: int, kernel_size: int, bias: bool = False,
                 interpolate: Interpolate = False, impl: str = 'auto') -> None:
        super().__init__()
        self.channels = channels
        self.kernel_size = kernel_size
        self.conv_h = LinearParCConv2d(channels, 'H', kernel_size, bias=bias,
                                       interpolate=interpolate, impl=impl)
        self.conv_w = LinearParCConv2d(channels, 'W', kernel_size, bias=bias,
                                       interpolate=interpolate, impl=impl)

    def extra_repr(self) -> str:
        return f'{self.channels}, kernel_size={self.kernel_size}'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_w(self.conv_h(x))

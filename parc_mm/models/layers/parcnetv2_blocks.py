"""The ParCNetV2 building blocks: the normalisation it uses, the ParC V2 token mixer
(oversized conv + local dw conv, gated), the Bifurcate Gate Unit MLP, the block and the
downsampling layer. Activations are channels-last ``(B, H, W, C)`` between blocks, as in the
official code (its LayerNorm and MLP act on the last axis)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn.bricks import DropPath

from .oversize import Interpolate, OversizeConv2d


class CenteredL2Norm(nn.Module):
    """ParCNetV2's normalisation (its ``LayerNormGeneral``): ``(x - mean) / max(||x - mean||_2,
    eps) * weight [+ bias]`` over the last axis. Not ``nn.LayerNorm``: it divides by the L2
    norm of the centred vector (``sqrt(C)`` times the standard deviation) and clamps instead
    of adding ``eps``; the learned weight absorbs the ``sqrt(C)``. Kept exactly so that
    official weights give official outputs."""

    def __init__(self, channels: int, eps: float = 1e-6, bias: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def extra_repr(self) -> str:
        return f'{self.weight.shape[0]}, eps={self.eps}, bias={self.bias is not None}'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x - x.mean(-1, keepdim=True)
        x = c / c.norm(2, -1, keepdim=True).clamp_min(self.eps) * self.weight
        return x if self.bias is None else x + self.bias


class Scale(nn.Module):
    """A learned per-channel scale (layer scale / residual scale), parameter ``scale``."""

    def __init__(self, channels: int, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(init_value * torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class ParCV2Mixer(nn.Module):
    """The ParC V2 token mixer (official ``ParC_V2``), on channels-last input::

        a, g = split(pwconv1(x))          # 2 * C channels -> two halves of C
        g = act(g)
        y = pwconv2(a * (oversize(g) + dw7x7(g)))

    ``oversize`` is :class:`OversizeConv2d` (global, zero-padded, linear ParC).
    """

    def __init__(self, channels: int, global_kernel_size: int, expansion_ratio: float = 2,
                 kernel_size: int = 7, bias: bool = False, interpolate: Interpolate = False,
                 impl: str = 'auto') -> None:
        super().__init__()
        med = int(expansion_ratio * channels)
        self.pwconv1 = nn.Conv2d(channels, med, 1, bias=True)
        self.act = nn.GELU()
        self.dwconv1 = OversizeConv2d(med // 2, global_kernel_size, bias=bias,
                                      interpolate=interpolate, impl=impl)
        self.dwconv2 = nn.Conv2d(med // 2, med // 2, kernel_size, padding=kernel_size // 2,
                                 groups=med // 2, bias=bias)
        self.pwconv2 = nn.Conv2d(med // 2, channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pwconv1(x.permute(0, 3, 1, 2))
        half = x.shape[1] // 2
        a, g = x[:, :half], self.act(x[:, half:])
        x = a * (self.dwconv1(g) + self.dwconv2(g))
        return self.pwconv2(x).permute(0, 2, 3, 1)


class BGU(nn.Module):
    """Bifurcate Gate Unit: ``fc2(a * act(g))`` with ``a, g = split(fc1(x))`` (channels-last)."""

    def __init__(self, channels: int, mlp_ratio: float = 5, bias: bool = False,
                 drop: float = 0.) -> None:
        super().__init__()
        hidden = int(mlp_ratio * channels)
        self.fc1 = nn.Linear(channels, hidden, bias=True)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden // 2, channels, bias=bias)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        half = x.shape[-1] // 2
        x = self.drop(x[..., :half] * self.act(x[..., half:]))
        return self.drop(self.fc2(x))


class ParCNetV2Block(nn.Module):
    """``x = rs1(x) + ls1(drop_path(mixer(norm1(x))))``, the same with the BGU MLP (official
    ``ParCNetV2Block``; ``rs`` / ``ls`` are residual / layer scales where configured)."""

    def __init__(self, channels: int, global_kernel_size: int, mlp_ratio: float = 5,
                 drop_path: float = 0., layer_scale_init_value: Optional[float] = None,
                 res_scale_init_value: Optional[float] = None, interpolate: Interpolate = False,
                 impl: str = 'auto') -> None:
        super().__init__()
        self.norm1 = CenteredL2Norm(channels)
        self.token_mixer = ParCV2Mixer(channels, global_kernel_size, interpolate=interpolate,
                                       impl=impl)
        self.norm2 = CenteredL2Norm(channels)
        self.mlp = BGU(channels, mlp_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

        def scale(value):
            return Scale(channels, value) if value else nn.Identity()

        self.layer_scale1, self.layer_scale2 = scale(layer_scale_init_value), \
            scale(layer_scale_init_value)
        self.res_scale1, self.res_scale2 = scale(res_scale_init_value), \
            scale(res_scale_init_value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_scale1(x) + self.layer_scale1(self.drop_path(self.token_mixer(self.norm1(x))))
        return self.res_scale2(x) + self.layer_scale2(self.drop_path(self.mlp(self.norm2(x))))


class Downsampling(nn.Module):
    """A strided conv between stages, channels-last in and out: the stem (k7 s4 p2, norm
    after) or a stage transition (norm before, k3 s2 p1); official ``Downsampling``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 padding: int, pre_norm: bool = False, post_norm: bool = False) -> None:
        super().__init__()
        self.pre_norm = CenteredL2Norm(in_channels) if pre_norm else nn.Identity()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)
        self.post_norm = CenteredL2Norm(out_channels) if post_norm else nn.Identity()
        self.channels_last_input = pre_norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last_input:
            x = self.pre_norm(x).permute(0, 3, 1, 2)
        return self.post_norm(self.conv(x).permute(0, 2, 3, 1))

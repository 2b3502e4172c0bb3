"""ParC as the depthwise conv of an inverted residual (ParC-MobileNetV2)."""
from __future__ import annotations

from typing import Optional

import torch.nn as nn
from mmcv.cnn import build_activation_layer, build_norm_layer

from .parc import ParCHW


class ParCConvModule(nn.Module):
    """ParC-H/W (depthwise) -> norm -> activation: the drop-in for an inverted residual's
    depthwise 3x3 ConvModule, with the same ``conv``/``bn`` names."""

    def __init__(self, channels: int, base_size, use_pe: bool, impl: str,
                 norm_cfg: dict, act_cfg: Optional[dict], bias: bool = True) -> None:
        super().__init__()
        self.conv = ParCHW(channels, base_size, use_pe=use_pe, bias=bias, impl=impl,
                           init_std=None)
        self.bn = build_norm_layer(norm_cfg, channels)[1]
        self.activate = build_activation_layer(act_cfg) if act_cfg else nn.Identity()

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))

"""The block ParCFPN puts on a pyramid level: a pre-norm ParC mixer and FFN with layer scale."""
from __future__ import annotations

from typing import Tuple, Union

import torch
import torch.nn as nn

from .parc import ParCHW


class ParCFPNBlock(nn.Module):
    """x + g1 * ParCHW(GN(x)); then + g2 * FFN(GN(.)) with a 1x1-GELU-1x1 FFN.

    Layer scales start at ``layer_scale`` so a freshly added block is (almost) the identity
    and a pretrained FPN keeps its behaviour at the start of fine-tuning.
    """

    def __init__(self, channels: int, base_size: Union[int, Tuple[int, int]],
                 ffn_ratio: float = 2.0, layer_scale: float = 1e-6, impl: str = 'auto') -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, channels)
        self.parc = ParCHW(channels, base_size, use_pe=True, bias=True, impl=impl)
        self.norm2 = nn.GroupNorm(1, channels)
        hidden = int(channels * ffn_ratio)
        self.ffn = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.GELU(),
                                 nn.Conv2d(hidden, channels, 1))
        self.gamma1 = nn.Parameter(torch.full((channels, 1, 1), float(layer_scale)))
        self.gamma2 = nn.Parameter(torch.full((channels, 1, 1), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.gamma1 * self.parc(self.norm1(x))
        return x + self.gamma2 * self.ffn(self.norm2(x))

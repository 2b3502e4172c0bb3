"""The ParC-Net (ParC-Net-S / XS) building blocks, as the official cvnets ``edgeformer`` code
(``gcc_ca_mf_block``): two ParC branches (H->W and W->H) on the two channel halves, a channel
attention (an SE variant) after the FFN, and the unit that replaces MobileViT's block."""
from __future__ import annotations

import math
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer

from .parc import ParCConv2d, ParCPosEmbed, halves

Size = Union[int, Tuple[int, int]]


def pair(size: Size) -> Tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


class ParCBranch(nn.Module):
    """One branch of a ParC-Net block: ``[+PE] -> norm -> ParC-<a> -> [+PE] ParC-<b>``.

    ``order='HW'`` is the official ``x_1`` branch (``meta_pe_1_H``, ``pre_Norm_1``,
    ``meta_kernel_1_H``, ``meta_pe_2_W``, ``meta_kernel_2_W``); ``'WH'`` the ``x_2`` branch.
    The first embedding is added *before* the norm, the second before the second conv
    (``conv2.pe``), as the official block does.
    """

    def __init__(self, channels: int, order: str, base_size: Size, use_pe: bool, bias: bool,
                 impl: str, norm_cfg: dict) -> None:
        super().__init__()
        if order not in ('HW', 'WH'):
            raise ValueError(f"ParCBranch order must be 'HW' or 'WH', got {order!r}")
        base = dict(zip('HW', pair(base_size)))
        first, second = order
        self.pe = ParCPosEmbed(channels, first, base[first]) if use_pe else None
        self.norm = build_norm_layer(norm_cfg, channels)[1]
        # init_std=None: the conv default init, which the official kernels inherit from the
        # nn.Conv2d they are taken from.
        self.conv1 = ParCConv2d(channels, first, base[first], use_pe=False, bias=bias,
                                impl=impl, init_std=None)
        self.conv2 = ParCConv2d(channels, second, base[second], use_pe=use_pe, bias=bias,
                                impl=impl, init_std=None)
        if use_pe:  # the official embeddings start from randn (std 1)
            nn.init.normal_(self.pe.weight)
            nn.init.normal_(self.conv2.pe)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pe is not None:
            x = self.pe(x)
        return self.conv2(self.conv1(self.norm(x)))


class ChannelAttention(nn.Module):
    """GAP -> 1x1 (C/r) -> BN -> Hardswish -> 1x1 (C) -> BN -> Hardsigmoid, scaling the input
    (the official ``CA_layer``; unlike an SE layer it normalises both projections)."""

    def __init__(self, channels: int, reduction: int = 16, norm_cfg: Optional[dict] = None
                 ) -> None:
        super().__init__()
        norm_cfg = norm_cfg or dict(type='BN')
        mid = channels // reduction
        if mid < 1:
            raise ValueError(f'ChannelAttention: {channels} channels / reduction {reduction} '
                             'leaves no hidden channel')
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False), build_norm_layer(norm_cfg, mid)[1],
            nn.Hardswish(),
            nn.Conv2d(mid, channels, 1, bias=False), build_norm_layer(norm_cfg, channels)[1],
            nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1 and any(
                isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training
                for m in self.fc):
            raise ValueError(
                'ParC-Net channel attention normalises globally pooled features with '
                'BatchNorm (as the official model does): one image per batch leaves one value '
                'per channel, which BatchNorm cannot train on. Train with at least 2 images '
                'per GPU (train_dataloader.batch_size >= 2), or freeze the norms '
                '(norm_eval=True in the backbone config).')
        return x * self.fc(self.gap(x))


class ParCNetBlock(nn.Module):
    """The ParC-Net block (official ``gcc_ca_mf_block``), replacing a transformer block.

    Channels split in half: the first half runs ParC-H then ParC-W (:class:`ParCBranch`
    ``'HW'``), the second ParC-W then ParC-H, each with a residual; then an FFN
    ``BN -> 1x1 -> Hardswish -> 1x1`` scaled by :class:`ChannelAttention`, with a residual.

    Args:
        channels: block width (even).
        ffn_channels: FFN hidden width.
        base_size: kernel / PE length (int or (h, w)): the feature size at the training
            resolution; resized to the input on every forward.
        use_pe: position embeddings (official: only the first block of each unit).
        bias: ParC bias (official ParC-Net: none).
        ffn_drop / drop: dropout inside / after the FFN (official 0.0 / 0.1).
    """

    def __init__(self,
                 channels: int,
                 ffn_channels: int,
                 base_size: Size,
                 use_pe: bool = True,
                 bias: bool = False,
                 impl: str = 'auto',
                 norm_cfg: Optional[dict] = None,
                 ffn_drop: float = 0.0,
                 drop: float = 0.1) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError(f'ParCNetBlock splits channels in half: got odd {channels}')
        norm_cfg = norm_cfg or dict(type='BN')
        half = channels // 2
        self.channels = channels
        self.branch_hw = ParCBranch(half, 'HW', base_size, use_pe, bias, impl, norm_cfg)
        self.branch_wh = ParCBranch(half, 'WH', base_size, use_pe, bias, impl, norm_cfg)
        # indices 0/1/4 as the official nn.Sequential, so checkpoints convert by prefix only
        self.ffn = nn.Sequential(
            build_norm_layer(norm_cfg, channels)[1],
            nn.Conv2d(channels, ffn_channels, 1), nn.Hardswish(), nn.Dropout(ffn_drop),
            nn.Conv2d(ffn_channels, channels, 1), nn.Dropout(drop))
        self.ca = ChannelAttention(channels, norm_cfg=norm_cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f'ParCNetBlock built for (B, {self.channels}, H, W) got '
                             f'{tuple(x.shape)}')
        a, b = halves(x)
        x = torch.cat([a + self.branch_hw(a), b + self.branch_wh(b)], dim=1)
        return x + self.ca(self.ffn(x))


class ParCNetUnit(nn.Module):
    """Where MobileViT has its MobileViT block (official ``outer_frame_v1``).

    ``local_rep`` (3x3 grouped conv-BN-act, 1x1 to ``unit_channels``) -> ``global_rep``
    (``num_blocks`` :class:`ParCNetBlock` + BN) -> ``proj`` (grouped 1x1-BN-act back to
    ``in_channels``) -> ``fusion`` with the unit input: ``'concat'`` (3x3 over
    ``[global, input]``, ParC-Net-S) or ``'add'`` (3x3 over ``global + input``, XS).
    """

    def __init__(self,
                 in_channels: int,
                 unit_channels: int,
                 ffn_channels: int,
                 num_blocks: int,
                 base_size: Size,
                 fusion: str = 'concat',
                 use_pe: bool = True,
                 bias: bool = False,
                 impl: str = 'auto',
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 drop: float = 0.1) -> None:
        super().__init__()
        if fusion not in ('concat', 'add'):
            raise ValueError(f"ParCNetUnit fusion must be 'concat' or 'add', got {fusion!r}")
        norm_cfg = norm_cfg or dict(type='BN')
        act_cfg = act_cfg or dict(type='Swish')
        groups = math.gcd(in_channels, unit_channels)
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.fusion_mode = fusion
        self.local_rep = nn.Sequential(
            ConvModule(in_channels, unit_channels, 3, padding=1, groups=groups, **common),
            ConvModule(unit_channels, unit_channels, 1, bias=False, conv_cfg=conv_cfg,
                       norm_cfg=None, act_cfg=None))
        blocks: List[nn.Module] = [
            ParCNetBlock(unit_channels, ffn_channels, base_size, use_pe=use_pe and i == 0,
                         bias=bias, impl=impl, norm_cfg=norm_cfg, drop=drop)
            for i in range(num_blocks)
        ]
        blocks.append(build_norm_layer(norm_cfg, unit_channels)[1])
        self.global_rep = nn.Sequential(*blocks)
        self.proj = ConvModule(unit_channels, in_channels, 1, groups=groups, **common)
        fused_in = 2 * in_channels if fusion == 'concat' else in_channels
        self.fusion = ConvModule(fused_in, in_channels, 3, padding=1, **common)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(self.global_rep(self.local_rep(x)))
        if self.fusion_mode == 'concat':
            return self.fusion(torch.cat([y, x], dim=1))
        return self.fusion(x + y)


__all__ = ['ParCBranch', 'ChannelAttention', 'ParCNetBlock', 'ParCNetUnit', 'Size', 'pair']

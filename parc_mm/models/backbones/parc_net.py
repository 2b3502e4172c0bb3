"""ParC-Net-S / XS (ECCV'22): MobileViT with every transformer replaced by ParC blocks.

Structure (official cvnets ``edgeformer`` model, ``outer_frame_v1`` + ``gcc_ca_mf_block``):
stem conv3x3/s2 (16) -> MobileNetV2 layers 1-2 -> layers 3-5, each a stride-2 inverted
residual followed by a :class:`ParCNetUnit` -> 1x1 conv to ``min(4 * C, 960)``.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule, build_norm_layer
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.backbones.mobilevit import MobileViT
from torch.nn.modules.batchnorm import _BatchNorm

from parc_mm.ops import ParCConv2d, ParCPosEmbed
from parc_mm.registry import MODELS

from ..utils import check_img_size

Size = Union[int, Tuple[int, int]]


def _pair(size: Size) -> Tuple[int, int]:
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
        base = dict(zip('HW', _pair(base_size)))
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
        a, b = torch.chunk(x, 2, dim=1)
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


@MODELS.register_module()
class ParCNet(BaseBackbone):
    """ParC-Net-S / XS backbone (ParC-Net, ECCV'22; cvnets name ``edgeformer``).

    Output indices: 0-4 are layers 1-5 (strides 2, 4, 8, 16, 32 at output_stride 32;
    channels 32, 64, 96, 128, 160), 5 is the final 1x1 conv (640 channels), which is built
    only when requested. Classification uses ``(5,)``; SSDLite ``(3, 4)``; DeepLabV3
    ``(4,)`` with ``output_stride=16``.

    Args:
        arch: ``'s'`` or ``'xs'``, or a dict with ``mv2`` (``[out, stride, blocks, expand]``
            per MobileNetV2 layer), ``units`` (``[out, unit_channels, ffn_channels, blocks]``
            per ParC layer, each after a stride-2 inverted residual with expand 4) and
            ``fusion``.
        img_size: training resolution; kernels / PEs are stored at the feature sizes it
            gives (256 -> 32 / 16 / 8) unless ``parc_base_sizes`` is set.
        output_stride: 32, 16 (layer 5 keeps its resolution) or 8 (layers 4 and 5), for
            dense prediction; as cvnets, the dilation only reaches layer 5's inverted
            residual (2 at output stride 8).
        parc_pe: ``'first'`` (official: first ParC block of each unit) or ``'none'``.
        parc_bias: ParC biases (official: none).
        parc_impl: ``'auto' | 'direct' | 'fft' | 'gemm'``.
        drop_rate: dropout after each block's FFN (official 0.1).
        frozen_stages: -1 none; 0 the stem; i the stem and layers 1..i.
        norm_eval: keep norm layers in eval mode while training.
    """

    arch_zoo: Dict[str, dict] = {
        's': dict(mv2=[[32, 1, 1, 4], [64, 2, 3, 4]],
                  units=[[96, 192, 384, 2], [128, 256, 512, 4], [160, 320, 640, 3]],
                  fusion='concat'),
        'xs': dict(mv2=[[32, 1, 1, 4], [64, 2, 3, 4]],
                   units=[[96, 96, 192, 2], [128, 128, 256, 3], [160, 160, 320, 2]],
                   fusion='add'),
    }
    num_layers = 5

    def __init__(self,
                 arch: Union[str, dict] = 's',
                 in_channels: int = 3,
                 stem_channels: int = 16,
                 img_size: int = 256,
                 parc_base_sizes: Optional[Sequence[Size]] = None,
                 out_indices: Union[int, Sequence[int]] = (5, ),
                 output_stride: int = 32,
                 parc_pe: str = 'first',
                 parc_bias: bool = False,
                 parc_impl: str = 'auto',
                 drop_rate: float = 0.1,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='Swish'),
                 init_cfg: Optional[Union[dict, List[dict]]] = (
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']))
                 ) -> None:
        super().__init__(init_cfg=list(init_cfg) if isinstance(init_cfg, tuple) else init_cfg)
        if isinstance(arch, str):
            if arch.lower() not in self.arch_zoo:
                raise ValueError(f'Unknown ParCNet arch {arch!r}: choose from '
                                 f'{sorted(self.arch_zoo)} or pass a dict with mv2/units/fusion')
            arch = self.arch_zoo[arch.lower()]
        missing = {'mv2', 'units', 'fusion'} - set(arch)
        if missing:
            raise ValueError(f'ParCNet arch dict lacks {sorted(missing)}')
        if len(arch['mv2']) + len(arch['units']) != self.num_layers:
            raise ValueError('ParCNet arch needs 5 layers in all (mv2 + units)')
        if parc_pe not in ('first', 'none'):
            raise ValueError(f"parc_pe must be 'first' or 'none', got {parc_pe!r}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f'output_stride must be 8, 16 or 32, got {output_stride}')
        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        n_out = self.num_layers + 1
        if not out_indices or any(not -n_out <= i < n_out for i in out_indices):
            raise ValueError(f'out_indices must be in 0..{self.num_layers} (layers 1-5, then the '
                             f'final 1x1 conv), got {out_indices}')
        out_indices = sorted(i % n_out for i in out_indices)
        if not -1 <= frozen_stages <= self.num_layers:
            raise ValueError(f'frozen_stages must be in -1..{self.num_layers}')
        n_units = len(arch['units'])
        if parc_base_sizes is None:
            check_img_size(img_size)
            first = self.num_layers - n_units  # strides 8, 16, 32 at output_stride 32
            parc_base_sizes = [max(1, img_size // 2**(first + 1 + i)) for i in range(n_units)]
        if len(parc_base_sizes) != n_units:
            raise ValueError(f'parc_base_sizes needs {n_units} values, got {parc_base_sizes}')
        self.arch = arch
        self.out_indices = out_indices
        self.output_stride = output_stride
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.parc_base_sizes = [_pair(s) for s in parc_base_sizes]

        self.stem = ConvModule(in_channels, stem_channels, 3, stride=2, padding=1,
                               conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        layers = []
        ch = stem_channels
        for out, stride, blocks, expand in arch['mv2']:
            layer, ch = MobileViT.make_mobilenetv2_layer(ch, out, stride, blocks, expand)
            layers.append(layer)
        # the last layers keep their resolution for dense prediction (cvnets' dilate_l4/l5);
        # each one's inverted residual is dilated by the strides dropped before it
        first_kept = self.num_layers - {32: 0, 16: 1, 8: 2}[output_stride]
        for i, (out, unit_ch, ffn_ch, blocks) in enumerate(arch['units']):
            layer, _ = MobileViT.make_mobilenetv2_layer(ch, out, 2, 1, 4)
            layer_idx = len(layers)
            if layer_idx >= first_kept:
                self._undo_stride(layer[0], dilation=2**(layer_idx - first_kept))
            layer.append(ParCNetUnit(out, unit_ch, ffn_ch, blocks, self.parc_base_sizes[i],
                                     fusion=arch['fusion'], use_pe=parc_pe == 'first',
                                     bias=parc_bias, impl=parc_impl, conv_cfg=conv_cfg,
                                     norm_cfg=norm_cfg, act_cfg=act_cfg, drop=drop_rate))
            layers.append(layer)
            ch = out
        self.layers = nn.Sequential(*layers)
        self.out_channels = [c[0] for c in arch['mv2']] + [c[0] for c in arch['units']]
        if self.num_layers in out_indices:
            exp = min(4 * ch, 960)
            self.conv_1x1_exp = ConvModule(ch, exp, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                                           act_cfg=act_cfg)
            self.out_channels.append(exp)
        self._freeze_stages()

    @staticmethod
    def _undo_stride(block: nn.Module, dilation: int) -> None:
        """Turn the stride-2 depthwise conv of an inverted residual into stride 1 (and the
        given dilation), keeping its parameters."""
        dw = block.conv[1].conv
        dw.stride = (1, 1)
        dw.dilation = (dilation, dilation)
        dw.padding = (dilation, dilation)
        block.stride = 1

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        if self.num_layers in self.out_indices:
            outs.append(self.conv_1x1_exp(x))
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        frozen = [self.stem] + list(self.layers[:self.frozen_stages])
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> 'ParCNet':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self


__all__ = ['ParCNet', 'ParCNetBlock', 'ParCNetUnit', 'ParCBranch', 'ChannelAttention']

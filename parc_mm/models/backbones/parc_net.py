"""ParC-Net-S / XS (ECCV'22): MobileViT with every transformer replaced by ParC blocks.

Structure (official cvnets ``edgeformer`` model, ``outer_frame_v1`` + ``gcc_ca_mf_block``):
stem conv3x3/s2 (16) -> MobileNetV2 layers 1-2 -> layers 3-5, each a stride-2 inverted
residual followed by a :class:`ParCNetUnit` -> 1x1 conv to ``min(4 * C, 960)``.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.models.backbones.mobilevit import MobileViT
from torch.nn.modules.batchnorm import _BatchNorm

from parc_mm.registry import MODELS

from ..layers.inverted_residual import InvertedResidual
from ..layers.parc_net_blocks import (
    ParCNetUnit,
    Size,
    pair,
)
from ..placement import check_base_sizes, derive_base_sizes, parc_settings


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
        img_size: training resolution (int or (h, w)); kernels / PEs are stored at the
            feature sizes it gives (256 -> 32 / 16 / 8) unless ``parc_cfg.base_sizes`` is set.
        parc_cfg: ``base_sizes``, ``img_size``, ``pe`` (``'first'``, official: the first
            ParC block of each unit; or ``'none'``), ``bias`` (official: False), ``impl``
            (:mod:`parc_mm.models.placement`; the units' places are fixed).
        output_stride: 32, 16 (layer 5 keeps its resolution) or 8 (layers 4 and 5), for
            dense prediction; as cvnets, the dilation only reaches layer 5's inverted
            residual (2 at output stride 8).
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
                 img_size: Size = 256,
                 parc_cfg: Optional[dict] = None,
                 out_indices: Union[int, Sequence[int]] = (5, ),
                 output_stride: int = 32,
                 drop_rate: float = 0.1,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='Swish'),
                 init_cfg: Optional[Union[dict, List[dict]]] = (
                     dict(type='Kaiming', layer=['Conv2d']),
                     dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])),
                 ) -> None:
        super().__init__(init_cfg=list(init_cfg) if isinstance(init_cfg, tuple) else init_cfg)
        # ParC sits in the units of layers 3-5 (structural: no ``blocks`` key)
        self.parc_cfg = parc_settings(type(self).__name__, parc_cfg, dict(
            base_sizes=None, img_size=img_size, pe='first', bias=False, impl='auto'))
        self.arch = self._parse_arch(arch)
        self.out_indices = self._parse_outputs(out_indices, output_stride, frozen_stages)
        self.output_stride = output_stride
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        n_units = len(self.arch['units'])
        first = self.num_layers - n_units
        # kernels at the nominal strides 8, 16, 32 (also when output_stride keeps maps larger:
        # they are resized to the maps like every ParC kernel)
        sizes = self.parc_cfg['base_sizes'] or derive_base_sizes(
            self.parc_cfg['img_size'], [2**(first + 1 + i) for i in range(n_units)])
        self.parc_base_sizes = [pair(s) for s in check_base_sizes(sizes, n_units)]
        self._build(in_channels, stem_channels, drop_rate,
                    dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg))
        self._freeze_stages()

    def _parse_arch(self, arch: Union[str, dict]) -> dict:
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
        if self.parc_cfg['pe'] not in ('first', 'none'):
            raise ValueError("ParCNet parc_cfg pe must be 'first' or 'none', got "
                             f"{self.parc_cfg['pe']!r}")
        return arch

    def _parse_outputs(self, out_indices, output_stride: int, frozen_stages: int) -> List[int]:
        if output_stride not in (8, 16, 32):
            raise ValueError(f'output_stride must be 8, 16 or 32, got {output_stride}')
        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        n_out = self.num_layers + 1
        if not out_indices or any(not -n_out <= i < n_out for i in out_indices):
            raise ValueError(f'out_indices must be in 0..{self.num_layers} (layers 1-5, then the '
                             f'final 1x1 conv), got {out_indices}')
        if not -1 <= frozen_stages <= self.num_layers:
            raise ValueError(f'frozen_stages must be in -1..{self.num_layers}')
        return sorted(i % n_out for i in out_indices)

    def _build(self, in_channels: int, stem_channels: int, drop_rate: float,
               layer_cfg: dict) -> None:
        arch, cfg = self.arch, self.parc_cfg
        self.stem = ConvModule(in_channels, stem_channels, 3, stride=2, padding=1, **layer_cfg)
        layers = []
        ch = stem_channels
        for out, stride, blocks, expand in arch['mv2']:
            layer, ch = MobileViT.make_mobilenetv2_layer(ch, out, stride, blocks, expand)
            layers.append(layer)
        # the last layers keep their resolution for dense prediction (cvnets' dilate_l4/l5):
        # their inverted residual drops its stride and is dilated by the strides dropped
        # before it
        first_kept = self.num_layers - {32: 0, 16: 1, 8: 2}[self.output_stride]
        for i, (out, unit_ch, ffn_ch, blocks) in enumerate(arch['units']):
            layer_idx = len(layers)
            kept = layer_idx >= first_kept
            down = InvertedResidual(ch, out, 2, 4, act_cfg=dict(type='Swish'),
                                    drop_stride=kept,
                                    dilation=2**(layer_idx - first_kept) if kept else 1)
            layer = nn.Sequential(down, ParCNetUnit(
                out, unit_ch, ffn_ch, blocks, self.parc_base_sizes[i], fusion=arch['fusion'],
                use_pe=cfg['pe'] == 'first', bias=cfg['bias'], impl=cfg['impl'],
                drop=drop_rate, **layer_cfg))
            layers.append(layer)
            ch = out
        self.layers = nn.Sequential(*layers)
        self.out_channels = [c[0] for c in arch['mv2']] + [c[0] for c in arch['units']]
        if self.num_layers in self.out_indices:
            exp = min(4 * ch, 960)
            self.conv_1x1_exp = ConvModule(ch, exp, 1, **layer_cfg)
            self.out_channels.append(exp)

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


__all__ = ['ParCNet']

"""ParCNetV2 (Xu et al., ICCV 2023): oversized linear global convolutions and Bifurcate Gate
Units in a four-stage MetaFormer-like ConvNet, on the ParC operator's linear mode."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
from mmpretrain.models.backbones.base_backbone import BaseBackbone

from parc_mm.registry import MODELS

from ..layers.parcnetv2_blocks import CenteredL2Norm, Downsampling, ParCNetV2Block
from ..placement import Size, check_img_size, parc_settings


@MODELS.register_module()
class ParCNetV2(BaseBackbone):
    """ParCNetV2 backbone (`arXiv 2211.07157 <https://arxiv.org/abs/2211.07157>`_).

    Args:
        arch: ``'xt'``, ``'tiny'``, ``'small'``, ``'base'`` (the official depths / widths) or
            a dict with ``depths`` and ``channels``.
        parc_cfg: the oversized convs: ``kernel_sizes`` (per stage; default ``2 s - 1`` for
            the stage's feature size ``s`` at ``img_size``: [111, 55, 27, 13] at 224, the
            official kernels), ``interpolate`` (False: the stored kernel on every input, as
            the official models; True: resized to ``2n - 1`` for a map of ``n``; or an odd
            int), ``impl`` (``'auto' | 'direct' | 'fft' | 'gemm'``; ``direct`` is the
            official computation).
        img_size: the training resolution the default kernel sizes derive from.
        mlp_ratio: BGU hidden ratio (5).
        drop_path_rate: stochastic depth, linear over all blocks.
        layer_scale_init_value: per-block layer scale (None: none, the official default).
        res_scale_init_values: per-stage residual scale init (official ``[None, None, 1, 1]``).
        out_indices: stages whose output is returned.
        frozen_stages: stages (with their downsampling) to freeze; -1 none.
        gap_before_final_norm: classification form: global average pool then ``nn.LayerNorm``
            (the official classifier's ``norm``), one ``(B, C)`` per out index. False (dense
            tasks): each out index normalised per position by ``CenteredL2Norm`` (the
            official detection / segmentation ``norm{i}``), ``(B, C, H, W)``.
        init_cfg: mmengine init config (default: truncated normal 0.02 on Conv / Linear).

    Parameter names follow the official code (``downsample_layers.<i>``, ``stages.<i>.<j>``,
    ``token_mixer.dwconv1.conv_h.weight`` ...): official checkpoints convert by prefixing.
    """
    arch_settings = {
        'xt': dict(depths=[3, 3, 9, 2], channels=[48, 96, 192, 320]),
        'tiny': dict(depths=[3, 3, 12, 3], channels=[64, 128, 320, 512]),
        'small': dict(depths=[3, 9, 24, 3], channels=[64, 128, 320, 512]),
        'base': dict(depths=[3, 9, 24, 3], channels=[96, 192, 384, 576]),
    }
    parc_defaults = dict(kernel_sizes=None, interpolate=False, impl='auto')

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 parc_cfg: Optional[dict] = None,
                 img_size: Size = 224,
                 in_channels: int = 3,
                 mlp_ratio: float = 5,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: Optional[float] = None,
                 res_scale_init_values: Sequence[Optional[float]] = (None, None, 1.0, 1.0),
                 out_indices: Union[int, Sequence[int]] = -1,
                 frozen_stages: int = -1,
                 gap_before_final_norm: bool = True,
                 init_cfg: Optional[Union[dict, list]] = (
                     dict(type='TruncNormal', layer=['Conv2d', 'Linear'], std=.02, bias=0.),
                     dict(type='Constant', layer=['LayerNorm'], val=1., bias=0.)),
                 ) -> None:
        super().__init__(init_cfg=list(init_cfg) if isinstance(init_cfg, tuple) else init_cfg)
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise ValueError(f'Unknown ParCNetV2 arch {arch!r}; choose one of '
                                 f'{sorted(self.arch_settings)} or pass dict(depths=..., '
                                 'channels=...)')
            arch = self.arch_settings[arch]
        elif not (isinstance(arch, dict) and {'depths', 'channels'} <= set(arch)):
            raise ValueError(f'ParCNetV2 arch must be a name or a dict with depths and '
                             f'channels, got {arch!r}')
        self.depths = list(arch['depths'])
        self.channels = list(arch['channels'])
        if len(self.depths) != 4 or len(self.channels) != 4:
            raise ValueError(f'ParCNetV2 has four stages: depths and channels need 4 entries, '
                             f'got {self.depths} / {self.channels}')
        self.num_stages = 4
        self.img_size = check_img_size(img_size)
        self.parc_cfg = parc_settings(type(self).__name__, parc_cfg, self.parc_defaults)
        self.kernel_sizes = self._kernel_sizes(self.parc_cfg['kernel_sizes'])
        if len(res_scale_init_values) != 4:
            raise ValueError('res_scale_init_values needs one value (or None) per stage, got '
                             f'{res_scale_init_values!r}')
        if isinstance(out_indices, int):
            out_indices = [out_indices]
        out = []
        for i in out_indices:
            j = i + 4 if isinstance(i, int) and i < 0 else i
            if not isinstance(j, int) or not 0 <= j < 4:
                raise ValueError(f'ParCNetV2 out_indices must be stage indices in [-4, 3], got '
                                 f'{out_indices!r}')
            out.append(j)
        self.out_indices = sorted(set(out))
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages < 4:
            raise ValueError(f'frozen_stages must be -1 (none) to 3, got {frozen_stages!r}')
        self.frozen_stages = frozen_stages
        self.gap_before_final_norm = gap_before_final_norm

        dims = [in_channels] + self.channels
        self.downsample_layers = nn.ModuleList(
            [Downsampling(in_channels, dims[1], 7, 4, 2, post_norm=True)] +
            [Downsampling(dims[i], dims[i + 1], 3, 2, 1, pre_norm=True) for i in range(1, 4)])
        rates = torch.linspace(0, drop_path_rate, sum(self.depths)).tolist()
        self.stages = nn.ModuleList()
        cur = 0
        for i, depth in enumerate(self.depths):
            self.stages.append(nn.Sequential(*[
                ParCNetV2Block(self.channels[i], self.kernel_sizes[i], mlp_ratio,
                               drop_path=rates[cur + j],
                               layer_scale_init_value=layer_scale_init_value,
                               res_scale_init_value=res_scale_init_values[i],
                               interpolate=self.parc_cfg['interpolate'],
                               impl=self.parc_cfg['impl']) for j in range(depth)]))
            cur += depth
        for i in self.out_indices:
            norm = nn.LayerNorm(self.channels[i], eps=1e-6) if gap_before_final_norm else \
                CenteredL2Norm(self.channels[i])
            self.add_module(f'norm{i}', norm)
        self._freeze_stages()

    def _kernel_sizes(self, sizes):
        if sizes is None:
            h, w = self.img_size
            if h != w:
                raise ValueError(f'ParCNetV2 kernels are square: for img_size {self.img_size} '
                                 'give parc_cfg kernel_sizes explicitly')
            feats = [h // 4 // 2**i for i in range(4)]
            if min(feats) < 1:
                raise ValueError(f'img_size {h} is too small for ParCNetV2 (stride 32): use >= 32')
            return [2 * s - 1 for s in feats]
        if len(sizes) != 4 or not all(isinstance(k, int) and not isinstance(k, bool) and k > 0
                                      and k % 2 for k in sizes):
            raise ValueError(f'parc_cfg kernel_sizes must be 4 odd positive ints (one per stage,'
                             f' e.g. [111, 55, 27, 13]), got {sizes!r}')
        return list(sizes)

    def forward(self, x: torch.Tensor):
        if x.shape[-2] < 32 or x.shape[-1] < 32:
            raise ValueError(f'ParCNetV2 needs inputs of at least 32x32 pixels (stride 4 stem '
                             f'and three 2x downsamplings), got {tuple(x.shape[-2:])}; resize '
                             'or pad the input.')
        outs = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            if i in self.out_indices:
                norm = getattr(self, f'norm{i}')
                if self.gap_before_final_norm:
                    outs.append(norm(x.mean([1, 2])))
                else:
                    outs.append(norm(x).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages + 1):
            for m in (self.downsample_layers[i], self.stages[i]):
                m.eval()
                for p in m.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        return self

    def get_layer_depth(self, param_name: str, prefix: str = ''):
        """Layer id and count for layer-wise learning-rate decay (mmpretrain's
        ``LearningRateDecayOptimWrapperConstructor``), grouped as ConvNeXt's: stem and
        stages 1-2 one id each, stage 3 in groups of three blocks, stage 4 the last."""
        max_layer_id = 4 + math.ceil(self.depths[2] / 3)
        if not param_name.startswith(prefix):
            return max_layer_id + 1, max_layer_id + 2
        name = param_name[len(prefix):]
        if name.startswith('downsample_layers'):
            stage = int(name.split('.')[1])
            layer_id = (0, 2, 3, max_layer_id)[stage]
        elif name.startswith('stages'):
            stage, block = int(name.split('.')[1]), int(name.split('.')[2])
            layer_id = (1, 2, 3 + block // 3, max_layer_id)[stage]
        else:
            layer_id = max_layer_id + 1
        return layer_id, max_layer_id + 2

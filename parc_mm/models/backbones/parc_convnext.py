"""ParC-ConvNeXt: ConvNeXt whose chosen blocks mix tokens with global ParC instead of dw 7x7."""
from __future__ import annotations

from typing import Optional, Union

from mmpretrain.models.backbones.convnext import ConvNeXt

from parc_mm.registry import MODELS

from ..layers.parc import ParCHW
from ..placement import ParCBackbone, Size


@MODELS.register_module()
class ParCConvNeXt(ParCBackbone, ConvNeXt):
    """ParC-ConvNeXt backbone (`ParC-Net <https://arxiv.org/abs/2203.03952>`_, Fast-ParC).

    mmpretrain's :class:`ConvNeXt` with the depthwise 7x7 conv of chosen blocks replaced by
    :class:`~parc_mm.models.layers.ParCHW` (ParC-H on the first channel half, ParC-W on the second,
    position embedding, bias). Everything else — interface, parameter names
    (``downsample_layers``, ``stages.<i>.<j>``, so mmdet/mmseg layer-decay constructors accept
    it), ``get_layer_depth``, freezing — is ConvNeXt's; a ParC block keeps its mixer under
    ``depthwise_conv`` (``stages.2.6.depthwise_conv.parc_h.weight``).

    Args:
        arch: ``'xt'`` (depths [3,3,9,3], channels [48,96,192,384]), ``'tiny'``, ``'small'``,
            any mmpretrain ConvNeXt arch, or a dict with ``depths`` and ``channels``.
        parc_cfg: where and how ParC goes (:mod:`parc_mm.models.placement`): ``blocks``
            (``'paper'`` default: the last third of stage 3 and the last block of stage 4;
            ``'all'``; ``'none'`` = plain ConvNeXt; or lists), ``base_sizes`` (default: the
            feature size at ``img_size``, 224 -> [56, 28, 14, 7], the official kernels),
            ``pe`` (``'all'`` default), ``bias`` (True), ``impl`` (``'auto'``).
        img_size: training resolution the default base sizes derive from (int or (h, w)).
        **kwargs: everything :class:`mmpretrain.models.ConvNeXt` takes (``out_indices``,
            ``frozen_stages``, ``gap_before_final_norm``, ``drop_path_rate``,
            ``layer_scale_init_value``, ``with_cp``, ``init_cfg``, ...).
    """
    arch_settings = {
        **ConvNeXt.arch_settings,
        'xt': {
            'depths': [3, 3, 9, 3],
            'channels': [48, 96, 192, 384]
        },
    }

    parc_defaults = dict(blocks='paper', base_sizes=None, pe='all', bias=True, impl='auto')
    out_indices_type = list  # ConvNeXt edits it in place

    def __init__(self,
                 arch: Union[str, dict] = 'xt',
                 parc_cfg: Optional[dict] = None,
                 img_size: Size = 224,
                 stem_patch_size: int = 4,
                 **kwargs) -> None:
        if isinstance(arch, str) and arch not in self.arch_settings:
            raise ValueError(f'Unknown ParCConvNeXt arch {arch!r}; choose one of '
                             f'{sorted(self.arch_settings)} or pass dict(depths=..., channels=...)')
        self.parc_configure(parc_cfg, img_size, kwargs)
        super().__init__(arch=arch, stem_patch_size=stem_patch_size, **kwargs)
        self.parc_build()

    def parc_stages(self):
        return list(self.stages)

    def parc_paper(self, depths):
        # official: the last third of stage 3 and the last block of stage 4
        if len(depths) != 4:
            if self.parc_cfg['blocks'] == 'paper':
                raise ValueError("parc_cfg blocks='paper' needs a 4-stage arch; give explicit "
                                 'lists')
            return [[] for _ in depths]
        return [[], [], list(range(depths[2] - depths[2] // 3, depths[2])), [depths[3] - 1]]

    def parc_strides(self):
        stem = self.downsample_layers[0][0].stride[0]
        return [stem * 2**i for i in range(self.num_stages)]

    def parc_swap(self, stage, index, block, base_size, use_pe):
        block.depthwise_conv = ParCHW(self.channels[stage], base_size, use_pe=use_pe,
                                      bias=self.parc_cfg['bias'], impl=self.parc_cfg['impl'])

    def forward(self, x):
        # stem stride x one 2x downsampling per later stage: a smaller input reaches the last
        # downsampling conv as a 1x1 map, which fails deep inside torch with a vaguer message
        min_size = self.downsample_layers[0][0].stride[0] * 2**(self.num_stages - 1)
        if x.shape[-2] < min_size or x.shape[-1] < min_size:
            raise ValueError(
                f'{type(self).__name__} needs inputs of at least {min_size}x{min_size} pixels '
                f'(stem stride {self.downsample_layers[0][0].stride[0]} x {self.num_stages - 1} '
                f'downsamplings by 2), got {tuple(x.shape[-2:])}; resize or pad the input.')
        return super().forward(x)


"""ParC-ConvNeXt: ConvNeXt whose chosen blocks mix tokens with global ParC instead of dw 7x7."""
from __future__ import annotations

from typing import Optional, Union

from mmpretrain.models.backbones.convnext import ConvNeXt

from parc_mm.registry import MODELS

from ..layers.parc import ParCHW
from ..placement import ParCBackboneMixin, Size, parc_settings, place_parc, pop_legacy


@MODELS.register_module()
class ParCConvNeXt(ParCBackboneMixin, ConvNeXt):
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
            ``pe`` (``'all'`` default), ``bias`` (True), ``impl`` (``'auto'``). The first
            release's ``parc_blocks`` / ``parc_base_sizes`` / ``parc_impl`` / ``parc_use_pe``
            / ``parc_bias`` keywords still work, with a deprecation warning.
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

    def __init__(self,
                 arch: Union[str, dict] = 'xt',
                 parc_cfg: Optional[dict] = None,
                 img_size: Size = 224,
                 stem_patch_size: int = 4,
                 **kwargs) -> None:
        if isinstance(arch, str) and arch not in self.arch_settings:
            raise ValueError(f'Unknown ParCConvNeXt arch {arch!r}; choose one of '
                             f'{sorted(self.arch_settings)} or pass dict(depths=..., channels=...)')
        if isinstance(kwargs.get('out_indices'), (list, tuple)):
            kwargs['out_indices'] = list(kwargs['out_indices'])  # ConvNeXt edits it in place
        legacy = pop_legacy(kwargs, ('parc_blocks', 'parc_base_sizes', 'parc_impl',
                                     'parc_use_pe', 'parc_bias'))
        self.parc_cfg = parc_settings(type(self).__name__, parc_cfg, legacy, dict(
            blocks='paper', base_sizes=None, img_size=img_size, pe='all', bias=True,
            impl='auto'))
        super().__init__(arch=arch, stem_patch_size=stem_patch_size, **kwargs)
        n = self.num_stages
        if self.parc_cfg['blocks'] == 'paper' and n != 4:
            raise ValueError("parc_blocks='paper' needs a 4-stage arch; give explicit lists")
        d2, d3 = (self.depths[2], self.depths[3]) if n == 4 else (0, 0)
        # official: the last third of stage 3 and the last block of stage 4
        paper = [[], [], list(range(d2 - d2 // 3, d2)), [d3 - 1]] if n == 4 else []

        def swap(i, j, block, base_size, use_pe):
            block.depthwise_conv = ParCHW(self.channels[i], base_size, use_pe=use_pe,
                                          bias=self.parc_cfg['bias'],
                                          impl=self.parc_cfg['impl'])

        strides = [stem_patch_size * 2**i for i in range(n)]
        self.parc_blocks, self.parc_base_sizes = place_parc(
            self.stages, self.parc_cfg, paper, swap, strides)
        # the replaced modules may belong to frozen stages
        self._freeze_stages()

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


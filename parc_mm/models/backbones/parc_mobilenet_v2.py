"""ParC-MobileNetV2: MobileNetV2 whose chosen inverted residuals use depthwise global ParC."""
from __future__ import annotations

from typing import Optional

from mmpretrain.models.backbones.mobilenet_v2 import MobileNetV2

from parc_mm.registry import MODELS

from ..layers.parc_conv_module import ParCConvModule
from ..placement import ParCBackboneMixin, Size, parc_settings, place_parc, pop_legacy


@MODELS.register_module()
class ParCMobileNetV2(ParCBackboneMixin, MobileNetV2):
    """ParC-MobileNetV2 (ParC-Net, ECCV'22): mmpretrain's :class:`MobileNetV2` where the
    depthwise 3x3 conv of chosen inverted residuals is depthwise ParC-H / ParC-W on the two
    halves of the expanded channels (then BN + ReLU6). Official placement: blocks 2-3 of the
    c=64 stage and block 2 of the c=96 stage (kernel 14), block 2 of the c=160 stage
    (kernel 7); position embedding only in the first ParC block of each stage.

    ``out_indices`` as mmpretrain/mmdet MobileNetV2 (0-6: layer1-7, 7: the final 1x1 conv);
    the paper's detectors use (1, 2, 4, 7) -> channels [24, 32, 96, 1280].

    Args:
        parc_cfg: where and how ParC goes (:mod:`parc_mm.models.placement`): ``blocks``
            (``'paper'``, ``'all'``: every stride-1 block, ``'none'``, or 7 lists),
            ``base_sizes`` (default: the feature size of each layer at ``img_size``), ``pe``
            (``'first'``, official: the first ParC block of each layer; ``'all'``;
            ``'none'``), ``bias``, ``impl``. The first release's ``parc_*`` keywords still
            work, with a deprecation warning.
        img_size: training resolution the default base sizes derive from (int or (h, w)).
        **kwargs: mmpretrain MobileNetV2 arguments (``widen_factor``, ``out_indices``,
            ``frozen_stages``, ``norm_eval``, ``norm_cfg``, ``act_cfg``, ``init_cfg``).
    """
    # layer strides: stem 2, then [1, 2, 2, 2, 1, 2, 1]
    _layer_strides = (2, 4, 8, 16, 16, 32, 32)

    def __init__(self,
                 parc_cfg: Optional[dict] = None,
                 img_size: Size = 224,
                 **kwargs) -> None:
        if isinstance(kwargs.get('out_indices'), list):
            kwargs['out_indices'] = tuple(kwargs['out_indices'])
        legacy = pop_legacy(kwargs, ('parc_blocks', 'parc_base_sizes', 'parc_pe', 'parc_impl'))
        self.parc_cfg = parc_settings(type(self).__name__, parc_cfg, legacy, dict(
            blocks='paper', base_sizes=None, img_size=img_size, pe='first', bias=True,
            impl='auto'))
        super().__init__(**kwargs)
        layers = [getattr(self, name) for name in self.layers if name.startswith('layer')]
        paper = [[], [], [], [2, 3], [2], [2], []]
        norm_cfg = kwargs.get('norm_cfg', dict(type='BN'))
        act_cfg = kwargs.get('act_cfg', dict(type='ReLU6'))
        cfg = self.parc_cfg

        def swap(i, j, block, base_size, use_pe):
            dw_idx = len(block.conv) - 2  # [expand,] dw, linear
            hidden = block.conv[dw_idx].conv.in_channels
            block.conv[dw_idx] = ParCConvModule(hidden, base_size, use_pe, cfg['impl'],
                                                norm_cfg, act_cfg, bias=cfg['bias'])

        self.parc_blocks, self.parc_base_sizes = place_parc(
            layers, cfg, paper, swap, self._layer_strides,
            replaceable=lambda block: block.stride == 1)
        self._freeze_stages()

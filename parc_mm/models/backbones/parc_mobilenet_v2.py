"""ParC-MobileNetV2: MobileNetV2 whose chosen inverted residuals use depthwise global ParC."""
from __future__ import annotations

from typing import Optional

from mmpretrain.models.backbones.mobilenet_v2 import MobileNetV2

from parc_mm.registry import MODELS

from ..layers.parc_conv_module import ParCConvModule
from ..placement import ParCBackbone, Size


@MODELS.register_module()
class ParCMobileNetV2(ParCBackbone, MobileNetV2):
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
            ``'none'``), ``bias``, ``impl``.
        img_size: training resolution the default base sizes derive from (int or (h, w)).
        **kwargs: mmpretrain MobileNetV2 arguments (``widen_factor``, ``out_indices``,
            ``frozen_stages``, ``norm_eval``, ``norm_cfg``, ``act_cfg``, ``init_cfg``).
    """
    parc_defaults = dict(blocks='paper', base_sizes=None, pe='first', bias=True, impl='auto')
    out_indices_type = tuple

    def __init__(self,
                 parc_cfg: Optional[dict] = None,
                 img_size: Size = 224,
                 **kwargs) -> None:
        self.parc_configure(parc_cfg, img_size, kwargs)
        super().__init__(**kwargs)
        self.parc_build()

    def parc_stages(self):
        return [getattr(self, name) for name in self.layers if name.startswith('layer')]

    def parc_paper(self, depths):
        return [[], [], [], [2, 3], [2], [2], []]

    def parc_strides(self):
        return [2, 4, 8, 16, 16, 32, 32]  # stem 2, then layer strides [1, 2, 2, 2, 1, 2, 1]

    def parc_swap(self, stage, index, block, base_size, use_pe):
        dw_idx = len(block.conv) - 2  # [expand,] dw, linear
        hidden = block.conv[dw_idx].conv.in_channels
        block.conv[dw_idx] = ParCConvModule(hidden, base_size, use_pe, self.parc_cfg['impl'],
                                            self.norm_cfg, self.act_cfg,
                                            bias=self.parc_cfg['bias'])

    def parc_replaceable(self, block) -> bool:
        return block.stride == 1

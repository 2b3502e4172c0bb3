"""ParC-ResNet: ResNet whose chosen bottlenecks replace the 3x3 conv by dense global ParC."""
from __future__ import annotations

from typing import Optional

from mmpretrain.models.backbones.resnet import Bottleneck, ResNet

from parc_mm.registry import MODELS

from ..layers.parc import ParCHW
from ..placement import ParCBackbone, Size


@MODELS.register_module()
class ParCResNet(ParCBackbone, ResNet):
    """ParC-ResNet (ParC-Net, ECCV'22): mmpretrain's :class:`ResNet` where the 3x3 conv of
    chosen bottlenecks is ParC-H and ParC-W on ``width/2`` channels each, **dense**
    (groups=1: kernels ``(C/2, C/2, K, 1)``) as the official ParC-ResNet50, followed by the
    block's BN + ReLU. The mixer sits under the conv's name (``layer3.3.conv2.parc_h.*``).

    Args:
        depth: 50, 101 or 152 (Bottleneck ResNets).
        parc_cfg: where and how ParC goes (:mod:`parc_mm.models.placement`): ``blocks``
            (``'paper'`` default: the second half of layer3 -- blocks 3-5 of ResNet-50 -- and
            the last block of layer4; ``'all'``: every stride-1 block; ``'none'``: plain
            ResNet; or lists), ``base_sizes`` (default: the feature size at ``img_size``, 224
            -> [56, 28, 14, 7]), ``dense`` (True, official; False: depthwise), ``pe``
            (``'all'``), ``bias`` (True), ``impl``.
        img_size: training resolution the default base sizes derive from (int or (h, w)).
        **kwargs: everything mmpretrain's ResNet takes (``out_indices``, ``frozen_stages``,
            ``norm_eval``, ``norm_cfg``, ``style``, ``deep_stem``, ``avg_down``, ``init_cfg``).
            For mmseg's ResNetV1c stem pass ``deep_stem=True``.
    """

    parc_defaults = dict(blocks='paper', base_sizes=None, pe='all', bias=True, impl='auto',
                         dense=True)
    out_indices_type = tuple

    def __init__(self,
                 depth: int = 50,
                 parc_cfg: Optional[dict] = None,
                 img_size: Size = 224,
                 **kwargs) -> None:
        if isinstance(depth, bool) or depth not in (50, 101, 152):
            raise ValueError(f'ParCResNet needs a Bottleneck ResNet depth, the int 50, 101 or '
                             f'152, got {depth!r}')
        self.parc_configure(parc_cfg, img_size, kwargs)
        super().__init__(depth=depth, **kwargs)
        self.parc_build()

    def parc_stages(self):
        return [getattr(self, name) for name in self.res_layers]

    def parc_paper(self, depths):
        paper = [[] for _ in depths]
        if len(depths) == 4:  # the second half of layer3, the last block of layer4
            paper[2] = list(range(depths[2] // 2, depths[2]))
            paper[3] = [depths[3] - 1]
        return paper

    def parc_strides(self):
        strides, s = [], 4  # the stem: conv stride 2 + max-pool stride 2
        for st in self.strides[:len(self.res_layers)]:
            s *= st
            strides.append(s)
        return strides

    def parc_swap(self, stage, index, block, base_size, use_pe):
        cfg = self.parc_cfg
        block.conv2 = ParCHW(block.mid_channels, base_size, dense=cfg['dense'], use_pe=use_pe,
                             bias=cfg['bias'], impl=cfg['impl'], init_std=None)

    def parc_replaceable(self, block: Bottleneck) -> bool:
        # ParC keeps the resolution: only stride-1, undilated 3x3 convs
        conv = block.conv2
        return getattr(conv, 'stride', (1, 1)) in ((1, 1), 1) and \
            getattr(conv, 'dilation', (1, 1)) in ((1, 1), 1)

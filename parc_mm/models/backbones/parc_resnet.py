"""ParC-ResNet: ResNet whose chosen bottlenecks replace the 3x3 conv by dense global ParC."""
from __future__ import annotations

from typing import Optional, Sequence

from mmpretrain.models.backbones.resnet import Bottleneck, ResNet

from parc_mm.registry import MODELS

from ..layers.parc import ParCHW
from ..utils import ParCBlocks, check_positive_ints, default_base_sizes, resolve_parc_blocks


@MODELS.register_module()
class ParCResNet(ResNet):
    """ParC-ResNet (ParC-Net, ECCV'22): mmpretrain's :class:`ResNet` where the 3x3 conv of
    chosen bottlenecks is ParC-H and ParC-W on ``width/2`` channels each, **dense**
    (groups=1: kernels ``(C/2, C/2, K, 1)``) as the official ParC-ResNet50, followed by the
    block's BN + ReLU. The mixer sits under the conv's name (``layer3.3.conv2.parc_h.*``).

    Args:
        depth: 50, 101 or 152 (Bottleneck ResNets).
        parc_blocks: ``'paper'`` (second half of layer3 — blocks 3-5 of ResNet-50 — and the
            last block of layer4), ``'all'`` (every stride-1 block), ``'none'`` (plain ResNet)
            or one list per stage.
        parc_base_sizes: kernel length per stage; default the feature size at ``img_size``
            (224 -> [56, 28, 14, 7]).
        parc_dense: dense (official) or depthwise ParC kernels.
        parc_impl: ``'auto' | 'direct' | 'fft' | 'gemm'``.
        **kwargs: everything mmpretrain's ResNet takes (``out_indices``, ``frozen_stages``,
            ``norm_eval``, ``norm_cfg``, ``style``, ``deep_stem``, ``avg_down``, ``init_cfg``).
            For mmseg's ResNetV1c stem pass ``deep_stem=True``.
    """

    def __init__(self,
                 depth: int = 50,
                 parc_blocks: ParCBlocks = 'paper',
                 parc_base_sizes: Optional[Sequence[int]] = None,
                 img_size: int = 224,
                 parc_dense: bool = True,
                 parc_use_pe: bool = True,
                 parc_impl: str = 'auto',
                 **kwargs) -> None:
        if isinstance(depth, bool) or depth not in (50, 101, 152):
            raise ValueError(f'ParCResNet needs a Bottleneck ResNet depth, the int 50, 101 or '
                             f'152, got {depth!r}')
        if isinstance(kwargs.get('out_indices'), list):
            kwargs['out_indices'] = tuple(kwargs['out_indices'])
        super().__init__(depth=depth, **kwargs)
        n = self.num_stages
        layers = [getattr(self, name) for name in self.res_layers]
        depths = [len(layer) for layer in layers]
        if parc_base_sizes is None:
            parc_base_sizes = default_base_sizes(img_size, n)
        parc_base_sizes = check_positive_ints('parc_base_sizes', parc_base_sizes, n)
        paper = [[] for _ in range(n)]
        if n == 4:
            paper[2] = list(range(depths[2] // 2, depths[2]))
            paper[3] = [depths[3] - 1]
        if parc_blocks == 'all':  # every block that keeps the resolution
            parc_blocks = [[j for j, b in enumerate(layer) if _stride_one(b)] for layer in layers]
        self.parc_blocks = resolve_parc_blocks(parc_blocks, depths, paper)
        self.parc_base_sizes = list(parc_base_sizes)
        for i, blocks in enumerate(self.parc_blocks):
            for j in blocks:
                block = layers[i][j]
                if not _stride_one(block):
                    raise ValueError(f'parc_blocks: layer{i + 1} block {j} downsamples (or is '
                                     'dilated); ParC replaces only stride-1 3x3 convs')
                block.conv2 = ParCHW(block.mid_channels, self.parc_base_sizes[i],
                                     dense=parc_dense, use_pe=parc_use_pe, bias=True,
                                     impl=parc_impl, init_std=None)
        self._freeze_stages()

    def train(self, mode: bool = True) -> 'ParCResNet':
        super().train(mode)
        return self


def _stride_one(block: Bottleneck) -> bool:
    conv = block.conv2
    return getattr(conv, 'stride', (1, 1)) in ((1, 1), 1) and \
        getattr(conv, 'dilation', (1, 1)) in ((1, 1), 1)

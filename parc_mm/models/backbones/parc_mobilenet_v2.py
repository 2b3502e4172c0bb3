"""ParC-MobileNetV2: MobileNetV2 whose chosen inverted residuals use depthwise global ParC."""
from __future__ import annotations

from typing import Optional, Sequence

from mmpretrain.models.backbones.mobilenet_v2 import MobileNetV2

from parc_mm.registry import MODELS

from ..layers.parc_conv_module import ParCConvModule
from ..utils import ParCBlocks, check_img_size, check_positive_ints, resolve_parc_blocks


@MODELS.register_module()
class ParCMobileNetV2(MobileNetV2):
    """ParC-MobileNetV2 (ParC-Net, ECCV'22): mmpretrain's :class:`MobileNetV2` where the
    depthwise 3x3 conv of chosen inverted residuals is depthwise ParC-H / ParC-W on the two
    halves of the expanded channels (then BN + ReLU6). Official placement: blocks 2-3 of the
    c=64 stage and block 2 of the c=96 stage (kernel 14), block 2 of the c=160 stage
    (kernel 7); position embedding only in the first ParC block of each stage.

    ``out_indices`` as mmpretrain/mmdet MobileNetV2 (0-6: layer1-7, 7: the final 1x1 conv);
    the paper's detectors use (1, 2, 4, 7) -> channels [24, 32, 96, 1280].

    Args:
        parc_blocks: ``'paper'``, ``'all'`` (every stride-1 block), ``'none'`` or one list of
            block indices per layer (7 lists).
        parc_base_sizes: kernel length per layer; default the feature size at ``img_size``.
        parc_pe: ``'first'`` (official: first ParC block of each layer), ``'all'``, ``'none'``.
        **kwargs: mmpretrain MobileNetV2 arguments (``widen_factor``, ``out_indices``,
            ``frozen_stages``, ``norm_eval``, ``norm_cfg``, ``act_cfg``, ``init_cfg``).
    """
    # layer strides: stem 2, then [1, 2, 2, 2, 1, 2, 1]
    _layer_strides = (2, 4, 8, 16, 16, 32, 32)

    def __init__(self,
                 parc_blocks: ParCBlocks = 'paper',
                 parc_base_sizes: Optional[Sequence[int]] = None,
                 img_size: int = 224,
                 parc_pe: str = 'first',
                 parc_impl: str = 'auto',
                 **kwargs) -> None:
        if parc_pe not in ('first', 'all', 'none'):
            raise ValueError(f"parc_pe must be 'first', 'all' or 'none', got {parc_pe!r}")
        if isinstance(kwargs.get('out_indices'), list):
            kwargs['out_indices'] = tuple(kwargs['out_indices'])
        super().__init__(**kwargs)
        layers = [getattr(self, name) for name in self.layers if name.startswith('layer')]
        depths = [len(layer) for layer in layers]
        if parc_base_sizes is None:
            check_img_size(img_size)
            parc_base_sizes = [max(1, img_size // s) for s in self._layer_strides]
        parc_base_sizes = check_positive_ints('parc_base_sizes', parc_base_sizes, len(layers))
        paper = [[], [], [], [2, 3], [2], [2], []]
        if parc_blocks == 'all':
            parc_blocks = [[j for j, b in enumerate(layer) if b.stride == 1]
                           for layer in layers]
        self.parc_blocks = resolve_parc_blocks(parc_blocks, depths, paper)
        self.parc_base_sizes = list(parc_base_sizes)
        norm_cfg = kwargs.get('norm_cfg', dict(type='BN'))
        act_cfg = kwargs.get('act_cfg', dict(type='ReLU6'))
        for i, blocks in enumerate(self.parc_blocks):
            for n, j in enumerate(blocks):
                block = layers[i][j]
                if block.stride != 1:
                    raise ValueError(f'parc_blocks: layer{i + 1} block {j} downsamples; ParC '
                                     'replaces only stride-1 depthwise convs')
                dw_idx = len(block.conv) - 2  # [expand,] dw, linear
                hidden = block.conv[dw_idx].conv.in_channels
                use_pe = parc_pe == 'all' or (parc_pe == 'first' and n == 0)
                block.conv[dw_idx] = ParCConvModule(hidden, self.parc_base_sizes[i], use_pe,
                                                    parc_impl, norm_cfg, act_cfg)
        self._freeze_stages()

    def train(self, mode: bool = True) -> 'ParCMobileNetV2':
        super().train(mode)
        return self

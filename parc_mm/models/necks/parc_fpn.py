"""ParCFPN: mmdet's FPN whose output levels also pass through a global ParC block."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.models.necks import FPN

from parc_mm.registry import MODELS

from ..layers.parc_fpn_block import ParCFPNBlock
from ..placement import check_base_sizes, derive_base_sizes, parc_settings


@MODELS.register_module()
class ParCFPN(FPN):
    """A drop-in for mmdet's / mmseg's ``FPN`` (same arguments) giving every chosen output
    level a global receptive field: each passes through a
    :class:`~parc_mm.models.layers.ParCFPNBlock` (ParC-H / ParC-W on channel halves with
    position embedding, pointwise FFN, residuals).

    Args:
        parc_cfg: the ParC settings, as the backbones' (:mod:`parc_mm.models.placement`):
            ``levels`` (output levels, indices into the ``num_outs`` outputs, that get a ParC
            block; default all; ``()`` makes this exactly ``FPN``), ``base_sizes`` (kernel /
            PE length per output level, int or ``(h, w)``, resized to the actual map every
            forward; default: the map sizes at ``img_size``), ``img_size`` (the training
            input, default ``(800, 1333)``), ``first_stride`` (stride of the first input
            level, 4), ``impl``, ``ffn_ratio`` (2.0), ``layer_scale`` (initial, 1e-6).
        **kwargs: :class:`mmdet.models.necks.FPN` arguments.
    """
    parc_defaults = dict(levels=None, base_sizes=None, img_size=(800, 1333), first_stride=4,
                         impl='auto', ffn_ratio=2.0, layer_scale=1e-6)

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 parc_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        cfg = parc_settings(type(self).__name__, parc_cfg, self.parc_defaults)
        super().__init__(in_channels, out_channels, num_outs, **kwargs)
        self.parc_cfg = cfg
        levels = list(range(num_outs)) if cfg['levels'] is None else list(cfg['levels'])
        for lv in levels:
            if not isinstance(lv, int) or not 0 <= lv < num_outs:
                raise ValueError(f'ParCFPN parc_cfg levels: level {lv!r} does not exist '
                                 f'(num_outs={num_outs})')
        sizes = cfg['base_sizes']
        if sizes is None:
            # ceil: the padded detection input's maps round up at every stride
            first = cfg['first_stride'] * 2**self.start_level
            sizes = derive_base_sizes(cfg['img_size'], [first * 2**i for i in range(num_outs)],
                                      ceil=True)
        sizes = check_base_sizes(sizes, num_outs)
        self.parc_levels = levels
        self.parc_base_sizes = sizes
        self.level_blocks = nn.ModuleDict({
            str(lv): ParCFPNBlock(out_channels, sizes[lv], cfg['ffn_ratio'], cfg['layer_scale'],
                                  cfg['impl']) for lv in levels})

    def forward(self, inputs: Tuple[torch.Tensor]) -> tuple:
        outs = list(super().forward(inputs))
        for lv in self.parc_levels:
            outs[lv] = self.level_blocks[str(lv)](outs[lv])
        return tuple(outs)

"""ParCFPN: mmdet's FPN whose output levels also pass through a global ParC block."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmdet.models.necks import FPN

from parc_mm.registry import MODELS

from ..layers.parc_fpn_block import ParCFPNBlock
from ..placement import derive_base_sizes


@MODELS.register_module()
class ParCFPN(FPN):
    """A drop-in for mmdet's / mmseg's ``FPN`` (same arguments) giving every chosen output
    level a global receptive field: each passes through a
    :class:`~parc_mm.models.layers.ParCFPNBlock` (ParC-H / ParC-W on channel halves with
    position embedding, pointwise FFN, residuals).

    Args:
        parc_levels: output levels (indices into the ``num_outs`` outputs) that get a ParC
            block; ``()`` makes this exactly ``FPN``. Default: all levels.
        parc_base_sizes: kernel/PE length per output level, an int or ``(h, w)``; resized to
            the actual map every forward. Default: the map sizes at ``parc_img_size``.
        parc_img_size: ``(h, w)`` of the training input the default base sizes derive from.
        parc_impl: ``'auto' | 'direct' | 'fft' | 'gemm'``.
        parc_ffn_ratio / parc_layer_scale: FFN width ratio and initial layer scale.
        **kwargs: :class:`mmdet.models.necks.FPN` arguments.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_outs: int,
                 parc_levels: Optional[Sequence[int]] = None,
                 parc_base_sizes: Optional[Sequence[Union[int, Tuple[int, int]]]] = None,
                 parc_img_size: Tuple[int, int] = (800, 1333),
                 parc_first_stride: int = 4,
                 parc_impl: str = 'auto',
                 parc_ffn_ratio: float = 2.0,
                 parc_layer_scale: float = 1e-6,
                 **kwargs) -> None:
        super().__init__(in_channels, out_channels, num_outs, **kwargs)
        levels = list(range(num_outs)) if parc_levels is None else list(parc_levels)
        for lv in levels:
            if not 0 <= lv < num_outs:
                raise ValueError(f'parc_levels: level {lv} does not exist (num_outs={num_outs})')
        if parc_base_sizes is None:
            # ceil: the padded detection input's maps round up at every stride
            first = parc_first_stride * 2**self.start_level
            parc_base_sizes = derive_base_sizes(
                parc_img_size, [first * 2**i for i in range(num_outs)], ceil=True)
        if len(parc_base_sizes) != num_outs:
            raise ValueError(f'parc_base_sizes needs {num_outs} entries (one per output level)')
        self.parc_levels = levels
        self.level_blocks = nn.ModuleDict({
            str(lv): ParCFPNBlock(out_channels, parc_base_sizes[lv], parc_ffn_ratio,
                               parc_layer_scale, parc_impl) for lv in levels})

    def forward(self, inputs: Tuple[torch.Tensor]) -> tuple:
        outs = list(super().forward(inputs))
        for lv in self.parc_levels:
            outs[lv] = self.level_blocks[str(lv)](outs[lv])
        return tuple(outs)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the first release named the blocks ``parc_blocks``: such checkpoints load unchanged
        old = prefix + 'parc_blocks.'
        for k in [k for k in state_dict if k.startswith(old)]:
            state_dict[prefix + 'level_blocks.' + k[len(old):]] = state_dict.pop(k)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

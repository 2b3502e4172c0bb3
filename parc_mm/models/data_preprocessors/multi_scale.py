"""Multi-scale classification training (the ParC-Net / MobileViT ImageNet recipe)."""
from __future__ import annotations

import random
from typing import Optional, Sequence

import torch.nn.functional as F
from mmpretrain.models.utils.data_preprocessor import ClsDataPreprocessor

from parc_mm.registry import MODELS


@MODELS.register_module()
class MultiScaleClsDataPreprocessor(ClsDataPreprocessor):
    """mmpretrain's :class:`ClsDataPreprocessor` that, in training, resizes each batch
    (already cropped at the base resolution by the pipeline) to a size drawn from
    ``scales``, every ``interval`` iterations.

    cvnets trains MobileViT / ParC-Net with a variable-resolution batch sampler (160-320
    around 256). We draw the resolution per batch the same way, but keep the batch size
    fixed (cvnets also grows the batch at small resolutions to keep the compute constant).
    ParC kernels and position embeddings follow the size by interpolation, as at test time.

    Args:
        scales: square training resolutions to draw from.
        interval: iterations between draws.
        seed: seed of the draws (ranks may differ: DDP only needs equal parameter shapes).
        **kwargs: :class:`ClsDataPreprocessor` arguments.
    """

    def __init__(self, scales: Sequence[int] = (160, 192, 224, 256, 288, 320),
                 interval: int = 1, seed: Optional[int] = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        if not scales or any(int(s) < 1 for s in scales):
            raise ValueError(f'scales must be positive sizes, got {scales}')
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.scales = [int(s) for s in scales]
        self.interval = interval
        self._rng = random.Random(seed)
        self._calls = 0
        self._size = self.scales[0]

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if not training:
            return data
        if self._calls % self.interval == 0:
            self._size = self._rng.choice(self.scales)
        self._calls += 1
        x = data['inputs']
        if tuple(x.shape[-2:]) != (self._size, self._size):
            data['inputs'] = F.interpolate(x, size=(self._size, self._size), mode='bilinear',
                                           align_corners=False)
        return data

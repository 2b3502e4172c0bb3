"""mmpretrain's MobileNetV2 inverted residual, with a dilation for dense prediction."""
from __future__ import annotations

from mmpretrain.models.backbones.mobilenet_v2 import InvertedResidual as _InvertedResidual


class InvertedResidual(_InvertedResidual):
    """:class:`mmpretrain.models.backbones.mobilenet_v2.InvertedResidual` (same parameters)
    that can drop its stride and dilate its depthwise conv.

    A network that keeps the resolution of its last layers (output stride 16 / 8) builds their
    downsampling blocks with ``drop_stride=True`` and the dilation the dropped strides call
    for; such a block keeps the structure of the strided one (no residual connection), so
    checkpoints trained at output stride 32 load unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: float,
                 dilation: int = 1, drop_stride: bool = False, **kwargs) -> None:
        super().__init__(in_channels, out_channels, 1 if drop_stride else stride,
                         expand_ratio, **kwargs)
        if drop_stride:
            self.use_res_connect = False
        if dilation > 1:
            dw = self.conv[-2].conv
            dw.dilation = (dilation, dilation)
            dw.padding = (dilation, dilation)

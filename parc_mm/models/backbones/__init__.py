from .parc_convnext import ParCConvNeXt
from .parc_resnet import ParCResNet

__all__ = ['ParCConvNeXt', 'ParCResNet']

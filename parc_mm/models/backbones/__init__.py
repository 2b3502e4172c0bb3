from .parc_convnext import ParCConvNeXt
from .parc_mobilenet_v2 import ParCMobileNetV2
from .parc_net import ParCNet
from .parc_resnet import ParCResNet

__all__ = ['ParCConvNeXt', 'ParCMobileNetV2', 'ParCNet', 'ParCResNet']

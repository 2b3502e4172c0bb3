from .parc_convnext import ParCConvNeXt
from .parc_mobilenet_v2 import ParCMobileNetV2
from .parc_net import ParCNet
from .parc_resnet import ParCResNet
from .parc_swin import ParCSwin
from .parc_vit import ParCViT
from .parcnetv2 import ParCNetV2

__all__ = ['ParCConvNeXt', 'ParCMobileNetV2', 'ParCNet', 'ParCResNet', 'ParCSwin', 'ParCViT',
           'ParCNetV2']

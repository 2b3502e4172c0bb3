"""Reusable ParC layers and blocks (the backbones and necks only assemble them).

``parc``: ParCConv2d / ParCPosEmbed / ParCHW; ``parc_conv_module``: the MobileNetV2 drop-in;
``parc_net_blocks``: the ParC-Net branch / channel attention / block / unit;
``parc_fpn_block``: the ParCFPN level block; ``token_mixer``: the attention replacement of
ParC-DeiT / ParC-Swin; ``oversize``: the linear (oversized) global conv and
``parcnetv2_blocks``: the ParCNetV2 mixer, gate unit and block.
"""
from .oversize import LinearParCConv2d, OversizeConv2d
from .parc import ParCConv2d, ParCHW, ParCPosEmbed
from .parc_conv_module import ParCConvModule
from .parc_fpn_block import ParCFPNBlock
from .parc_net_blocks import ChannelAttention, ParCBranch, ParCNetBlock, ParCNetUnit
from .parcnetv2_blocks import BGU, CenteredL2Norm, ParCNetV2Block, ParCV2Mixer
from .token_mixer import ParCTokenMixer

__all__ = ['ParCConv2d', 'ParCHW', 'ParCPosEmbed', 'ParCConvModule', 'ParCFPNBlock',
           'ChannelAttention', 'ParCBranch', 'ParCNetBlock', 'ParCNetUnit', 'ParCTokenMixer',
           'LinearParCConv2d', 'OversizeConv2d', 'BGU', 'CenteredL2Norm', 'ParCNetV2Block',
           'ParCV2Mixer']

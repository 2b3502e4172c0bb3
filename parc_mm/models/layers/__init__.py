"""Reusable ParC layers and blocks (the backbones and necks only assemble them).

``parc``: ParCConv2d / ParCPosEmbed / ParCHW; ``parc_conv_module``: the MobileNetV2 drop-in;
``parc_net_blocks``: the ParC-Net branch / channel attention / block / unit;
``parc_fpn_block``: the ParCFPN level block; ``token_mixer``: the attention replacement of
ParC-DeiT / ParC-Swin.
"""
from .parc import ParCConv2d, ParCHW, ParCPosEmbed
from .parc_conv_module import ParCConvModule
from .parc_fpn_block import ParCFPNBlock
from .parc_net_blocks import ChannelAttention, ParCBranch, ParCNetBlock, ParCNetUnit
from .token_mixer import ParCTokenMixer

__all__ = ['ParCConv2d', 'ParCHW', 'ParCPosEmbed', 'ParCConvModule', 'ParCFPNBlock',
           'ChannelAttention', 'ParCBranch', 'ParCNetBlock', 'ParCNetUnit', 'ParCTokenMixer']

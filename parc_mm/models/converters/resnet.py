"""ResNet family: official ParC-ResNet50, its detection fork, torchvision / mmpretrain / mmdet
ResNets -> ParC-ResNet."""
from __future__ import annotations

from typing import List, Tuple

import torch

from .core import ConversionReport, Rule, StateDict, apply_rules, finish, rule_table

# --- ResNet family (official ParC_ConvNets, first-author detection fork, torchvision) ---
_RESNET: List[Rule] = rule_table(r'''
(conv1|bn1)\.(.*)                                         backbone.\1.\2
(layer\d+\.\d+)\.(?:parc|gcc)_H\.gcc_conv\.(weight|bias)  backbone.\1.conv2.parc_h.\2
(layer\d+\.\d+)\.(?:parc|gcc)_W\.gcc_conv\.(weight|bias)  backbone.\1.conv2.parc_w.\2
(layer\d+\.\d+)\.(?:parc|gcc)_H\.pe                       backbone.\1.conv2.parc_h.pe
(layer\d+\.\d+)\.(?:parc|gcc)_W\.pe                       backbone.\1.conv2.parc_w.pe
(layer\d+\.\d+\.(?:conv\d|bn\d|downsample\.\d)\..*)       backbone.\1
fc\.(weight|bias)                                         head.fc.\1
''')


def convert_resnet(sd: StateDict) -> Tuple[StateDict, ConversionReport]:
    """Official ParC-ResNet / detection-fork / torchvision ResNet -> parc_mm keys
    (``backbone.*``, ``head.fc.*``). mmpretrain/mmdet/mmseg ResNet checkpoints
    (``backbone.`` keys) pass through."""
    if any(k.startswith('backbone.') for k in sd):
        return dict(sd), ConversionReport(converted=[(k, k) for k in sd])
    return apply_rules(sd, _RESNET)


def resnet_to_parc(src_sd: StateDict, depth: int = 50, parc_blocks='paper', seed: int = 0,
                   head: bool = True, **backbone_kwargs) -> Tuple[StateDict, ConversionReport]:
    """A full ParC-ResNet checkpoint from any ResNet layout: shared tensors copied, ParC
    tensors the source lacks freshly initialised, the replaced 3x3 convs reported."""
    from parc_mm.models.backbones.parc_resnet import ParCResNet
    sd, rep = convert_resnet(src_sd)
    torch.manual_seed(seed)
    model = ParCResNet(depth=depth, parc_cfg=dict(blocks=parc_blocks), **backbone_kwargs)
    return finish(model, sd, rep, head)

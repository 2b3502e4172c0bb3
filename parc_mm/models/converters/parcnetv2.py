"""ParCNetV2: the official timm classifier layout and its mmdet / mmseg backbone layout ->
ParCNetV2 (whose module names are the official ones: a rename of the prefix and the head)."""
from __future__ import annotations

import re
from typing import Tuple

import torch

from .core import ConversionReport, StateDict, apply_rules, finish, rule_table

_RULES = rule_table(r'''
(downsample_layers|stages)\.(.*)    backbone.\1.\2
norm\.(weight|bias)                 backbone.norm3.\1
norm([0-3])\.(weight|bias)          backbone.norm\1.\2
head\.(weight|bias)                 head.fc.\1
''')


def detect_parcnetv2_layout(sd: StateDict) -> str:
    """``'parc_mm'`` (``backbone.`` keys: ours, or a whole official detector / segmentor),
    ``'cls'`` (the official classifier: ``norm`` + ``head``) or ``'dense'`` (the official
    detection / segmentation backbone: ``norm0``-``norm3``)."""
    if any(k.startswith('backbone.') for k in sd):
        return 'parc_mm'
    if any(k.startswith('norm.') or k.startswith('head.') for k in sd):
        return 'cls'
    if any(re.match(r'norm[0-3]\.', k) for k in sd):
        return 'dense'
    if any(k.startswith(('stages.', 'downsample_layers.')) for k in sd):
        return 'cls'  # a headless classifier backbone
    raise ValueError('Unrecognised ParCNetV2 checkpoint layout (expected the official keys '
                     'downsample_layers.* / stages.* [/ norm / head / norm0-3], or a parc_mm / '
                     'mmdet / mmseg checkpoint with backbone.* keys)')


def convert_parcnetv2(sd: StateDict) -> Tuple[StateDict, ConversionReport]:
    """Official ParCNetV2 keys -> parc_mm (``backbone.*``, ``head.fc.*``); checkpoints with
    ``backbone.`` keys (parc_mm, or whole official detectors / segmentors: the backbone's
    names are already ours) pass through."""
    if detect_parcnetv2_layout(sd) == 'parc_mm':
        return dict(sd), ConversionReport(converted=[(k, k) for k in sd])
    return apply_rules(sd, _RULES)


def parcnetv2_to_parc(src_sd: StateDict, arch: str = 'tiny', seed: int = 0, head: bool = True,
                      **backbone_kwargs) -> Tuple[StateDict, ConversionReport]:
    """A full ParCNetV2 checkpoint from any of the layouts above, checked against a freshly
    built :class:`ParCNetV2` of ``arch``: the classifier form for a classifier source, the
    dense form (``norm0``-``norm3``) for a detection / segmentation one."""
    from parc_mm.models.backbones.parcnetv2 import ParCNetV2
    backbone_kwargs.pop('parc_blocks', None)  # the V2 family has ParC in every block
    sd, rep = convert_parcnetv2(src_sd)
    dense = sorted(int(k[len('backbone.norm')]) for k in sd
                   if k.startswith('backbone.norm') and k.endswith('.weight')
                   and f'backbone.norm{k[len("backbone.norm")]}.bias' not in sd)
    if dense:
        backbone_kwargs.setdefault('gap_before_final_norm', False)
        backbone_kwargs.setdefault('out_indices', dense)
    torch.manual_seed(seed)
    model = ParCNetV2(arch=arch, **backbone_kwargs)
    return finish(model, sd, rep, head)

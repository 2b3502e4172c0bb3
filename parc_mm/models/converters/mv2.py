"""MobileNetV2 family: official ParC-MobileNetV2, its detection fork, torchvision / mmpretrain
MobileNetV2 -> ParC-MobileNetV2."""
from __future__ import annotations

import re
from typing import List, Tuple

import torch

from .core import ConversionReport, Rule, StateDict, apply_rules, finish

# --- MobileNetV2 family ------------------------------------------------------------------
_MV2_DEPTHS = (1, 2, 3, 4, 3, 3, 1)


def _mv2_block_rules(src: str, dst: str, expand: bool) -> List[Rule]:
    """Rules of one inverted residual ``src`` (official / torchvision) -> ``dst`` (ours)."""
    s, d = re.escape(src), dst
    first = [] if not expand else [(s + r'\.conv\.0\.0\.weight', d + '.conv.0.conv.weight'),
                                   (s + r'\.conv\.0\.1\.(.*)', d + r'.conv.0.bn.\1')]
    if expand:
        plain = [(s + r'\.conv\.1\.0\.weight', d + '.conv.1.conv.weight'),
                 (s + r'\.conv\.1\.1\.(.*)', d + r'.conv.1.bn.\1'),
                 (s + r'\.conv\.2\.weight', d + '.conv.2.conv.weight'),
                 (s + r'\.conv\.3\.(.*)', d + r'.conv.2.bn.\1')]
    else:
        plain = [(s + r'\.conv\.0\.0\.weight', d + '.conv.0.conv.weight'),
                 (s + r'\.conv\.0\.1\.(.*)', d + r'.conv.0.bn.\1'),
                 (s + r'\.conv\.1\.weight', d + '.conv.1.conv.weight'),
                 (s + r'\.conv\.2\.(.*)', d + r'.conv.1.bn.\1')]
    parc = [(s + r'\.pw_expand\.0\.weight', d + '.conv.0.conv.weight'),
            (s + r'\.pw_expand\.1\.(.*)', d + r'.conv.0.bn.\1'),
            (s + r'\.gcc_H\.gcc_conv\.(weight|bias)', d + r'.conv.1.conv.parc_h.\1'),
            (s + r'\.gcc_W\.gcc_conv\.(weight|bias)', d + r'.conv.1.conv.parc_w.\1'),
            (s + r'\.gcc_H\.pe', d + '.conv.1.conv.parc_h.pe'),
            (s + r'\.gcc_W\.pe', d + '.conv.1.conv.parc_w.pe'),
            (s + r'\.bn\.(.*)', d + r'.conv.1.bn.\1'),
            (s + r'\.pw_linear\.0\.weight', d + '.conv.2.conv.weight'),
            (s + r'\.pw_linear\.1\.(.*)', d + r'.conv.2.bn.\1')]
    return first + plain + parc


def convert_mv2(sd: StateDict) -> Tuple[StateDict, ConversionReport]:
    """Official ParC-MobileNetV2 (``features.N``), its detection fork (``layerX.Y``) or
    torchvision MobileNetV2 -> parc_mm keys (``backbone.*``, ``head.fc.*``)."""
    if any(k.startswith('backbone.') for k in sd):
        return dict(sd), ConversionReport(converted=[(k, k) for k in sd])
    rules: List[Rule] = []
    det = any(k.startswith('layer') for k in sd)
    n = 1
    for li, depth in enumerate(_MV2_DEPTHS):
        for b in range(depth):
            src = f'layer{li + 1}.{b}' if det else f'features.{n}'
            rules += _mv2_block_rules(src, f'backbone.layer{li + 1}.{b}', expand=li > 0)
            n += 1
    if det:
        rules += [(r'conv1\.0\.weight', 'backbone.conv1.conv.weight'),
                  (r'conv1\.1\.(.*)', r'backbone.conv1.bn.\1'),
                  (r'conv2\.0\.weight', 'backbone.conv2.conv.weight'),
                  (r'conv2\.1\.(.*)', r'backbone.conv2.bn.\1')]
    else:
        rules += [(r'features\.0\.0\.weight', 'backbone.conv1.conv.weight'),
                  (r'features\.0\.1\.(.*)', r'backbone.conv1.bn.\1'),
                  (rf'features\.{n}\.0\.weight', 'backbone.conv2.conv.weight'),
                  (rf'features\.{n}\.1\.(.*)', r'backbone.conv2.bn.\1'),
                  (r'classifier\.1\.(weight|bias)', r'head.fc.\1')]
    return apply_rules(sd, rules)


def mv2_to_parc(src_sd: StateDict, parc_blocks='paper', seed: int = 0, head: bool = True,
                **backbone_kwargs) -> Tuple[StateDict, ConversionReport]:
    """A full ParC-MobileNetV2 checkpoint from any MobileNetV2 layout."""
    from parc_mm.models.backbones.parc_mobilenet_v2 import ParCMobileNetV2
    sd, rep = convert_mv2(src_sd)
    torch.manual_seed(seed)
    model = ParCMobileNetV2(parc_cfg=dict(blocks=parc_blocks), **backbone_kwargs)
    return finish(model, sd, rep, head)

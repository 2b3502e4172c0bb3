"""ConvNeXt family: official ParC-ConvNets / facebook ConvNeXt, the first author's detection
backbones, timm and mmpretrain layouts -> ParC-ConvNeXt."""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from .core import ConversionReport, Rule, StateDict, apply_rules, detect_layout, finish, rule_table


def _mixer_rules(weight_h: str, weight_w: str, pe_h: str, pe_w: str) -> List[Rule]:
    """Rules of the ParC kernels / biases / PEs of one source naming (regexes of the H and W
    conv modules and PE tensors inside a block)."""
    out: List[Rule] = []
    for conv, pe, ours in ((weight_h, pe_h, 'parc_h'), (weight_w, pe_w, 'parc_w')):
        dst = rf'backbone.stages.\1.\2.depthwise_conv.{ours}'
        out += [(rf'stages\.(\d+)\.(\d+)\.{conv}\.(weight|bias)', dst + r'.\3'),
                (rf'stages\.(\d+)\.(\d+)\.{pe}', dst + '.pe')]
    return out


# Official ParC_ConvNets classification layout == facebook ConvNeXt layout + gcc_H / gcc_W.
_CONVNEXT_OFFICIAL: List[Rule] = [
    (r'downsample_layers\.(.*)', r'backbone.downsample_layers.\1'),
    (r'stages\.(\d+)\.(\d+)\.dwconv\.(weight|bias)', r'backbone.stages.\1.\2.depthwise_conv.\3'),
    *_mixer_rules(r'gcc_H\.gcc_conv', r'gcc_W\.gcc_conv', r'gcc_H\.pe', r'gcc_W\.pe'),
    (r'stages\.(\d+)\.(\d+)\.pwconv(\d)\.(weight|bias)',
     r'backbone.stages.\1.\2.pointwise_conv\3.\4'),
    (r'stages\.(\d+)\.(\d+)\.(gamma|norm\.weight|norm\.bias)', r'backbone.stages.\1.\2.\3'),
    (r'norm\.(weight|bias)', r'backbone.norm3.\1'),
    (r'head\.(weight|bias)', r'head.fc.\1'),
]
# The first author's detection backbones (mmdet 2.x fork): gcc_conv_1H / gcc_conv_2W, meta_pe,
# norm0..3 per output.
_CONVNEXT_DET: List[Rule] = [
    *_mixer_rules('gcc_conv_1H', 'gcc_conv_2W', r'gcc_conv_1H\.meta_pe', r'gcc_conv_2W\.meta_pe'),
    (r'norm(\d)\.(weight|bias)', r'backbone.norm\1.\2'),
] + _CONVNEXT_OFFICIAL
# timm ConvNeXt
_CONVNEXT_TIMM: List[Rule] = rule_table(r'''
stem\.(\d)\.(weight|bias)                                 backbone.downsample_layers.0.\1.\2
stages\.(\d+)\.downsample\.(\d)\.(weight|bias)            backbone.downsample_layers.\1.\2.\3
stages\.(\d+)\.blocks\.(\d+)\.conv_dw\.(weight|bias)      backbone.stages.\1.\2.depthwise_conv.\3
stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc(\d)\.(weight|bias)  backbone.stages.\1.\2.pointwise_conv\3.\4
stages\.(\d+)\.blocks\.(\d+)\.norm\.(weight|bias)         backbone.stages.\1.\2.norm.\3
stages\.(\d+)\.blocks\.(\d+)\.(?:ls\.)?gamma              backbone.stages.\1.\2.gamma
head\.norm\.(weight|bias)                                 backbone.norm3.\1
head\.fc\.(weight|bias)                                   head.fc.\1
norm_pre\.(weight|bias)                                   backbone.norm3.\1
''')


def detect_convnext_layout(sd: StateDict) -> str:
    return detect_layout(sd, [('det', r'.*\.gcc_conv_1H\.'), ('timm', r'stem\.|.*\.blocks\.'),
                              ('mmpretrain', r'backbone\.'),
                              ('official', r'.*(\.dwconv\.|\.gcc_H\.)')], 'ConvNeXt',
                         'the official ParC / facebook ConvNeXt, the ParC detection fork, timm '
                         'or mmpretrain keys')


def convert_convnext(sd: StateDict, layout: Optional[str] = None
                     ) -> Tuple[StateDict, ConversionReport]:
    """Any known ConvNeXt / ParC-ConvNeXt layout -> parc_mm (mmpretrain ImageClassifier keys:
    ``backbone.*``, ``head.fc.*``)."""
    layout = layout or detect_convnext_layout(sd)
    if layout == 'mmpretrain':
        return dict(sd), ConversionReport(converted=[(k, k) for k in sd])
    rules = {'official': _CONVNEXT_OFFICIAL, 'det': _CONVNEXT_DET, 'timm': _CONVNEXT_TIMM}
    if layout not in rules:
        raise ValueError(f'Unknown layout {layout!r}; one of {sorted(rules)} or mmpretrain')
    return apply_rules(sd, rules[layout])


def convnext_to_parc(src_sd: StateDict, arch: str = 'xt', parc_blocks='paper',
                     layout: Optional[str] = None, seed: int = 0, head: bool = True
                     ) -> Tuple[StateDict, ConversionReport]:
    """A full ParC-ConvNeXt checkpoint (``backbone.*`` [+ ``head.fc.*``]) from any ConvNeXt
    layout: shared tensors copied, ParC tensors the source lacks freshly initialised."""
    from parc_mm.models.backbones.parc_convnext import ParCConvNeXt
    sd, rep = convert_convnext(src_sd, layout)
    torch.manual_seed(seed)
    model = ParCConvNeXt(arch=arch, parc_cfg=dict(blocks=parc_blocks), out_indices=[0, 1, 2, 3]
                         if any(k.startswith('backbone.norm0') for k in sd) else -1)
    return finish(model, sd, rep, head)

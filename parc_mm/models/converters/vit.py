"""ViT family: DeiT / ViT checkpoints (timm and the DeiT release, mmpretrain, mmseg) ->
ParC-ViT. Every non-attention tensor is carried over; attention tensors, the class token and
the position-embedding table are dropped (listed); the ParC mixers are new."""
from __future__ import annotations

import re
from typing import List, Optional, Tuple, Union

import torch

from . import core
from .core import (
    ConversionReport,
    Rule,
    StateDict,
    apply_rules,
    finish,
    rule_table,
    with_backbone_prefix,
)

# what attention (and the token-sequence machinery a ConvNet does not have) leaves behind
_DROP_VIT: List[Rule] = [
    (r'(?:backbone\.)?(?:cls_token|pos_embed|dist_token)', None),
    (r'(?:backbone\.layers|blocks)\.\d+\.attn\..*', None),
    (r'blocks\.\d+\.ls1\.gamma', None),  # timm's layer scale of the attention branch
]
_VIT_TIMM: List[Rule] = _DROP_VIT + rule_table(r'''
patch_embed\.proj\.(weight|bias)        backbone.patch_embed.projection.\1
blocks\.(\d+)\.norm(\d)\.(weight|bias)  backbone.layers.\1.ln\2.\3
blocks\.(\d+)\.mlp\.fc1\.(weight|bias)  backbone.layers.\1.ffn.layers.0.0.\2
blocks\.(\d+)\.mlp\.fc2\.(weight|bias)  backbone.layers.\1.ffn.layers.1.\2
blocks\.(\d+)\.ls2\.gamma               backbone.layers.\1.ffn.gamma2.weight
norm\.(weight|bias)                     backbone.ln1.\1
fc_norm\.(weight|bias)                  backbone.ln2.\1
head\.(weight|bias)                     head.layers.head.\1
''')
# mmpretrain / mmseg: the names are ours; a whole segmentor / detector keeps its neck and heads
_VIT_MMLAB: List[Rule] = _DROP_VIT + [(r'(.*)', r'\1')]


def detect_vit_layout(sd: StateDict) -> str:
    return core.detect_layout(sd, [('timm', r'blocks\.'), ('mmpretrain', r'backbone\.layers\.')],
                              'ViT / DeiT', "timm / DeiT release keys 'blocks.<i>.attn...', "
                              "or mmpretrain / mmseg keys 'backbone.layers.<i>...'")


def convert_vit(sd: StateDict, layout: Optional[str] = None
                ) -> Tuple[StateDict, ConversionReport]:
    """Any known ViT layout -> mmpretrain ImageClassifier keys, attention dropped."""
    layout = layout or detect_vit_layout(sd)
    if layout not in ('timm', 'mmpretrain'):
        raise ValueError(f"Unknown ViT layout {layout!r}; 'timm' or 'mmpretrain'")
    if layout == 'timm':
        return apply_rules(sd, _VIT_TIMM)
    return apply_rules(with_backbone_prefix(sd), _VIT_MMLAB)


def infer_vit_arch(sd: StateDict) -> Union[str, dict]:
    """The mmpretrain arch of a converted ViT state dict (from its tensor shapes)."""
    from mmpretrain.models.backbones.vision_transformer import VisionTransformer
    dims = sd['backbone.patch_embed.projection.weight'].shape[0]
    layers = 1 + max(int(m.group(1)) for k in sd
                     for m in [re.match(r'backbone\.layers\.(\d+)\.', k)] if m)
    ffn = sd['backbone.layers.0.ffn.layers.0.0.weight'].shape[0]
    for name, a in VisionTransformer.arch_zoo.items():
        if (a['embed_dims'], a['num_layers'], a['feedforward_channels']) == (dims, layers, ffn):
            return name
    return dict(embed_dims=dims, num_layers=layers, num_heads=1, feedforward_channels=ffn)


def _token_grid(src_sd: StateDict) -> int:
    """The side of the token grid the source was trained at, from its position-embedding
    table (with 0-2 extra tokens); 14 (224 / 16) without one. The ParC kernels are stored
    at this length."""
    pe = next((v for k, v in src_sd.items() if k.split('.')[-1] == 'pos_embed'), None)
    if pe is not None and pe.dim() == 3:
        for extra in (0, 1, 2):
            side = int(round((pe.shape[1] - extra) ** 0.5))
            if side > 0 and side * side == pe.shape[1] - extra:
                return side
    return 14


def vit_to_parc(src_sd: StateDict, arch: Optional[Union[str, dict]] = None,
                parc_blocks='all', layout: Optional[str] = None, seed: int = 0,
                head: bool = True) -> Tuple[StateDict, ConversionReport]:
    """A full ParC-ViT checkpoint from a ViT / DeiT one (arch inferred when None)."""
    from parc_mm.models.backbones.parc_vit import ParCViT
    sd, rep = convert_vit(src_sd, layout)
    if 'backbone.patch_embed.projection.weight' not in sd:
        raise ValueError('No patch embedding (patch_embed.proj / backbone.patch_embed.'
                         'projection) in the source: is it a ViT / DeiT checkpoint?')
    patch = sd['backbone.patch_embed.projection.weight'].shape[-1]
    torch.manual_seed(seed)
    model = ParCViT(arch=arch or infer_vit_arch(sd), patch_size=patch,
                    img_size=_token_grid(src_sd) * patch, parc_cfg=dict(blocks=parc_blocks),
                    out_type='avg_featmap' if any(k.startswith('head.') for k in sd)
                    else 'featmap',
                    # layer scale in the source: the target has it (values come from there)
                    layer_scale_init_value=1e-5 if any('.ffn.gamma2.' in k for k in sd)
                    else 0.)
    return finish(model, sd, rep, head)

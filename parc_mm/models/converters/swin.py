"""Swin family: Swin Transformer checkpoints (the original release, mmpretrain, mmdet, mmseg)
-> ParC-Swin. Every non-attention tensor is carried over (patch embedding, norms, FFNs, patch
merging, heads; a detector's / segmentor's neck and heads too); window attention (qkv,
projection, relative-position tables and indices, shift masks) is dropped and listed; the
ParC mixers are new."""
from __future__ import annotations

import re
from typing import List, Optional, Tuple, Union

import torch

from .core import (
    ConversionReport,
    Rule,
    StateDict,
    apply_rules,
    detect_layout,
    finish,
    rule_table,
    with_backbone_prefix,
)

_ATTN = r'\.attn\..*|\.attn_mask'
_SWIN_ORIGINAL: List[Rule] = [
    (rf'layers\.\d+\.blocks\.\d+(?:{_ATTN})', None),
] + rule_table(r'''
absolute_pos_embed                                          backbone.absolute_pos_embed
patch_embed\.proj\.(weight|bias)                            backbone.patch_embed.projection.\1
patch_embed\.norm\.(weight|bias)                            backbone.patch_embed.norm.\1
layers\.(\d+)\.blocks\.(\d+)\.norm(\d)\.(weight|bias)       backbone.stages.\1.blocks.\2.norm\3.\4
layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.(weight|bias) backbone.stages.\1.blocks.\2.ffn.layers.0.0.\3
layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.(weight|bias)  backbone.stages.\1.blocks.\2.ffn.layers.1.\3
layers\.(\d+)\.downsample\.(reduction|norm)\.(weight|bias)  backbone.stages.\1.downsample.\2.\3
head\.(weight|bias)                                         head.fc.\1
''')
# mmpretrain, mmdet and mmseg share the names (``stages.<i>.blocks.<j>.attn.w_msa...``)
_SWIN_MMLAB: List[Rule] = [
    (rf'backbone\.stages\.\d+\.blocks\.\d+(?:{_ATTN})', None),
    (r'(.*)', r'\1'),
]

# The original PatchMerging concatenates the 2x2 neighbours as [(0,0), (1,0), (0,1), (1,1)]
# blocks of C channels; mmpretrain's (nn.Unfold) interleaves them per channel in the order
# (0,0), (0,1), (1,0), (1,1). Position p of the unfold order is block _UNFOLD_FROM[p].
_UNFOLD_FROM = [0, 2, 1, 3]


def unfold_order(t: torch.Tensor) -> torch.Tensor:
    """A PatchMerging reduction weight ``(O, 4C)`` or norm tensor ``(4C,)`` of the original
    release in mmpretrain's channel order (``new[..., 4c + p] = old[..., b(p) C + c]``)."""
    lead = t.shape[:-1]
    c = t.shape[-1] // 4
    blocks = t.reshape(*lead, 4, c)[..., _UNFOLD_FROM, :]  # (..., p, c)
    return blocks.transpose(-1, -2).reshape(*lead, 4 * c)


def detect_swin_layout(sd: StateDict) -> str:
    return detect_layout(sd, [('original', r'layers\.\d+\.blocks\.'),
                              ('mmlab', r'(backbone\.)?stages\.\d+\.blocks\.')], 'Swin',
                         "the original release's 'layers.<i>.blocks.<j>...' or mmpretrain / "
                         "mmdet / mmseg '[backbone.]stages.<i>.blocks.<j>...' keys")


def convert_swin(sd: StateDict, layout: Optional[str] = None
                 ) -> Tuple[StateDict, ConversionReport]:
    """Any known Swin layout -> mmpretrain / mmdet / mmseg keys (``backbone.*``), attention
    dropped, the original release's patch merging in mmpretrain's channel order."""
    layout = layout or detect_swin_layout(sd)
    if layout == 'original':
        last = max(int(m.group(1)) for k in sd for m in [re.match(r'layers\.(\d+)\.', k)] if m)
        # the final norm is mmpretrain's norm<last stage>
        rules = [(r'norm\.(weight|bias)', rf'backbone.norm{last}.\1')] + _SWIN_ORIGINAL
        out, rep = apply_rules(sd, rules)
        for k in [k for k in out if '.downsample.' in k]:
            out[k] = unfold_order(out[k])
        rep.notes.append('reordered the patch-merging channels of the original release into '
                         "mmpretrain's unfold order")
        return out, rep
    if layout == 'mmlab':
        return apply_rules(with_backbone_prefix(sd), _SWIN_MMLAB)
    raise ValueError(f"Unknown Swin layout {layout!r}; 'original' or 'mmlab'")


def infer_swin_arch(sd: StateDict) -> Union[str, dict]:
    """The mmpretrain arch of a converted Swin state dict (from its shapes and depths)."""
    from mmpretrain.models.backbones.swin_transformer import SwinTransformer
    dims = sd['backbone.patch_embed.projection.weight'].shape[0]
    depth = {}
    for k in sd:
        m = re.match(r'backbone\.stages\.(\d+)\.blocks\.(\d+)\.', k)
        if m:
            i, j = int(m.group(1)), int(m.group(2))
            depth[i] = max(depth.get(i, 0), j + 1)
    depths = [depth[i] for i in sorted(depth)]
    for name, a in SwinTransformer.arch_zoo.items():
        if a['embed_dims'] == dims and list(a['depths']) == depths:
            return name
    return dict(embed_dims=dims, depths=depths, num_heads=[1] * len(depths))


def swin_to_parc(src_sd: StateDict, arch: Optional[Union[str, dict]] = None,
                 parc_blocks='all', layout: Optional[str] = None, seed: int = 0,
                 head: bool = True) -> Tuple[StateDict, ConversionReport]:
    """A full ParC-Swin checkpoint (and, from a detector / segmentor, its neck and heads)
    from a Swin one (arch inferred when None)."""
    from parc_mm.models.backbones.parc_swin import ParCSwin
    sd, rep = convert_swin(src_sd, layout)
    if 'backbone.patch_embed.projection.weight' not in sd:
        raise ValueError('No patch embedding (patch_embed.proj / backbone.patch_embed.'
                         'projection) in the source: is it a Swin checkpoint?')
    norms = sorted(int(m.group(1)) for k in sd
                   for m in [re.match(r'backbone\.norm(\d)\.weight$', k)] if m)
    torch.manual_seed(seed)
    model = ParCSwin(arch=arch or infer_swin_arch(sd),
                     patch_size=sd['backbone.patch_embed.projection.weight'].shape[-1],
                     out_indices=norms or [3], parc_cfg=dict(blocks=parc_blocks),
                     use_abs_pos_embed='backbone.absolute_pos_embed' in sd)
    return finish(model, sd, rep, head)

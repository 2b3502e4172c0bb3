"""ParC-Net-S / XS: the official cvnets ``edgeformer`` layout -> ParCNet."""
from __future__ import annotations

from typing import List, Tuple

import torch

from .core import ConversionReport, Rule, StateDict, apply_rules, finish


# --- ParC-Net-S / XS (official cvnets ``edgeformer`` layout) -------------------------------
def _parcnet_rules() -> List[Rule]:
    unit = r'backbone.layers.{i}.1.'
    gcc = r'layer_{L}\.1\.spatial_global_rep\.(\d+)\.'
    rules: List[Rule] = [
        (r'conv_1\.block\.conv\.weight', 'backbone.stem.conv.weight'),
        (r'conv_1\.block\.norm\.(.*)', r'backbone.stem.bn.\1'),
        (r'conv_1x1_exp\.block\.conv\.weight', 'backbone.conv_1x1_exp.conv.weight'),
        (r'conv_1x1_exp\.block\.norm\.(.*)', r'backbone.conv_1x1_exp.bn.\1'),
        (r'classifier\.fc\.(weight|bias)', r'head.fc.\1'),
    ]
    # the official (kernel, pe, bias, norm) names of the two branches -> ours
    branch = {'meta_kernel_1_H': 'branch_hw.conv1.weight', 'meta_kernel_2_W':
              'branch_hw.conv2.weight', 'meta_kernel_1_W': 'branch_wh.conv1.weight',
              'meta_kernel_2_H': 'branch_wh.conv2.weight', 'meta_pe_1_H': 'branch_hw.pe.weight',
              'meta_pe_2_W': 'branch_hw.conv2.pe', 'meta_pe_1_W': 'branch_wh.pe.weight',
              'meta_pe_2_H': 'branch_wh.conv2.pe', 'meta_1_H_bias': 'branch_hw.conv1.bias',
              'meta_2_W_bias': 'branch_hw.conv2.bias', 'meta_1_W_bias': 'branch_wh.conv1.bias',
              'meta_2_H_bias': 'branch_wh.conv2.bias'}
    for L in range(1, 6):
        i = L - 1
        for src, dst in (('exp_1x1', 0), ('conv_3x3', 1), ('red_1x1', 2)):
            rules += [(rf'layer_{L}\.(\d+)\.block\.{src}\.block\.conv\.weight',
                       rf'backbone.layers.{i}.\1.conv.{dst}.conv.weight'),
                      (rf'layer_{L}\.(\d+)\.block\.{src}\.block\.norm\.(.*)',
                       rf'backbone.layers.{i}.\1.conv.{dst}.bn.\2')]
        u = unit.format(i=i)
        g = gcc.format(L=L)
        rules += [(rf'layer_{L}\.1\.dim_adaptive\.(\d)\.block\.conv\.weight',
                   u + r'local_rep.\1.conv.weight'),
                  (rf'layer_{L}\.1\.dim_adaptive\.(\d)\.block\.norm\.(.*)',
                   u + r'local_rep.\1.bn.\2'),
                  (rf'layer_{L}\.1\.channel_adaptive\.block\.conv\.weight', u + 'proj.conv.weight'),
                  (rf'layer_{L}\.1\.channel_adaptive\.block\.norm\.(.*)', u + r'proj.bn.\1'),
                  (rf'layer_{L}\.1\.local_global_fusion\.block\.conv\.weight',
                   u + 'fusion.conv.weight'),
                  (rf'layer_{L}\.1\.local_global_fusion\.block\.norm\.(.*)', u + r'fusion.bn.\1')]
        rules += [(g + name, u + r'global_rep.\1.' + ours) for name, ours in branch.items()]
        rules += [(g + r'pre_Norm_1\.(.*)', u + r'global_rep.\1.branch_hw.norm.\2'),
                  (g + r'pre_Norm_2\.(.*)', u + r'global_rep.\1.branch_wh.norm.\2'),
                  (g + r'(ffn|ca)\.(.*)', u + r'global_rep.\1.\2.\3'),
                  (g + r'(weight|bias|running_mean|running_var|num_batches_tracked)',
                   u + r'global_rep.\1.\2')]
    return rules


def convert_parcnet(sd: StateDict) -> Tuple[StateDict, ConversionReport]:
    """Official ParC-Net-S / XS (cvnets ``edgeformer``: ``conv_1``, ``layer_N``,
    ``spatial_global_rep``, ``meta_kernel_1_H`` ...) -> parc_mm keys (``backbone.*``,
    ``head.fc.*``). parc_mm checkpoints (``backbone.`` keys) pass through.

    The official model registers its last downsampling block twice (``layer_5.0`` and
    ``residual``); the ``residual.*`` copies are dropped when they equal ``layer_5.0.*``
    (and reported as unused otherwise).
    """
    if any(k.startswith('backbone.') for k in sd):
        return dict(sd), ConversionReport(converted=[(k, k) for k in sd])
    alias_of = {k: 'layer_5.0.' + k[len('residual.'):] for k in sd if k.startswith('residual.')}
    same = [k for k, a in alias_of.items() if a in sd and torch.equal(sd[k], sd[a])]
    out, rep = apply_rules({k: v for k, v in sd.items() if k not in same}, _parcnet_rules())
    if same:
        rep.notes.append(f'dropped {len(same)} residual.* tensors: the official model\'s alias '
                         'of layer_5.0 (identical values)')
    return out, rep


def parcnet_to_parc(src_sd: StateDict, arch: str = 's', seed: int = 0, head: bool = True,
                    **backbone_kwargs) -> Tuple[StateDict, ConversionReport]:
    """A full ParC-Net checkpoint (``backbone.*`` [+ ``head.fc.*``]) from the official
    layout, checked against a freshly built :class:`ParCNet` of ``arch``."""
    from parc_mm.models.backbones.parc_net import ParCNet
    sd, rep = convert_parcnet(src_sd)
    torch.manual_seed(seed)
    backbone_kwargs.setdefault('out_indices', (5, ))
    model = ParCNet(arch=arch, **backbone_kwargs)
    return finish(model, sd, rep, head)

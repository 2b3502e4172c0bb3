"""Checkpoint converters into parc_mm layouts, each returning a report of what was (not) used.

Every converter maps keys by rules; a key no rule knows is never dropped silently: it is
listed in ``report.unused`` and the tools print it (``--strict`` makes it an error).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

StateDict = Dict[str, Tensor]
Rule = Tuple[str, str]


@dataclass
class ConversionReport:
    """What a conversion / partial load did."""
    converted: List[Tuple[str, str]] = field(default_factory=list)  # (source, target)
    unused: List[str] = field(default_factory=list)  # source keys no rule mapped
    missing: List[str] = field(default_factory=list)  # target keys left at their init
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    target_total: int = 0  # tensors of the written checkpoint (0: not a full conversion)

    @property
    def from_source(self) -> int:
        """Target tensors whose values come from the source."""
        return self.target_total - len(self.missing) - len(self.mismatched)

    def coverage(self) -> float:
        """Fraction of the target's tensors that come from the source."""
        return self.from_source / self.target_total if self.target_total else 0.0

    def summary(self) -> str:
        lines = [f'renamed {len(self.converted)} source tensors to our names']
        if self.target_total:
            lines.append(
                f'the target has {self.target_total} tensors: {self.from_source} from the '
                f'source ({100 * self.coverage():.1f}%), {len(self.missing)} left at init '
                '(e.g. ParC kernels a plain network lacks), '
                f'{len(self.mismatched)} with a source of the wrong shape (left at init)')
        if self.unused:
            lines.append(f'NOT used ({len(self.unused)}): ' + ', '.join(self.unused))
        if self.missing:
            lines.append(f'left at init ({len(self.missing)}): ' + ', '.join(self.missing))
        for k, a, b in self.mismatched:
            lines.append(f'shape mismatch, NOT loaded: {k} {a} -> {b}')
        lines += self.notes
        return '\n'.join(lines)


def apply_rules(sd: StateDict, rules: Sequence[Rule]) -> Tuple[StateDict, ConversionReport]:
    """Rename keys with the first matching ``(regex, replacement)`` rule."""
    out: StateDict = {}
    rep = ConversionReport()
    compiled = [(re.compile(p), r) for p, r in rules]
    for k, v in sd.items():
        for pat, repl in compiled:
            if pat.fullmatch(k):
                nk = pat.sub(repl, k)
                out[nk] = v
                rep.converted.append((k, nk))
                break
        else:
            rep.unused.append(k)
    return out, rep


def unwrap_checkpoint(ckpt) -> StateDict:
    """The state dict inside a checkpoint file's object (``state_dict``/``model``/EMA)."""
    if isinstance(ckpt, dict):
        for key in ('state_dict', 'model', 'model_ema', 'module'):
            if key in ckpt and isinstance(ckpt[key], dict):
                return unwrap_checkpoint(ckpt[key])
        if all(isinstance(v, Tensor) for v in ckpt.values()):
            return {k[7:] if k.startswith('module.') else k: v for k, v in ckpt.items()}
    raise ValueError('No state_dict found in the checkpoint (looked for state_dict/model/'
                     'model_ema/module or a plain name->tensor dict)')


# --- ConvNeXt family -------------------------------------------------------------------
# Official ParC_ConvNets classification layout == facebook ConvNeXt layout + gcc_H / gcc_W.
_CONVNEXT_OFFICIAL: List[Rule] = [
    (r'downsample_layers\.(.*)', r'backbone.downsample_layers.\1'),
    (r'stages\.(\d+)\.(\d+)\.dwconv\.(weight|bias)', r'backbone.stages.\1.\2.depthwise_conv.\3'),
    (r'stages\.(\d+)\.(\d+)\.gcc_H\.gcc_conv\.(weight|bias)',
     r'backbone.stages.\1.\2.depthwise_conv.parc_h.\3'),
    (r'stages\.(\d+)\.(\d+)\.gcc_W\.gcc_conv\.(weight|bias)',
     r'backbone.stages.\1.\2.depthwise_conv.parc_w.\3'),
    (r'stages\.(\d+)\.(\d+)\.gcc_H\.pe', r'backbone.stages.\1.\2.depthwise_conv.parc_h.pe'),
    (r'stages\.(\d+)\.(\d+)\.gcc_W\.pe', r'backbone.stages.\1.\2.depthwise_conv.parc_w.pe'),
    (r'stages\.(\d+)\.(\d+)\.pwconv(\d)\.(weight|bias)',
     r'backbone.stages.\1.\2.pointwise_conv\3.\4'),
    (r'stages\.(\d+)\.(\d+)\.(gamma|norm\.weight|norm\.bias)', r'backbone.stages.\1.\2.\3'),
    (r'norm\.(weight|bias)', r'backbone.norm3.\1'),
    (r'head\.(weight|bias)', r'head.fc.\1'),
]
# The first author's detection backbones (mmdet 2.x fork): gcc_conv_1H / gcc_conv_2W, meta_pe,
# norm0..3 per output.
_CONVNEXT_DET: List[Rule] = [
    (r'stages\.(\d+)\.(\d+)\.gcc_conv_1H\.(weight|bias)',
     r'backbone.stages.\1.\2.depthwise_conv.parc_h.\3'),
    (r'stages\.(\d+)\.(\d+)\.gcc_conv_2W\.(weight|bias)',
     r'backbone.stages.\1.\2.depthwise_conv.parc_w.\3'),
    (r'stages\.(\d+)\.(\d+)\.gcc_conv_1H\.meta_pe',
     r'backbone.stages.\1.\2.depthwise_conv.parc_h.pe'),
    (r'stages\.(\d+)\.(\d+)\.gcc_conv_2W\.meta_pe',
     r'backbone.stages.\1.\2.depthwise_conv.parc_w.pe'),
    (r'norm(\d)\.(weight|bias)', r'backbone.norm\1.\2'),
] + _CONVNEXT_OFFICIAL
# timm ConvNeXt
_CONVNEXT_TIMM: List[Rule] = [
    (r'stem\.(\d)\.(weight|bias)', r'backbone.downsample_layers.0.\1.\2'),
    (r'stages\.(\d+)\.downsample\.(\d)\.(weight|bias)', r'backbone.downsample_layers.\1.\2.\3'),
    (r'stages\.(\d+)\.blocks\.(\d+)\.conv_dw\.(weight|bias)',
     r'backbone.stages.\1.\2.depthwise_conv.\3'),
    (r'stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc(\d)\.(weight|bias)',
     r'backbone.stages.\1.\2.pointwise_conv\3.\4'),
    (r'stages\.(\d+)\.blocks\.(\d+)\.norm\.(weight|bias)', r'backbone.stages.\1.\2.norm.\3'),
    (r'stages\.(\d+)\.blocks\.(\d+)\.(?:ls\.)?gamma', r'backbone.stages.\1.\2.gamma'),
    (r'head\.norm\.(weight|bias)', r'backbone.norm3.\1'),
    (r'head\.fc\.(weight|bias)', r'head.fc.\1'),
    (r'norm_pre\.(weight|bias)', r'backbone.norm3.\1'),
]


# --- ResNet family (official ParC_ConvNets, first-author detection fork, torchvision) ---
_RESNET: List[Rule] = [
    (r'(conv1|bn1)\.(.*)', r'backbone.\1.\2'),
    (r'(layer\d+\.\d+)\.(?:parc|gcc)_H\.gcc_conv\.(weight|bias)', r'backbone.\1.conv2.parc_h.\2'),
    (r'(layer\d+\.\d+)\.(?:parc|gcc)_W\.gcc_conv\.(weight|bias)', r'backbone.\1.conv2.parc_w.\2'),
    (r'(layer\d+\.\d+)\.(?:parc|gcc)_H\.pe', r'backbone.\1.conv2.parc_h.pe'),
    (r'(layer\d+\.\d+)\.(?:parc|gcc)_W\.pe', r'backbone.\1.conv2.parc_w.pe'),
    (r'(layer\d+\.\d+\.(?:conv\d|bn\d|downsample\.\d)\..*)', r'backbone.\1'),
    (r'fc\.(weight|bias)', r'head.fc.\1'),
]


def convert_resnet(sd: StateDict) -> Tuple[StateDict, ConversionReport]:
    """Official ParC-ResNet / detection-fork / torchvision ResNet -> parc_mm keys
    (``backbone.*``, ``head.fc.*``). mmpretrain/mmdet/mmseg ResNet checkpoints
    (``backbone.`` keys) pass through."""
    if any(k.startswith('backbone.') for k in sd):
        return dict(sd), ConversionReport(converted=[(k, k) for k in sd])
    return apply_rules(sd, _RESNET)


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
    return _finish(model, sd, rep, head)


def detect_convnext_layout(sd: StateDict) -> str:
    keys = list(sd)
    if any('.gcc_conv_1H.' in k for k in keys):
        return 'det'
    if any(k.startswith('stem.') or '.blocks.' in k for k in keys):
        return 'timm'
    if any(k.startswith('backbone.') for k in keys):
        return 'mmpretrain'
    if any('.dwconv.' in k or '.gcc_H.' in k for k in keys):
        return 'official'
    raise ValueError('Unrecognised ConvNeXt checkpoint layout (expected the official ParC / '
                     'facebook ConvNeXt, the ParC detection fork, timm or mmpretrain keys)')


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


def merge_into(model_sd: StateDict, src: StateDict, prefix: str = '',
               rep: Optional[ConversionReport] = None) -> Tuple[StateDict, ConversionReport]:
    """Copy ``src`` tensors into a full model state dict where names and shapes fit.

    Everything not copied keeps the model's init and is reported (``missing``); source
    tensors without a place are reported (``unused``), wrong shapes (``mismatched``).
    ParC kernels / PEs of another base size are resized by the module on load, so they are
    accepted here when only their global length differs.
    """
    rep = rep or ConversionReport()
    out = dict(model_sd)
    used = set()
    for k, v in model_sd.items():
        sk = prefix + k
        if sk not in src:
            rep.missing.append(k)
            continue
        s = src[sk]
        used.add(sk)
        if s.shape == v.shape:
            out[k] = s.to(v.dtype)
        elif is_parc_resizable(k, s, v):
            from parc_mm.ops import resize_to
            direction = 'H' if v.shape[3] == 1 and s.shape[3] == 1 else 'W'
            n = v.shape[2] if direction == 'H' else v.shape[3]
            out[k] = resize_to(s.to(v.dtype), n, direction)
            rep.notes.append(f'resized {k} {tuple(s.shape)} -> {tuple(v.shape)}')
        else:
            rep.mismatched.append((k, tuple(s.shape), tuple(v.shape)))
    rep.unused += [k for k in src if k not in used]
    return out, rep


_PARC_TENSOR = re.compile(
    r'.*\.(parc_[hw]|branch_(hw|wh))\.(weight|pe|conv[12]\.(weight|pe)|pe\.weight)')


def is_parc_resizable(key: str, s: Tensor, v: Tensor) -> bool:
    """A ParC kernel / position embedding that differs only in its global length (the
    modules resample those on load)."""
    if not _PARC_TENSOR.fullmatch(key) or s.dim() != 4 or v.dim() != 4:
        return False
    diff = [d for d in range(4) if s.shape[d] != v.shape[d]]
    return len(diff) == 1 and diff[0] in (2, 3)


def load_report(model: torch.nn.Module, sd: StateDict, prefix: str = ''
                ) -> ConversionReport:
    """Load what fits of ``sd`` into ``model`` (strict about shapes) and report the rest."""
    merged, rep = merge_into(model.state_dict(), sd, prefix)
    model.load_state_dict(merged)
    return rep


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
    return _finish(model, sd, rep, head)


def resnet_to_parc(src_sd: StateDict, depth: int = 50, parc_blocks='paper', seed: int = 0,
                   head: bool = True, **backbone_kwargs) -> Tuple[StateDict, ConversionReport]:
    """A full ParC-ResNet checkpoint from any ResNet layout: shared tensors copied, ParC
    tensors the source lacks freshly initialised, the replaced 3x3 convs reported."""
    from parc_mm.models.backbones.parc_resnet import ParCResNet
    sd, rep = convert_resnet(src_sd)
    torch.manual_seed(seed)
    model = ParCResNet(depth=depth, parc_cfg=dict(blocks=parc_blocks), **backbone_kwargs)
    return _finish(model, sd, rep, head)


def mv2_to_parc(src_sd: StateDict, parc_blocks='paper', seed: int = 0, head: bool = True,
                **backbone_kwargs) -> Tuple[StateDict, ConversionReport]:
    """A full ParC-MobileNetV2 checkpoint from any MobileNetV2 layout."""
    from parc_mm.models.backbones.parc_mobilenet_v2 import ParCMobileNetV2
    sd, rep = convert_mv2(src_sd)
    torch.manual_seed(seed)
    model = ParCMobileNetV2(parc_cfg=dict(blocks=parc_blocks), **backbone_kwargs)
    return _finish(model, sd, rep, head)


def _finish(model, sd: StateDict, rep: ConversionReport, head: bool
            ) -> Tuple[StateDict, ConversionReport]:
    backbone, rep = merge_into(model.state_dict(), sd, 'backbone.', rep)
    out = {'backbone.' + k: v for k, v in backbone.items()}
    for k in [k for k in sd if k.startswith('head.')]:
        if head:
            out[k] = sd[k]
            rep.unused.remove(k)
    rep.target_total = len(out)
    return out, rep


MIN_COVERAGE = 0.5


def check_coverage(rep: ConversionReport, family: str, min_coverage: float = MIN_COVERAGE
                   ) -> None:
    """Refuse a conversion in which most of the target would stay at its random init (an
    empty, foreign or wrong-family source): such a file looks like pretrained weights but is
    not."""
    if rep.coverage() < min_coverage:
        hint = ''
        if rep.unused:
            hint = f' The source keys look like {", ".join(rep.unused[:3])} ...;'
        raise ValueError(
            f'Only {rep.from_source} of the {rep.target_total} tensors of the {family!r} target '
            f'({100 * rep.coverage():.0f}%, below {100 * min_coverage:.0f}%) come from the '
            f'source: is it a checkpoint of this family?{hint} Nothing was written. Pass '
            '--allow-partial to write a mostly randomly initialised checkpoint anyway.')


ConverterFn = Callable[[StateDict], Tuple[StateDict, ConversionReport]]

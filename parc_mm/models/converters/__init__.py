"""Checkpoint converters into parc_mm layouts: a shared core and one module per family, each
exporting its key rules, its layout detection and the builder of its target model.

``to_parc(family, state_dict, **kwargs)`` is the one entry (``tools/model_converters/to_parc.py``
is its command line); every conversion returns ``(state_dict, report)`` and never drops a key
silently: what no rule maps is listed in ``report.unused``.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from .convnext import convert_convnext, convnext_to_parc, detect_convnext_layout
from .core import (
    MIN_COVERAGE,
    ConversionReport,
    StateDict,
    apply_rules,
    check_coverage,
    is_parc_resizable,
    load_report,
    merge_into,
    parc_resizable_keys,
    unwrap_checkpoint,
)
from .mv2 import convert_mv2, mv2_to_parc
from .parcnet import convert_parcnet, parcnet_to_parc
from .parcnetv2 import convert_parcnetv2, detect_parcnetv2_layout, parcnetv2_to_parc
from .resnet import convert_resnet, resnet_to_parc
from .swin import convert_swin, detect_swin_layout, swin_to_parc, unfold_order
from .vit import convert_vit, detect_vit_layout, vit_to_parc

ConverterFn = Callable[..., Tuple[StateDict, ConversionReport]]
FAMILIES: Dict[str, ConverterFn] = {
    'convnext': convnext_to_parc,
    'resnet': resnet_to_parc,
    'mv2': mv2_to_parc,
    'parcnet': parcnet_to_parc,
    'parcnetv2': parcnetv2_to_parc,
    'deit': vit_to_parc,
    'swin': swin_to_parc,
}


def to_parc(family: str, state_dict: StateDict, **kwargs) -> Tuple[StateDict, ConversionReport]:
    """Convert ``state_dict`` (any layout the family knows) into a full parc_mm checkpoint of
    that family; ``kwargs`` go to the family's builder (``arch``, ``parc_blocks``, ``head``,
    ``depth`` ...)."""
    if family not in FAMILIES:
        raise ValueError(f'Unknown converter family {family!r}; choose one of {sorted(FAMILIES)}')
    return FAMILIES[family](state_dict, **kwargs)


def arch_candidates(family: str, state_dict: Optional[StateDict] = None) -> Dict[str, dict]:
    """The builder keywords of each named arch of a family (what :func:`detect_arch` tries);
    with ``state_dict``, only the archs whose stem width and stage-3 depth it matches (so the
    large ones are not built for nothing)."""
    if family == 'convnext':
        import re

        from parc_mm.models.backbones.parc_convnext import ParCConvNeXt
        archs = ParCConvNeXt.arch_settings
        if state_dict is not None:
            sd, _ = convert_convnext(state_dict)
            stem = sd.get('backbone.downsample_layers.0.0.weight')
            blocks = {int(m.group(1)) for k in sd
                      for m in [re.match(r'backbone\.stages\.2\.(\d+)\.', k)] if m}
            if stem is None and not blocks:
                return {}  # no ConvNeXt stem or stage in it: no arch of this family fits
            archs = {a: v for a, v in archs.items()
                     if (stem is None or v['channels'][0] == stem.shape[0])
                     and (not blocks or v['depths'][2] == max(blocks) + 1)}
        return {a: dict(arch=a) for a in archs}
    if family == 'parcnet':
        from parc_mm.models.backbones.parc_net import ParCNet
        return {a: dict(arch=a) for a in ParCNet.arch_zoo}
    if family == 'parcnetv2':
        from parc_mm.models.backbones.parcnetv2 import ParCNetV2
        archs = ParCNetV2.arch_settings
        if state_dict is not None:
            sd, _ = convert_parcnetv2(state_dict)
            stem = sd.get('backbone.downsample_layers.0.conv.weight')
            blocks = {int(k.split('.')[3]) for k in sd if k.startswith('backbone.stages.2.')}
            archs = {a: v for a, v in archs.items()
                     if (stem is None or v['channels'][0] == stem.shape[0])
                     and (not blocks or v['depths'][2] == max(blocks) + 1)}
        return {a: dict(arch=a) for a in archs}
    if family == 'resnet':
        return {f'depth {d}': dict(depth=d) for d in (18, 34, 50, 101, 152)}
    return {}  # mv2: one arch; deit / swin read the arch from the shapes


def detect_arch(family: str, state_dict: StateDict, **kwargs):
    """``(name, kwargs, coverage)`` of the arch of ``family`` whose backbone the source fills
    best (None when the family has one arch or none fits at all): the fix to name when the
    given arch does not fit."""
    best = None
    for name, arch_kwargs in arch_candidates(family, state_dict).items():
        try:
            _, rep = to_parc(family, state_dict, **{**kwargs, **arch_kwargs})
        except (ValueError, KeyError, RuntimeError):
            continue
        if best is None or rep.coverage() > best[2]:
            best = (name, arch_kwargs, rep.coverage())
    return best if best is not None and best[2] > 0 else None


__all__ = [
    'FAMILIES', 'MIN_COVERAGE', 'ConversionReport', 'apply_rules', 'arch_candidates',
    'check_coverage', 'convert_convnext', 'convert_mv2', 'convert_parcnet', 'convert_parcnetv2',
    'convert_resnet', 'convert_swin', 'convert_vit', 'convnext_to_parc', 'detect_arch',
    'detect_convnext_layout', 'detect_parcnetv2_layout', 'detect_swin_layout',
    'detect_vit_layout', 'is_parc_resizable', 'load_report', 'merge_into', 'mv2_to_parc',
    'parc_resizable_keys', 'parcnet_to_parc', 'parcnetv2_to_parc', 'resnet_to_parc',
    'swin_to_parc', 'to_parc', 'unfold_order', 'unwrap_checkpoint', 'vit_to_parc'
]

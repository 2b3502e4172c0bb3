"""What every converter shares: the report, rule application, the merge into a freshly built
model (which reports every tensor not used, left at init or mis-shaped), unwrapping a
checkpoint file's object and the coverage check that refuses a mostly random result."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

import torch
from torch import Tensor

StateDict = Dict[str, Tensor]
Rule = Tuple[str, Optional[str]]


def rule_table(text: str) -> List[Rule]:
    """Rules written as a table, one per line: the key regex, then (after spaces) its
    replacement, or ``-`` to drop the key (neither contains a space)."""
    out: List[Rule] = []
    for line in text.strip().splitlines():
        fields = line.split()
        if len(fields) != 2:
            raise ValueError(f'rule table line {line!r}: needs a regex and a replacement (or -)')
        pattern, target = fields
        out.append((pattern, None if target == '-' else target))
    return out


@dataclass
class ConversionReport:
    """What a conversion / partial load did."""
    converted: List[Tuple[str, str]] = field(default_factory=list)  # (source, target)
    unused: List[str] = field(default_factory=list)  # source keys no rule mapped
    missing: List[str] = field(default_factory=list)  # target keys left at their init
    mismatched: List[Tuple[str, tuple, tuple]] = field(default_factory=list)
    # source keys a rule drops on purpose (attention: no place in the ConvNet)
    dropped: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    target_total: int = 0  # tensors of the written checkpoint (0: not a full conversion)
    target_numel: int = 0  # their elements, and those of them that come from the source
    source_numel: int = 0
    # the same for the backbone alone (what the converter converts: neck / heads / classifier
    # are copied as they are and say nothing about whether the source fits)
    backbone_total: int = 0
    backbone_numel: int = 0
    backbone_source_numel: int = 0

    @property
    def from_source(self) -> int:
        """Target tensors whose values come from the source."""
        return self.target_total - len(self.missing) - len(self.mismatched)

    @property
    def backbone_from_source(self) -> int:
        """Backbone tensors whose values come from the source."""
        return self.backbone_total - len(self.missing) - len(self.mismatched)

    def coverage(self) -> float:
        """Fraction of the converted backbone's parameters (elements; tensors when the element
        counts are unknown) that come from the source: a ViT -> ParC conversion leaves many
        small new tensors but few new parameters. Heads and necks copied from the source do
        not count (they would make a checkpoint of another network look converted)."""
        if self.backbone_numel:
            return self.backbone_source_numel / self.backbone_numel
        if self.target_numel:
            return self.source_numel / self.target_numel
        return self.from_source / self.target_total if self.target_total else 0.0

    def summary(self) -> str:
        lines = [f'renamed {len(self.converted)} source tensors to our names']
        if self.target_total:
            lines.append(
                f'the target has {self.target_total} tensors; its backbone '
                f'{self.backbone_total or self.target_total}: {self.backbone_from_source} from '
                f'the source ({100 * self.coverage():.1f}% of the backbone\'s parameters), '
                f'{len(self.missing)} left at init (e.g. ParC kernels a plain network lacks), '
                f'{len(self.mismatched)} with a source of the wrong shape (left at init)')
            if self.target_total > self.backbone_total > 0:
                lines.append(f'copied as they are (not converted, not counted above): '
                             f'{self.target_total - self.backbone_total} neck / head tensors')
        if self.dropped:
            lines.append(f'dropped on purpose ({len(self.dropped)}, attention has no place in '
                         'the ConvNet): ' + ', '.join(self.dropped))
        if self.unused:
            lines.append(f'NOT used ({len(self.unused)}): ' + ', '.join(self.unused))
        if self.missing:
            lines.append(f'left at init ({len(self.missing)}): ' + ', '.join(self.missing))
        for k, a, b in self.mismatched:
            lines.append(f'shape mismatch, NOT loaded: {k} {a} -> {b}')
        lines += self.notes
        return '\n'.join(lines)


def apply_rules(sd: StateDict, rules: Sequence[Rule]) -> Tuple[StateDict, ConversionReport]:
    """Rename keys with the first matching ``(regex, replacement)`` rule; a replacement of
    None drops the key on purpose (listed in ``report.dropped``)."""
    out: StateDict = {}
    rep = ConversionReport()
    compiled = [(re.compile(p), r) for p, r in rules]
    for k, v in sd.items():
        for pat, repl in compiled:
            if not pat.fullmatch(k):
                continue
            if repl is None:
                rep.dropped.append(k)
            else:
                nk = pat.sub(repl, k)
                out[nk] = v
                rep.converted.append((k, nk))
            break
        else:
            rep.unused.append(k)
    return out, rep


def detect_layout(sd: StateDict, layouts: Sequence[Tuple[str, str]], family: str,
                  expected: str) -> str:
    """The first layout (name, key regex) with a key matching its regex (``re.match``), or a
    ValueError naming the family and the ``expected`` layouts."""
    for name, pattern in layouts:
        if any(re.match(pattern, k) for k in sd):
            return name
    raise ValueError(f'Unrecognised {family} checkpoint layout (expected {expected})')


def with_backbone_prefix(sd: StateDict) -> StateDict:
    """``sd`` with ``backbone.`` before every key when it is a bare backbone state dict (no
    key has the prefix); unchanged otherwise (a classifier / detector / segmentor)."""
    if any(k.startswith('backbone.') for k in sd):
        return sd
    return {'backbone.' + k: v for k, v in sd.items()}


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


def parc_resizable_keys(model: torch.nn.Module) -> Set[str]:
    """State-dict keys of the ParC kernels / position embeddings of ``model``: the tensors its
    ParC layers resample to their base length when a checkpoint of another length loads."""
    from parc_mm.ops.export import parc_layers
    return {f'{name}.{pname}' if name else pname for name, m in parc_layers(model)
            for pname in ('weight', 'pe') if getattr(m, pname, None) is not None}


def merge_into(model_sd: StateDict, src: StateDict, prefix: str = '',
               rep: Optional[ConversionReport] = None,
               resizable: Iterable[str] = ()) -> Tuple[StateDict, ConversionReport]:
    """Copy ``src`` tensors into a full model state dict where names and shapes fit.

    Everything not copied keeps the model's init and is reported (``missing``); source
    tensors without a place are reported (``unused``), wrong shapes (``mismatched``).
    The ``resizable`` keys (:func:`parc_resizable_keys`: ParC kernels / PEs) of another base
    length are resampled with the layers' own rule, as loading would.
    """
    resizable = set(resizable)
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
        elif is_parc_resizable(k, s, v, resizable):
            from parc_mm.ops import resize_to
            direction = 'H' if v.shape[3] == 1 and s.shape[3] == 1 else 'W'
            n = v.shape[2] if direction == 'H' else v.shape[3]
            out[k] = resize_to(s.to(v.dtype), n, direction)
            rep.notes.append(f'resized {k} {tuple(s.shape)} -> {tuple(v.shape)}')
        else:
            rep.mismatched.append((k, tuple(s.shape), tuple(v.shape)))
    rep.unused += [k for k in src if k not in used]
    return out, rep


def is_parc_resizable(key: str, s: Tensor, v: Tensor, resizable: Set[str]) -> bool:
    """A ParC kernel / position embedding (``key`` in ``resizable``) that differs only in its
    global length (the layers resample those on load)."""
    if key not in resizable or s.dim() != 4 or v.dim() != 4:
        return False
    diff = [d for d in range(4) if s.shape[d] != v.shape[d]]
    return len(diff) == 1 and diff[0] in (2, 3)


def load_report(model: torch.nn.Module, sd: StateDict, prefix: str = ''
                ) -> ConversionReport:
    """Load what fits of ``sd`` into ``model`` (strict about shapes) and report the rest."""
    merged, rep = merge_into(model.state_dict(), sd, prefix,
                             resizable=parc_resizable_keys(model))
    model.load_state_dict(merged)
    return rep


def finish(model, sd: StateDict, rep: ConversionReport, head: bool
            ) -> Tuple[StateDict, ConversionReport]:
    """The written checkpoint: ``model``'s backbone filled from ``sd['backbone.*']``, plus
    (``head``) every other tensor of ``sd`` as it is: the classifier, or the neck and heads
    of a whole detector / segmentor."""
    backbone, rep = merge_into(model.state_dict(), sd, 'backbone.', rep,
                               resizable=parc_resizable_keys(model))
    out = {'backbone.' + k: v for k, v in backbone.items()}
    for k in [k for k in sd if not k.startswith('backbone.')]:
        if head:
            out[k] = sd[k]
            rep.unused.remove(k)
    new = {'backbone.' + k for k in rep.missing} | {'backbone.' + k for k, *_ in rep.mismatched}
    rep.target_total = len(out)
    rep.target_numel = sum(v.numel() for v in out.values())
    rep.source_numel = sum(v.numel() for k, v in out.items() if k not in new)
    rep.backbone_total = len(backbone)
    rep.backbone_numel = sum(v.numel() for v in backbone.values())
    rep.backbone_source_numel = sum(v.numel() for k, v in backbone.items()
                                    if 'backbone.' + k not in new)
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
            f'Only {100 * rep.coverage():.0f}% of the backbone parameters of the {family!r} '
            f'target ({rep.backbone_from_source} of its {rep.backbone_total} tensors; below '
            f'{100 * min_coverage:.0f}%) come from the source: is it a checkpoint of this '
            f'family?{hint} Nothing was written. Pass '
            '--allow-partial to write a mostly randomly initialised checkpoint anyway.')

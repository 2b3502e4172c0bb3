"""Shared helpers of the ParC backbones."""
from __future__ import annotations

from typing import List, Sequence, Union

ParCBlocks = Union[str, Sequence[Sequence[int]]]


def resolve_parc_blocks(spec: ParCBlocks, depths: Sequence[int],
                        paper: Sequence[Sequence[int]]) -> List[List[int]]:
    """Block indices per stage from a placement spec.

    ``'paper'``: the official placement (given by the backbone); ``'all'``: every block;
    ``'none'``: no ParC (the plain baseline); or explicit lists, one per stage (negative
    indices allowed).
    """
    n = len(depths)
    if isinstance(spec, str):
        if spec == 'paper':
            return [list(p) for p in paper]
        if spec == 'all':
            return [list(range(d)) for d in depths]
        if spec == 'none':
            return [[] for _ in depths]
        raise ValueError(f"Unknown parc_blocks {spec!r}: use 'paper', 'all', 'none' or "
                         f'a list of {n} lists of block indices')
    usage = (f"parc_blocks must be 'paper', 'all', 'none' or a list of {n} lists of block "
             f"indices (one list per stage, e.g. {[[] for _ in range(n - 1)] + [[0]]})")
    if not isinstance(spec, (list, tuple)) or not all(
            isinstance(s, (list, tuple)) and all(
                isinstance(b, int) and not isinstance(b, bool) for b in s) for s in spec):
        raise ValueError(f'{usage}; got {spec!r}')
    spec = [list(s) for s in spec]
    if len(spec) != n:
        raise ValueError(f'parc_blocks needs one list per stage ({n}), got {len(spec)}')
    out = []
    for i, (blocks, d) in enumerate(zip(spec, depths)):
        idx = []
        for b in blocks:
            if not -d <= b < d:
                raise ValueError(f'parc_blocks: stage {i} has {d} blocks, index {b} is out of '
                                 'range')
            idx.append(b % d)
        out.append(sorted(set(idx)))
    return out


def check_positive_ints(name: str, values: Sequence[int], count: int) -> List[int]:
    """``values`` as a list of ``count`` positive ints, or a ValueError naming ``name``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)) or \
            len(values) != count or not all(
                isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise ValueError(f'{name} needs {count} positive ints (one per stage), got {values!r}')
    return list(values)


def check_img_size(img_size: int) -> int:
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < 1:
        raise ValueError(f'img_size must be a positive int (the training resolution the ParC '
                         f'kernel lengths derive from, e.g. 224), got {img_size!r}')
    return img_size


def default_base_sizes(img_size: int, num_stages: int, first_stride: int = 4) -> List[int]:
    """Feature sizes per stage at ``img_size`` (the kernel lengths the official code uses)."""
    check_img_size(img_size)
    return [max(1, img_size // (first_stride * 2**i)) for i in range(num_stages)]

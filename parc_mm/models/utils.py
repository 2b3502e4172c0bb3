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
    spec = [list(s) for s in spec]
    if len(spec) != n:
        raise ValueError(f'parc_blocks needs one list per stage ({n}), got {len(spec)}')
    out = []
    for i, (blocks, d) in enumerate(zip(spec, depths)):
        idx = []
        for b in blocks:
            if not -d <= b < d:
                raise ValueError(f'parc_blocks: stage {i} has {d} blocks, index {b} is out of range')
            idx.append(b % d)
        out.append(sorted(set(idx)))
    return out


def default_base_sizes(img_size: int, num_stages: int, first_stride: int = 4) -> List[int]:
    """Feature sizes per stage at ``img_size`` (the kernel lengths the official code uses)."""
    return [max(1, img_size // (first_stride * 2**i)) for i in range(num_stages)]

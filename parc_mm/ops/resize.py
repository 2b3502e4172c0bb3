"""The resize rule: ParC kernels and position embeddings are stored at a base length and
resampled to the actual one (bilinear, ``align_corners=True``; a no-op at the base length),
on every forward and when a checkpoint of another base length is loaded."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

DIRECTIONS = ('H', 'W')


def axis(direction: str) -> int:
    """The tensor dim of a ParC direction in (B, C, H, W)."""
    return 2 if direction == 'H' else 3


def resize_to(param: torch.Tensor, n: int, direction: str) -> torch.Tensor:
    """Resize a kernel ``(O, I, K, 1)``/``(O, I, 1, K)`` or position embedding
    ``(1, C, K, 1)``/``(1, C, 1, K)`` to length ``n`` along its global axis
    (bilinear, align_corners=True; identity when already of length ``n``)."""
    ax = axis(direction)
    if param.shape[ax] == n:
        return param
    size = (n, 1) if direction == 'H' else (1, n)
    # interpolate has no float64/half kernels on every backend for 'bilinear' under
    # autocast; keep the parameter's dtype.
    return F.interpolate(param, size=size, mode='bilinear', align_corners=True)


def resize_on_load(module: nn.Module, names: Sequence[str], state_dict: dict,
                    prefix: str) -> None:
    """A checkpoint trained at another base size (e.g. kernels of 16 loaded into a model built
    with base 14): resample its kernel / PE tensors to the module's base size and say so."""
    ax = axis(module.direction)
    for name in names:
        key = prefix + name
        ours = getattr(module, name)
        theirs = state_dict.get(key)
        if ours is None or theirs is None or theirs.dim() != 4:
            continue
        same_rest = all(theirs.shape[d] == ours.shape[d] for d in range(4) if d != ax)
        if theirs.shape[ax] != ours.shape[ax] and same_rest and theirs.shape[5 - ax] == 1:
            from mmengine.logging import print_log
            print_log(f'ParC: resized {key} from length {theirs.shape[ax]} to the model\'s '
                      f'base size {ours.shape[ax]} (bilinear, align_corners=True)',
                      logger='current')
            state_dict[key] = resize_to(theirs.to(ours.dtype), ours.shape[ax], module.direction)


def _resized_param(p: nn.Parameter, size: int, direction: str) -> nn.Parameter:
    """A resampled copy of ``p`` that keeps its ``requires_grad`` (frozen stays frozen)."""
    return nn.Parameter(resize_to(p.data, size, direction), requires_grad=p.requires_grad)


def resized_param(p: nn.Parameter, size: int, direction: str) -> nn.Parameter:
    """A resampled copy of ``p`` that keeps its ``requires_grad`` (frozen stays frozen)."""
    return nn.Parameter(resize_to(p.data, size, direction), requires_grad=p.requires_grad)

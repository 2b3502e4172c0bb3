"""The resize rule: ParC kernels and position embeddings are stored at a base length and
resampled to the actual one (bilinear, ``align_corners=True``; a no-op at the base length),
on every forward and when a checkpoint of another base length is loaded."""
from __future__ import annotations

import functools
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .tracing import exporting, tracing_onnx, untraced

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
    if tracing_onnx():  # a constant of the graph: no resize op, a kernel of known shape
        with untraced():
            return resize_to(param.detach(), int(n), direction)
    if exporting():
        n = int(n)  # a traced size: the exported kernel is fixed to it
        # a product with a constant matrix: the exporter folds it into a constant kernel of
        # known shape (a traced ``Resize`` of the weight makes the conv's kernel shape unknown)
        m = interpolation_matrix(param.shape[ax], n, param.dtype, param.device)
        return _along(param, direction, m)
    if param.device.type != 'cpu' or torch.are_deterministic_algorithms_enabled():
        return _Resize.apply(param, n, direction)
    # CPU: bilinear's own backward is deterministic there (and keeps training's rounding)
    size = (n, 1) if direction == 'H' else (1, n)
    return F.interpolate(param, size=size, mode='bilinear', align_corners=True)


@functools.lru_cache(maxsize=256)
def _interpolation_matrix(n_in: int, n_out: int):  # -> a read-only numpy array
    # numpy, not torch: built inside a trace, torch ops would be recorded into the graph
    import numpy as np
    src = np.zeros(n_out) if n_out == 1 else np.arange(n_out) * ((n_in - 1) / (n_out - 1))
    i0 = np.clip(np.floor(src).astype(np.int64), 0, n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    l1 = src - i0
    m = np.zeros((n_in, n_out))
    cols = np.arange(n_out)
    np.add.at(m, (i0, cols), 1 - l1)
    np.add.at(m, (i1, cols), l1)
    m.setflags(write=False)
    return m


@torch.compiler.assume_constant_result  # traced (compile / export): a constant of the graph
def interpolation_matrix(n_in: int, n_out: int, dtype: torch.dtype = torch.float32,
                         device='cpu') -> torch.Tensor:
    """``(n_in, n_out)``: the linear map of the 1-D resize (``align_corners=True``), cached
    per size: ``x @ M`` resizes the last axis."""
    # int(): under a trace sizes are tensors; the matrix is a constant of the traced sizes
    return torch.from_numpy(_interpolation_matrix(int(n_in), int(n_out)).copy()).to(device=device,
                                                                          dtype=dtype)


class _Resize(torch.autograd.Function):
    """The resize along one axis: forward is ``F.interpolate`` (bilinear, ``align_corners=
    True``, bit-identical to the resize ParC always used); backward is the product with the
    transposed interpolation matrix. The CUDA backward of bilinear interpolation accumulates
    with atomics and has no deterministic implementation (``torch.use_deterministic_algorithms
    (True)``, mmengine's ``randomness=dict(deterministic=True)``, raises at the first backward);
    a matrix product is deterministic on every device, and differentiable again."""

    @staticmethod
    def forward(ctx, param: torch.Tensor, n: int, direction: str) -> torch.Tensor:
        ctx.n_in, ctx.direction = param.shape[axis(direction)], direction
        size = (n, 1) if direction == 'H' else (1, n)
        return F.interpolate(param, size=size, mode='bilinear', align_corners=True)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        ax = axis(ctx.direction)
        m = interpolation_matrix(ctx.n_in, g.shape[ax], g.dtype, g.device)
        return _along(g, ctx.direction, m.transpose(0, 1)), None, None


def _along(t: torch.Tensor, direction: str, m: torch.Tensor) -> torch.Tensor:
    """``t`` (4-D, length 1 on the other spatial axis) times ``m`` along its global axis
    (plain transposes: exporters mistranslate ``movedim`` with negative dims)."""
    if direction == 'W':
        return t @ m
    return (t.transpose(2, 3) @ m).transpose(2, 3)


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


def resized_param(p: nn.Parameter, size: int, direction: str) -> nn.Parameter:
    """A resampled copy of ``p`` that keeps its ``requires_grad`` (frozen stays frozen)."""
    return nn.Parameter(resize_to(p.data, size, direction), requires_grad=p.requires_grad)

"""Preparing a model with ParC layers for deployment: one impl everywhere, kernels fixed to
an input size (no interpolation in the exported graph)."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn

from .config import check_impl, parc_impl
from .resize import axis


def parc_layers(module: nn.Module):
    """(name, layer) of every ParC layer (anything with a ParC ``direction`` and ``resize_``)."""
    for name, m in module.named_modules():
        if hasattr(m, 'direction') and callable(getattr(m, 'resize_', None)):
            yield name, m


def set_impl(module: nn.Module, impl: str) -> nn.Module:
    """Set ``impl`` on every ParC conv inside ``module`` (per-model override)."""
    check_impl(impl)
    for _, m in parc_layers(module):
        if hasattr(m, 'impl'):
            m.impl = impl
    return module


def fix_input_size(module: nn.Module, size: Tuple[int, int], impl: str = 'direct') -> nn.Module:
    """Prepare a model for export at a fixed input resolution.

    Runs one dummy forward to record every ParC layer's actual map size, permanently
    resamples kernels/PEs to it (so no interpolation is traced) and selects ``impl``
    (``direct`` exports to plain ONNX Pad-free Concat+Conv; ``gemm`` to MatMul).
    """
    sizes = {}
    layers = dict(parc_layers(module))
    hooks = [m.register_forward_pre_hook(
        lambda mod, args, _n=name: sizes.__setitem__(_n, args[0].shape[axis(mod.direction)]))
        for name, m in layers.items()]
    param = next(module.parameters())
    was_training = module.training
    module.eval()
    try:
        # one ParC layer per call (fused paths, e.g. the token mixer's 2-D FFT, skip the
        # layers' forward and so the hooks that record their sizes)
        with torch.no_grad(), parc_impl('direct'):
            module(torch.zeros(1, 3, *size, device=param.device, dtype=param.dtype))
    finally:
        for h in hooks:
            h.remove()
        module.train(was_training)
    for name, m in layers.items():
        if name not in sizes:
            raise RuntimeError(f'ParC layer {name} was not used in the forward at {size}')
        m.resize_(sizes[name])
        if hasattr(m, 'impl'):
            m.impl = impl
    return module

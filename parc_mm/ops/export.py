"""Setting the ParC layers of a model: one impl everywhere (:func:`set_impl`), the explicit
inference mode (:func:`inference_mode`), kernels fixed to an input size (:func:`fix_input_size`)."""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn

from .dispatch import check_impl, parc_impl
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


def inference_mode(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch the explicit inference mode of every ParC module in ``module`` on (and the
    model to eval) or off: in it, eval forwards without autograd keep the kernels' resized
    form, transforms and folded constants per input size instead of deriving them from the
    parameters at every call. The parameters are then constants: ``train()``,
    ``load_state_dict`` and ``resize_`` switch it off again; call it again after editing
    weights through ``.data``. Returns ``module``."""
    if enabled:
        module.eval()
    for m in module.modules():
        if callable(getattr(m, 'set_inference', None)):
            m.set_inference(enabled)
    return module


def _default_forward(module: nn.Module):
    # detectors / segmentors need data samples in forward(); their backbone + neck do not
    return getattr(module, 'extract_feat', module)


def fix_input_size(module: nn.Module, size: Tuple[int, int], impl: str = 'auto',
                   forward=None, inputs=None) -> nn.Module:
    """Prepare a model for export at a fixed input resolution.

    Runs one dummy forward to record every ParC layer's actual map size, permanently
    resamples kernels/PEs to it (kernels of the traced size without any export, e.g. for a
    ``torch.jit.trace`` run by PyTorch) and sets ``impl`` on every ParC layer (``auto``:
    whatever :mod:`parc_mm.ops.dispatch` chooses there, the export form inside an export;
    ``direct``: Concat + Conv; ``gemm``: MatMul). An ONNX export needs none of this: the
    exporter (:mod:`parc_mm.deploy.onnx`) folds the resized kernels into constants itself.

    ``forward``: what to call (default: ``module.extract_feat`` when the module has one, a
    detector or segmentor, else ``module``); ``inputs``: its input (default: zeros of
    ``(1, 3, *size)``). Every submodule keeps its own train / eval mode.
    """
    sizes = {}
    layers = dict(parc_layers(module))
    hooks = [m.register_forward_pre_hook(
        lambda mod, args, _n=name: sizes.__setitem__(_n, args[0].shape[axis(mod.direction)]))
        for name, m in layers.items()]
    param = next(module.parameters())
    modes = {m: m.training for m in module.modules()}
    module.eval()
    fn = forward if forward is not None else _default_forward(module)
    if inputs is None:
        inputs = torch.zeros(1, 3, *size, device=param.device, dtype=param.dtype)
    try:
        # one ParC layer per call (fused paths, e.g. the token mixer's 2-D FFT, skip the
        # layers' forward and so the hooks that record their sizes)
        with torch.no_grad(), parc_impl('direct'):
            fn(*inputs) if isinstance(inputs, tuple) else fn(inputs)
    finally:
        for h in hooks:
            h.remove()
        for m, mode in modes.items():  # not module.train(): it would reset every child
            m.training = mode
    for name, m in layers.items():
        if name not in sizes:
            raise RuntimeError(f'ParC layer {name} was not used in the forward at {size}')
        m.resize_(sizes[name])
        if hasattr(m, 'impl'):
            m.impl = impl
    return module

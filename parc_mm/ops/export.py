"""Preparing a model with ParC layers for deployment: one impl everywhere, kernels fixed to
an input size (no interpolation in the exported graph)."""
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


def fix_input_size(module: nn.Module, size: Tuple[int, int], impl: str = 'direct',
                   forward=None, inputs=None) -> nn.Module:
    """Prepare a model for export at a fixed input resolution.

    Runs one dummy forward to record every ParC layer's actual map size, permanently
    resamples kernels/PEs to it (so no interpolation is traced) and selects ``impl``
    (``direct`` exports to plain ONNX Pad-free Concat+Conv; ``gemm`` to MatMul).

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


# What a portable ParC graph must not hold: the FFT (DFT runs only in few runtimes and slower),
# attention (a Softmax followed by a product), the eager non-finite guard (IsNaN / IsInf, and
# the Where they select with). Resize is fine on activations (an FPN's upsampling) but not on
# weights: a kernel resized at run time has a shape the exporter and runtimes do not know
# ("kernel of unknown shape"). A Where on index constants (an exporter's decomposition of
# adaptive pooling) is fine.
NON_PORTABLE_OPS = ('DFT', 'Softmax', 'IsNaN', 'IsInf')


def onnx_input(path: str):
    """``(name, dims)`` of an ONNX file's (first) input: the shape it was traced with."""
    import onnx
    inp = onnx.load(path).graph.input[0]
    return inp.name, [d.dim_value for d in inp.type.tensor_type.shape.dim]


def onnx_op_report(path: str) -> dict:
    """``{'ops': {op_type: count}, 'non_portable': [...]}`` of an exported ONNX file;
    ``non_portable`` also names a ``Resize`` of a weight (not of the input's activations), a
    ``Reshape`` of a weight to a shape computed from the input (a kernel of unknown shape),
    and a ``Where`` selecting by an IsNaN / IsInf test (the non-finite guard's form). A
    ``Softmax`` counts when a product follows it (attention), not as a head's scores."""
    import collections

    import onnx
    graph = onnx.load(path).graph
    ops = collections.Counter(n.op_type for n in graph.node)
    dep = {i.name for i in graph.input} - {t.name for t in graph.initializer}
    for node in graph.node:  # topologically sorted: what is computed from the inputs
        if any(i in dep for i in node.input):
            dep.update(node.output)
    consumers = collections.defaultdict(list)
    for node in graph.node:
        for i in node.input:
            consumers[i].append(node)
    nonfinite = set()  # what is computed from an IsNaN / IsInf test
    for node in graph.node:
        if node.op_type in ('IsNaN', 'IsInf') or any(i in nonfinite for i in node.input):
            nonfinite.update(node.output)

    def feeds_product(name: str, hops: int = 2) -> bool:
        for c in consumers[name]:
            if c.op_type in ('MatMul', 'Gemm', 'Einsum'):
                return True
            if hops and c.op_type in ('Cast', 'Dropout', 'Identity') and \
                    any(feeds_product(o, hops - 1) for o in c.output):
                return True
        return False

    bad = {op for op in ops if op in NON_PORTABLE_OPS and op != 'Softmax'}
    # a Softmax is attention when a product of its weights follows; a head's scores are not
    if any(n.op_type == 'Softmax' and any(feeds_product(o) for o in n.output)
           for n in graph.node):
        bad.add('Softmax')
    if any(n.op_type == 'Resize' and n.input and n.input[0] not in dep for n in graph.node):
        bad.add('Resize of a weight')
    if any(n.op_type == 'Reshape' and len(n.input) > 1 and n.input[0] not in dep
           and n.input[1] in dep for n in graph.node):
        bad.add('Reshape of a weight by the input')
    if any(n.op_type == 'Where' and n.input and n.input[0] in nonfinite for n in graph.node):
        bad.add('Where on a non-finite test')
    return dict(ops=dict(sorted(ops.items())), non_portable=sorted(bad))

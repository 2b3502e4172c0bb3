"""The ``torch.export`` exporter: the program ExecuTorch and LiteRT are made from.

The model is prepared as for ONNX (:func:`parc_mm.deploy.prepare.prepare`); inside
``torch.export`` :mod:`parc_mm.ops.dispatch` takes each layer's export form, as it does in an
ONNX export. What differs is the constants: an ONNX export by tracing computes the tensors
derived from parameters only (circulant matrices, resized kernels, the position embedding's
folded constant) outside the trace, but ``torch.export`` traces them, so a runtime would
rebuild every circulant on every call (``arange``, ``remainder``, ``index``, outside the
accelerated delegate). :func:`fold_constants` evaluates every node that depends on parameters
and constants only and holds its value as a constant of the program (ExecuTorch's constant
propagation); :func:`export_program` always applies it.
"""
from __future__ import annotations

import collections
from typing import Dict, List, Tuple

import torch
import torch.nn as nn

# what building a circulant / Toeplitz matrix from a kernel traces into: none may remain in a
# folded program
BUILD_OPS = ('arange', 'remainder', 'index')


def fold_constants(program):
    """``program`` (a ``torch.export.ExportedProgram``) with every parameter-only node
    replaced by its value, held as a constant tensor."""
    try:
        from executorch.exir.passes.constant_prop_pass import constant_prop_pass
    except ImportError:
        raise RuntimeError('folding a torch.export program needs ExecuTorch\'s constant '
                           'propagation: pip install "parc_mm[executorch]"') from None
    # functional form first: an in-place write (Swin's shift mask is built by slice
    # assignments into a fresh tensor) would otherwise mutate a folded constant
    program = constant_prop_pass(program.run_decompositions({}))
    spec = {s.arg.name: s.target for s in program.graph_signature.input_specs
            if s.target in program.constants}
    for node in program.graph.nodes:
        if node.op != 'placeholder' or node.name not in spec:
            continue
        value = program.constants[spec[node.name]]
        if not torch.is_tensor(value):
            continue
        # A value computed from parameters that require grad requires grad itself: the
        # program's module can hold it only once detached. Standard strides: a folded
        # (1, C, n, 1) keeps strides such as (C*n, n, 1, n), which ExecuTorch reads as
        # another dim order (a wrong result in XNNPACK, refused by its portable kernels).
        value = value.detach().clone(memory_format=torch.contiguous_format)
        program.constants[spec[node.name]] = value
        fake = node.meta.get('val')
        if fake is not None and hasattr(fake, 'fake_mode'):
            node.meta['val'] = fake.fake_mode.from_tensor(value, static_shapes=True)
            node.meta['val'].constant = value
    return program


def export_program(module: nn.Module, inputs: Tuple[torch.Tensor, ...]):
    """``torch.export`` of ``module(*inputs)`` (prepared as every export route prepares it),
    its parameter-derived tensors folded into constants (:func:`fold_constants`)."""
    from parc_mm.deploy.prepare import prepare
    prepare(module)
    with torch.no_grad():
        program = torch.export.export(module, tuple(inputs))
    return fold_constants(program)


def _op_name(node) -> str:
    """A call's op without ``aten.`` and the overload: ``arange``, ``bmm``, ..."""
    return getattr(node.target, '__name__', str(node.target)).split('.')[0]


def program_ops(program) -> Dict[str, int]:
    """How many nodes of each op the program holds, most frequent first."""
    counts: Dict[str, int] = collections.Counter(
        _op_name(n) for n in program.graph.nodes if n.op == 'call_function')
    return {name: k for name, k in counts.most_common()
            if not name.startswith('_assert')}  # (export's own metadata checks, no compute)


def rebuilt_per_call(program) -> List[str]:
    """The ops of :data:`BUILD_OPS` that ``program`` computes without its input (from
    parameters and constants only, i.e. again on every call): none once folded. The same ops
    on the input (a gather of tokens) are the model's own and not counted."""
    signature = program.graph_signature
    users = set(signature.user_inputs)
    on_input = set()
    for node in program.graph.nodes:
        if (node.op == 'placeholder' and node.name in users) or any(
                a in on_input for a in node.all_input_nodes):
            on_input.add(node)
    found = {_op_name(n) for n in program.graph.nodes
             if n.op == 'call_function' and n not in on_input}
    return [o for o in BUILD_OPS if o in found]


__all__ = ['BUILD_OPS', 'export_program', 'fold_constants', 'program_ops', 'rebuilt_per_call']

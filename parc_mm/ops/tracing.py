"""Where a ParC call runs: inside torch.compile, a TorchScript trace, an ONNX export or
``torch.export``. What is chosen there is :mod:`.dispatch`'s business."""
from __future__ import annotations

import contextlib

import torch


def compiling() -> bool:
    """Inside torch.compile tracing, TorchScript tracing or scripting, or an export."""
    compiler = getattr(torch, 'compiler', None)
    if compiler is not None and compiler.is_compiling():
        return True
    return torch.jit.is_tracing() or torch.jit.is_scripting() or exporting()


def exporting() -> bool:
    """Inside an export (``torch.onnx.export`` with either exporter, ``torch.export``,
    ``torch.jit.trace``): the graph must hold exportable implementations only, no host-side
    checks, and kernels of static shape."""
    compiler = getattr(torch, 'compiler', None)
    is_exporting = getattr(compiler, 'is_exporting', None)
    if is_exporting is not None and is_exporting():
        return True
    onnx = getattr(torch, 'onnx', None)
    if onnx is not None and getattr(onnx, 'is_in_onnx_export', lambda: False)():
        return True
    return torch.jit.is_tracing()


def exporting_graph() -> bool:
    """Inside an export for another runtime (``torch.onnx.export``, ``torch.export``), not a
    plain ``torch.jit.trace`` (whose graph PyTorch itself runs): only implementations that
    every runtime runs may enter the graph."""
    compiler = getattr(torch, 'compiler', None)
    is_exporting = getattr(compiler, 'is_exporting', None)
    if is_exporting is not None and is_exporting():
        return True
    onnx = getattr(torch, 'onnx', None)
    return onnx is not None and getattr(onnx, 'is_in_onnx_export', lambda: False)()


def exporting_program() -> bool:
    """Inside ``torch.export`` (what ExecuTorch and LiteRT are lowered from; also the ONNX
    dynamo exporter's first step)."""
    compiler = getattr(torch, 'compiler', None)
    is_exporting = getattr(compiler, 'is_exporting', None)
    return bool(is_exporting is not None and is_exporting())


def tracing_onnx() -> bool:
    """Inside an ONNX export by TorchScript tracing (``torch.onnx.export(dynamo=False)``,
    mmdeploy): the graph's weights are constants, and tensors computed outside the trace
    (:func:`untraced`) enter it as constants too. Not under a plain ``torch.jit.trace``,
    whose module keeps live parameters (a later weight write must still reach the output)."""
    onnx = getattr(torch, 'onnx', None)
    return torch._C._get_tracing_state() is not None and onnx is not None and \
        onnx.is_in_onnx_export()


@contextlib.contextmanager
def untraced():
    """Suspend TorchScript tracing: what is computed inside becomes a constant of the trace
    (for values that depend on parameters only, e.g. folded kernels)."""
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        with torch.no_grad():
            yield
    finally:
        torch._C._set_tracing_state(state)



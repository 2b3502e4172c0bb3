"""What an exported graph holds: the op report (portability) and the int8 graph check.

Both read the ONNX file itself, whichever route wrote it (:mod:`parc_mm.deploy.onnx`,
mmdeploy), so the export command's record, the deploy record, ``tools/deploy/op_report.py``
and the tests judge the same thing.
"""
from __future__ import annotations

from typing import Dict, List, Optional

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


def _consts(model) -> Dict[str, tuple]:
    """Shapes of a graph's constants: its initializers and its ``Constant`` nodes (the
    TorchScript exporter writes folded tensors as either)."""
    out = {t.name: tuple(t.dims) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == 'Constant':
            for a in n.attribute:
                if a.name == 'value':
                    out[n.output[0]] = tuple(a.t.dims)
    return out


def _parc_form(node, weight_shape) -> Optional[tuple]:
    """``(form, constant shape)`` when ``node`` is one of ParC's global depthwise convs: a
    Conv with groups = channels and a kernel longer than 3 along one axis only
    (``'conv'``), or a MatMul with a constant (C, n, n) circulant / Toeplitz matrix on
    either side (``'gemm'``); None otherwise."""
    if node.op_type == 'Conv':
        groups = next((a.i for a in node.attribute if a.name == 'group'), 1)
        ws = weight_shape(node.input[1])
        if ws is not None and len(ws) == 4 and groups > 1 and ws[1] == 1 and \
                max(ws[2], ws[3]) > 3 and min(ws[2], ws[3]) == 1:
            return 'conv', tuple(int(v) for v in ws)
    elif node.op_type in ('MatMul', 'Gemm'):
        for ws in (weight_shape(i) for i in node.input[:2]):
            if ws is not None and len(ws) == 3 and ws[1] == ws[2] > 1 and ws[0] > 1:
                return 'gemm', tuple(int(v) for v in ws)
    return None


def _graph(path: str):
    import onnx
    model = onnx.load(path)
    producers = {o: n for n in model.graph.node for o in n.output}
    consts = _consts(model)

    def weight_shape(name: str):
        n = producers.get(name)
        if n is not None and n.op_type == 'DequantizeLinear':
            name = n.input[0]
        return consts.get(name)

    return model, producers, weight_shape


def parc_nodes(path: str) -> List[tuple]:
    """ParC's global convs in an exported graph, in graph order: ``(form, constant shape)``
    each (see :func:`_parc_form`). Two routes that export the same model the same way give
    the same list."""
    model, _, weight_shape = _graph(path)
    return [f for f in (_parc_form(n, weight_shape) for n in model.graph.node) if f]


def int8_graph_check(path: str) -> dict:
    """Which Conv / MatMul nodes of a QDQ graph take quantized (DequantizeLinear) inputs,
    and how many of them are ParC's global convs (:func:`parc_nodes`); ``float_parc``
    lists ParC layers left in float."""
    model, producers, weight_shape = _graph(path)

    def dequantized(name: str) -> bool:
        n = producers.get(name)
        return n is not None and n.op_type == 'DequantizeLinear'

    counts = dict(conv=0, conv_int8=0, matmul=0, matmul_int8=0, parc=0, parc_int8=0)
    float_parc = []
    for n in model.graph.node:
        if n.op_type not in ('Conv', 'MatMul', 'Gemm'):
            continue
        key = 'conv' if n.op_type == 'Conv' else 'matmul'
        q = all(dequantized(i) for i in n.input[:2])
        counts[key] += 1
        counts[key + '_int8'] += int(q)
        if _parc_form(n, weight_shape):
            counts['parc'] += 1
            counts['parc_int8'] += int(q)
            if not q:
                float_parc.append(n.name)
    return dict(counts, float_parc=float_parc)


__all__ = ['NON_PORTABLE_OPS', 'int8_graph_check', 'onnx_input', 'onnx_op_report',
           'parc_nodes']

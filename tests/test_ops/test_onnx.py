"""ONNX export at a fixed resolution: kernels precomputed, ONNX Runtime output == PyTorch."""
import pytest
import torch
import torch.nn as nn

from parc_mm.models.layers import ParCConv2d, ParCHW
from parc_mm.ops import fix_input_size

onnx = pytest.importorskip('onnx')
ort = pytest.importorskip('onnxruntime')


class TinyParCNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.parc = ParCHW(8, base_size=14)  # trained at 28x28 input -> 14x14 maps
        self.dense = ParCHW(8, base_size=7, dense=True)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        x = self.parc(self.stem(x))
        return self.dense(self.pool(x))


@pytest.mark.parametrize('impl', ['direct', 'gemm'])
@pytest.mark.parametrize('size', [(28, 28), (22, 34)])
def test_onnx_roundtrip(tmp_path, impl, size):
    torch.manual_seed(0)
    model = TinyParCNet().eval()
    x = torch.randn(2, 3, *size)
    ref = model(x)
    fix_input_size(model, size, impl=impl)
    # kernels now have the map's length: nothing is interpolated in the graph
    assert model.parc.parc_h.weight.shape[2] == (size[0] + 1) // 2
    assert model.dense.parc_w.weight.shape[3] == (size[1] + 1) // 4
    torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)
    path = str(tmp_path / 'parc.onnx')
    torch.onnx.export(model, (x, ), path, input_names=['x'], output_names=['y'],
                      opset_version=17, dynamo=False)
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    ops = {n.op_type for n in graph.graph.node}
    assert 'Resize' not in ops, ops
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    (out, ) = sess.run(None, {'x': x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-4, atol=1e-5)


def test_fix_input_size_reports_unused_layer():
    class WithUnused(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.used = ParCConv2d(4, 'H', 8)
            self.unused = ParCConv2d(4, 'W', 8)

        def forward(self, x):
            return self.used(self.conv(x))

    model = WithUnused()
    with pytest.raises(RuntimeError, match='unused'):
        fix_input_size(model, (8, 8))


def test_parc_net_xs_exports_at_a_fixed_size(tmp_path):
    """ParC-Net's standalone position embeddings are fixed too: the whole backbone exports
    without a Resize node and ONNX Runtime matches PyTorch at a non-base size."""
    from parc_mm.models import ParCNet
    torch.manual_seed(0)
    model = ParCNet('xs').eval()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        ref = model(x)[0]
    fix_input_size(model, (96, 128), impl='direct')
    pe = model.layers[2][1].global_rep[0].branch_wh.pe.weight
    assert pe.shape == (1, 48, 1, 16)  # W of layer 3 at 128 input
    path = str(tmp_path / 'parcnet.onnx')
    torch.onnx.export(model, (x, ), path, input_names=['x'], output_names=['y'],
                      opset_version=17, dynamo=False)
    graph = onnx.load(path)
    assert 'Resize' not in {n.op_type for n in graph.graph.node}
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    (out, ) = sess.run(None, {'x': x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-4, atol=1e-4)


def _data_dependent(graph, input_name='x'):
    """Names of the tensors computed from the graph input (not from weights / constants)."""
    dep = {input_name}
    for node in graph.node:  # ONNX nodes are topologically sorted
        if any(i in dep for i in node.input):
            dep.update(node.output)
    return dep


@pytest.mark.parametrize('impl', ['direct', 'gemm'])
@pytest.mark.parametrize('family', ['vit', 'swin'])
def test_parc_vit_and_swin_export_as_pure_convnets(tmp_path, family, impl):
    """Exported (opset 17), ParC-ViT / ParC-Swin hold no attention: no Softmax and no product
    of two input-dependent tensors (the QK^T and AV of attention); every MatMul has a weight
    (or a circulant matrix built from one) on one side. ONNX Runtime matches PyTorch."""
    from parc_mm.models import ParCSwin, ParCViT
    torch.manual_seed(0)
    if family == 'vit':
        model = ParCViT(arch=dict(embed_dims=32, num_layers=3, num_heads=2,
                                  feedforward_channels=64), out_type='featmap',
                        out_indices=(1, 2))
    else:
        model = ParCSwin(arch=dict(embed_dims=16, depths=[2, 2, 2, 1], num_heads=[1, 2, 2, 4]),
                         out_indices=(0, 1, 2, 3))
    model.eval()
    size = (64, 96)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        ref = model(x)
    fix_input_size(model, size, impl=impl)
    path = str(tmp_path / f'{family}.onnx')
    torch.onnx.export(model, (x, ), path, input_names=['x'], opset_version=17, dynamo=False)
    graph = onnx.load(path).graph
    ops = [n.op_type for n in graph.node]
    assert 'Softmax' not in ops and 'Resize' not in ops
    dep = _data_dependent(graph)
    token_products = [n.name for n in graph.node if n.op_type in ('MatMul', 'Gemm', 'Einsum')
                      and sum(i in dep for i in n.input) >= 2]
    assert not token_products, token_products
    assert ops.count('MatMul') >= 3  # the Linear layers are there (the check sees MatMuls)
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outs = sess.run(None, {'x': x.numpy()})
    assert len(outs) == len(ref)
    for o, r in zip(outs, ref):
        torch.testing.assert_close(torch.from_numpy(o), r, rtol=1e-4, atol=1e-4)


def test_attention_is_detected_by_the_export_check(tmp_path):
    """The check above is not vacuous: mmpretrain's own ViT fails it."""
    from mmpretrain.models import VisionTransformer
    model = VisionTransformer(arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                                        feedforward_channels=64), img_size=64)
    model.eval()
    path = str(tmp_path / 'vit.onnx')
    torch.onnx.export(model, (torch.randn(1, 3, 64, 64), ), path, input_names=['x'],
                      opset_version=17, dynamo=False)
    graph = onnx.load(path).graph
    dep = _data_dependent(graph)
    assert 'Softmax' in [n.op_type for n in graph.node]
    assert [n for n in graph.node if n.op_type == 'MatMul' and sum(i in dep for i in n.input) >= 2]


def _family(name):
    from parc_mm.models import (
        ParCConvNeXt,
        ParCMobileNetV2,
        ParCNet,
        ParCNetV2,
        ParCResNet,
        ParCSwin,
        ParCViT,
    )
    return {
        'convnext': lambda: ParCConvNeXt(arch='atto', parc_cfg=dict(blocks='all')),
        'resnet': lambda: ParCResNet(depth=50),
        'mv2': lambda: ParCMobileNetV2(widen_factor=0.5),
        'parcnet': lambda: ParCNet('xs'),
        'vit': lambda: ParCViT(arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                         feedforward_channels=64), out_type='featmap'),
        'swin': lambda: ParCSwin(arch=dict(embed_dims=16, depths=[2, 2, 2, 1],
                                           num_heads=[1, 2, 2, 4])),
        'parcnetv2': lambda: ParCNetV2(arch=dict(depths=[1, 1, 1, 1],
                                                 channels=[16, 32, 64, 128])),
    }[name]()


@pytest.mark.parametrize('dynamo', [False, True], ids=['torchscript', 'dynamo'])
@pytest.mark.parametrize('family', ['convnext', 'resnet', 'mv2', 'parcnet', 'vit', 'swin',
                                    'parcnetv2'])
def test_every_family_exports_with_defaults(tmp_path, family, dynamo):
    """``torch.onnx.export`` of a model built with defaults (``impl='auto'``, no
    ``fix_input_size``), at a size other than the base one, with either of torch's exporters:
    ``auto`` takes the exportable direct form, the guard stays out, the kernels are constants
    of the traced size; ONNX Runtime equals PyTorch and the graph is portable."""
    if dynamo:
        pytest.importorskip('onnxscript')
    from parc_mm.deploy.report import onnx_op_report
    torch.manual_seed(0)
    model = _family(family).eval()
    x = torch.randn(1, 3, 96, 160)
    with torch.no_grad():
        ref = model(x)
    ref = list(ref) if isinstance(ref, (tuple, list)) else [ref]
    path = str(tmp_path / f'{family}.onnx')
    torch.onnx.export(model, (x, ), path, input_names=['x'], opset_version=17, dynamo=dynamo)
    report = onnx_op_report(path)
    assert report['non_portable'] == [], report
    assert 'Conv' in report['ops']
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outs = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    assert len(outs) == len(ref)
    for o, r in zip(outs, ref):
        torch.testing.assert_close(torch.from_numpy(o), r, rtol=1e-4, atol=1e-4)


def test_baseline_attention_is_reported_non_portable(tmp_path):
    from mmpretrain.models import VisionTransformer

    from parc_mm.deploy.report import onnx_op_report
    model = VisionTransformer(arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                                        feedforward_channels=64), img_size=64)
    model.eval()  # (mmpretrain's train() returns None)
    path = str(tmp_path / 'vit.onnx')
    torch.onnx.export(model, (torch.randn(1, 3, 64, 64), ), path, opset_version=17,
                      dynamo=False)
    assert 'Softmax' in onnx_op_report(path)['non_portable']


def test_fix_input_size_keeps_each_modules_mode_and_takes_detectors():
    """An eval model inside a fresh (training-mode) wrapper stays in eval; a detector's
    forward needs data samples, so its feature extractor is what runs."""
    torch.manual_seed(0)
    inner = TinyParCNet().eval()
    wrapper = nn.Sequential(inner)
    assert wrapper.training
    fix_input_size(wrapper, (28, 28))
    assert wrapper.training and not inner.training and not inner.parc.parc_h.training

    class Detector(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = TinyParCNet()

        def forward(self, inputs, data_samples, mode='tensor'):
            raise AssertionError('needs data samples')

        def extract_feat(self, x):
            return self.backbone(x)

    det = Detector()
    fix_input_size(det, (22, 34))
    assert det.backbone.parc.parc_h.weight.shape[2] == 11


@pytest.mark.parametrize('dynamo', [False, True])
def test_a_dynamic_height_or_width_is_refused_with_the_per_size_fix(tmp_path, dynamo):
    """A ParC graph is valid only at its traced size: dynamic H / W is refused before
    tracing (both exporters); a dynamic batch exports and runs at another batch size."""
    from parc_mm.models import ParCConvNeXt
    if dynamo:
        pytest.importorskip('onnxscript')
    model = ParCConvNeXt(arch=dict(depths=[1, 1, 1, 1], channels=[8, 16, 24, 32]),
                         parc_cfg=dict(blocks='all')).eval()
    x = torch.randn(1, 3, 64, 64)
    path = str(tmp_path / 'm.onnx')
    if dynamo:
        h = torch.export.Dim('h', min=32, max=128)
        kw = dict(dynamic_shapes=({2: h}, ))
    else:
        kw = dict(input_names=['input'], dynamic_axes={'input': {0: 'b', 2: 'h'}})
    with pytest.raises(ValueError, match='Export once per input size'):
        torch.onnx.export(model, (x, ), path, opset_version=17, dynamo=dynamo, **kw)
    if dynamo:
        return
    torch.onnx.export(model, (x, ), path, opset_version=17, dynamo=False,
                      input_names=['input'], output_names=['out'],
                      dynamic_axes={'input': {0: 'b'}, 'out': {0: 'b'}})
    x3 = torch.randn(3, 3, 64, 64)
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    with torch.no_grad():
        ref = model(x3)
    ref = ref[-1] if isinstance(ref, (tuple, list)) else ref
    got = sess.run(None, {'input': x3.numpy()})[0]
    assert float(abs(torch.from_numpy(got) - ref).max()) < 1e-4
    # a model without ParC layers keeps its dynamic axes
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3), (x, ), path, opset_version=17, dynamo=False,
                      input_names=['input'], dynamic_axes={'input': {2: 'h', 3: 'w'}})


def test_a_jit_traced_model_keeps_live_weights():
    """Only an ONNX export folds ParC kernels, embeddings and circulants into constants: a
    plain ``torch.jit.trace`` keeps the parameters live, so a later ``.data`` write (an EMA
    swap, weight surgery) still reaches the traced module's output."""
    from parc_mm.models import ParCViT
    torch.manual_seed(0)
    model = ParCViT(arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                              feedforward_channels=64), img_size=64, patch_size=16,
                    out_type='featmap')
    model.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        traced = torch.jit.trace(model, (x, ), check_trace=False)
        for p in model.parameters():
            p.data.mul_(1.5)
        ref, got = model(x)[-1], traced(x)[-1]
    assert torch.allclose(ref, got, atol=1e-5)

"""ONNX export at a fixed resolution: kernels precomputed, ONNX Runtime output == PyTorch."""
import pytest
import torch
import torch.nn as nn

from parc_mm.ops import ParCConv2d, ParCHW, fix_input_size

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

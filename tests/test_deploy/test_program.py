"""The torch.export route (ExecuTorch, LiteRT): parameter-derived tensors folded into
constants, the folded program equal to the eager model, and constants ExecuTorch lays out as
PyTorch does."""
import pytest
import torch

pytest.importorskip('executorch')


def _conv(direction, base, channels=6):
    from parc_mm.models.layers.parc import ParCConv2d
    torch.manual_seed(0)
    layer = ParCConv2d(channels, direction, base).eval()
    with torch.no_grad():
        layer.bias.normal_()  # (zero at init: it would hide a wrong constant)
    return layer


SIZES = [(9, 7), (8, 8), (5, 12), (1, 3), (2, 2)]  # odd, even, non-square, tiny


@pytest.mark.parametrize('direction', ['H', 'W'])
@pytest.mark.parametrize('size', SIZES)
def test_folding_leaves_no_circulant_building_and_keeps_the_result(direction, size):
    """Unfolded, torch.export rebuilds every circulant from the kernel on each call (the ops
    below); folded, none is left and the program computes what the layer computes (the
    kernel stored at 4 taps: resized to every size but the base one)."""
    from parc_mm.deploy.prepare import prepare
    from parc_mm.deploy.program import BUILD_OPS, export_program, program_ops, rebuilt_per_call
    layer = _conv(direction, 4)
    x = torch.randn(1, 6, *size)
    with torch.no_grad():
        ref = layer(x)
    raw = torch.export.export(prepare(layer), (x, ))
    n = size[0] if direction == 'H' else size[1]
    if n > 1:  # (a 1-long axis: the conv is a product, nothing to build)
        assert set(rebuilt_per_call(raw)) == set(BUILD_OPS)
    folded = export_program(layer, (x, ))
    assert rebuilt_per_call(folded) == []
    assert not set(BUILD_OPS) & set(program_ops(folded))
    with torch.no_grad():
        assert torch.allclose(folded.module()(x), ref, atol=1e-6, rtol=0)


def test_folded_constants_have_standard_strides():
    """A folded (1, C, n, 1) constant keeps strides such as (C*n, n, 1, n): ExecuTorch reads
    those as another dim order (a wrong result in XNNPACK). Every folded constant is laid out
    as a fresh contiguous tensor."""
    from parc_mm.deploy.program import export_program
    layer = _conv('H', 4)
    program = export_program(layer, (torch.randn(1, 6, 8, 8), ))
    for name, value in program.constants.items():
        want = torch.empty(value.shape).stride()
        assert value.stride() == want, (name, value.shape, value.stride())
        assert not value.requires_grad


@pytest.mark.parametrize('direction', ['H', 'W'])
def test_the_lowered_program_equals_the_layer(tmp_path, direction):
    from parc_mm.deploy import runtimes
    from parc_mm.deploy.program import export_program
    layer = _conv(direction, 4)
    x = torch.randn(1, 6, 8, 8)
    with torch.no_grad():
        ref = layer(x).numpy()
    files = runtimes.convert('executorch', export_program(layer, (x, )), str(tmp_path),
                             list(x.shape))
    net = runtimes.load('executorch', str(tmp_path), files[0], ['out'], threads=1)
    assert runtimes.check(net, x.numpy(), [ref]) < 1e-5


def test_a_route_refuses_the_other_routes_source(tmp_path):
    from parc_mm.deploy import runtimes
    with pytest.raises(TypeError, match='converts a torch.export program'):
        runtimes.convert('executorch', str(tmp_path / 'm.onnx'), str(tmp_path), [1, 3, 8, 8])


def test_folding_a_program_with_in_place_writes():
    """Swin's shift mask is written by slice assignments into a fresh tensor: folded in the
    functional form, not as a constant the program then mutates (which ExecuTorch refuses)."""
    pytest.importorskip('mmpretrain')
    from mmpretrain.models import SwinTransformer

    from parc_mm.deploy import runtimes
    from parc_mm.deploy.prepare import prepare
    from parc_mm.deploy.program import export_program, program_ops
    torch.manual_seed(0)
    net = SwinTransformer(arch=dict(embed_dims=16, depths=[2], num_heads=[2]), img_size=32,
                          window_size=4, out_indices=(0, ))
    prepare(net)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        ref = net(x)[-1]
    program = export_program(net, (x, ))
    assert not {'fill_', 'index_put_', 'copy_'} & set(program_ops(program))
    with torch.no_grad():
        assert torch.allclose(program.module()(x)[-1], ref, atol=1e-6, rtol=0)
    if runtimes.problem('executorch') is None:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            files = runtimes.convert('executorch', program, tmp, list(x.shape))
            net = runtimes.load('executorch', tmp, files[0], ['out'])
            assert runtimes.check(net, x.numpy(), [ref.numpy()]) < 1e-5


def _outside_delegate(program):
    from parc_mm.deploy import runtimes
    graph = runtimes.lower_executorch(program).exported_program().graph
    return {str(n.target).split('.')[-2] for n in graph.nodes
            if n.op == 'call_function' and 'aten' in str(n.target)}


@pytest.mark.parametrize('family', ['convnext', 'swin'])
def test_executorch_runs_parc_inside_its_delegate(family):
    """What the exporter gives ExecuTorch: no circulant building (arange / remainder /
    index), no per-call copies of the constant matrices (expand_copy: a broadcast matmul) and
    no patch-merging gathers outside the XNNPACK delegate."""
    from parc_mm.deploy.prepare import prepare
    from parc_mm.deploy.program import export_program
    from parc_mm.deploy.rank4 import rank4_unfold
    from tests.test_deploy.test_runtimes import _Out
    from tests.test_ops.test_onnx import _family
    torch.manual_seed(0)
    model = prepare(_Out(_family(family)))
    rank4_unfold(model)  # (as the exporter does for ExecuTorch)
    outside = _outside_delegate(export_program(model, (torch.randn(1, 3, 96, 128), )))
    assert not {'arange', 'remainder', 'index', 'expand_copy', 'im2col'} & outside, outside


def test_an_index_of_the_input_is_the_models_own():
    """Only ops computed without the input count as rebuilt per call: a gather of the input
    (tokens, channels) is the model's own computation, not a refused export."""
    from parc_mm.deploy.program import export_program, program_ops, rebuilt_per_call

    class Gather(torch.nn.Module):
        def forward(self, x):
            return x[:, torch.arange(x.shape[1]).flip(0)]

    program = export_program(Gather(), (torch.randn(1, 4, 3, 3), ))
    assert 'index' in program_ops(program) and rebuilt_per_call(program) == []

"""The rank-4 attention the deployment benchmark gives the attention baselines for ncnn: the
same outputs, a graph without tensors of rank > 4, and ncnn runs it."""
import numpy as np
import pytest
import torch

pytest.importorskip('mmpretrain')


def _deit():
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(0)
    net = VisionTransformer(arch='deit-tiny', img_size=32, patch_size=8, out_type='featmap')
    net.eval()  # (its train() returns None)
    return net


def _max_rank(path):
    import onnx
    model = onnx.shape_inference.infer_shapes(onnx.load(path))
    infos = list(model.graph.value_info) + list(model.graph.output)
    ranks = [len(v.type.tensor_type.shape.dim) for v in infos]
    assert len(ranks) > 20  # shape inference reached the graph's tensors
    return max(ranks)


def _swin():
    from mmpretrain.models import SwinTransformer
    torch.manual_seed(0)
    net = SwinTransformer(arch=dict(embed_dims=16, depths=[2, 2], num_heads=[2, 4]),
                          img_size=64, window_size=4, out_indices=(1, ))
    net.eval()
    return net


# (model, input size, layers given the rank-4 attention, patch mergings, the plain graph's
# largest rank: mmpretrain's 5-D qkv split; Swin's 6-D window partition)
MODELS = {'deit': (_deit, 32, 12, 0, 5), 'swin': (_swin, 64, 8, 1, 6)}


def _rank4(net):
    from parc_mm.deploy.rank4 import rank4_attention, rank4_unfold
    return rank4_attention(net), rank4_unfold(net)


@pytest.mark.parametrize('name', list(MODELS))
def test_rank4_forms_keep_the_outputs_and_the_rank(tmp_path, name):
    """DeiT's attention; Swin's shifted windows with their mask, relative position bias and
    patch merging: the same outputs through tensors of rank 4 at most."""
    from parc_mm.deploy.onnx import export_module
    build, size, layers, merges, plain_rank = MODELS[name]
    net = build()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        ref = net(x)[-1]
    export_module(net, (x, ), str(tmp_path / 'plain.onnx'))
    assert _max_rank(str(tmp_path / 'plain.onnx')) == plain_rank
    assert _rank4(net) == (layers, merges)
    with torch.no_grad():
        assert torch.allclose(net(x)[-1], ref, atol=1e-5, rtol=0)
    got = export_module(net, (x, ), str(tmp_path / 'rank4.onnx'))
    assert got['max_abs_diff'] < 1e-4
    assert _max_rank(str(tmp_path / 'rank4.onnx')) == 4


@pytest.mark.parametrize('name', list(MODELS))
def test_rank4_forms_run_in_ncnn(tmp_path, name):
    from parc_mm.deploy import runtimes
    from parc_mm.deploy.onnx import export_module
    if runtimes.problem('ncnn'):
        pytest.skip(runtimes.problem('ncnn'))
    build, size = MODELS[name][:2]
    net = build()
    _rank4(net)
    x = torch.randn(1, 3, size, size)
    got = export_module(net, (x, ), str(tmp_path / 'm.onnx'))
    files = runtimes.convert('ncnn', str(tmp_path / 'm.onnx'), str(tmp_path), list(x.shape))
    out = runtimes.load('ncnn', str(tmp_path), files[0], got['names'])(x.numpy())
    ref = got['outputs'][-1].numpy()
    assert np.abs(np.asarray(out[-1]).reshape(ref.shape) - ref).max() < 1e-3 * max(
        1.0, np.abs(ref).max())


def test_rank4_attention_refuses_training_mode():
    from parc_mm.deploy.rank4 import rank4_attention
    with pytest.raises(ValueError, match='model.eval'):
        net = _deit()
        net.train()
        rank4_attention(net)


@pytest.mark.parametrize('shape,k', [((2, 3, 8, 12), 2), ((1, 5, 9, 7), 2), ((1, 4, 9, 9), 3),
                                     ((1, 2, 2, 2), 2)])
def test_rank4_unfold_equals_unfold(shape, k):
    from parc_mm.deploy.rank4 import Rank4Unfold
    unfold = torch.nn.Unfold(kernel_size=k, stride=k)
    x = torch.randn(shape)
    assert torch.equal(Rank4Unfold(unfold)(x), unfold(x))


def test_rank4_unfold_swaps_patch_merging_only():
    from mmpretrain.models.utils import PatchMerging

    from parc_mm.deploy.rank4 import Rank4Unfold, rank4_unfold
    torch.manual_seed(0)
    net = torch.nn.Sequential(PatchMerging(8, 16),
                              torch.nn.Unfold(kernel_size=3, stride=1, padding=1))
    x = torch.randn(1, 36, 8)
    with torch.no_grad():
        ref = net[0](x, (6, 6))[0]
    assert rank4_unfold(net) == 1
    assert isinstance(net[0].sampler, Rank4Unfold) and type(net[1]) is torch.nn.Unfold
    with torch.no_grad():
        out, size = net[0](x, (6, 6))
    assert size == (3, 3) and torch.equal(out, ref)

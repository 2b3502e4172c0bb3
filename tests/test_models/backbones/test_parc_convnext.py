"""ParC-ConvNeXt: official layout, parameter counts, equivalence with an independent reference."""
import pytest
import torch

from parc_mm.models import ParCConvNeXt
from parc_mm.models.converters import convert_convnext, convnext_to_parc
from tests.reference import fixture, n_params, official_convnext, random_state_dict


def test_param_count_xt_matches_official():
    m = ParCConvNeXt(arch='xt')
    head = 384 * 1000 + 1000
    assert n_params(m) + head == fixture('parc_convnext_xt')['params'] == 7412824
    det = ParCConvNeXt(arch='xt', out_indices=[0, 1, 2, 3], gap_before_final_norm=False)
    assert n_params(det) == fixture('det_convnext_gcc_xt')['params']


def test_param_counts_tiny_small():
    # reported in the configs README: T 28,538,056 and S 50,124,232 (with a 1000-class head)
    assert n_params(ParCConvNeXt(arch='tiny')) + 768 * 1000 + 1000 == 28538056
    assert n_params(ParCConvNeXt(arch='small')) + 768 * 1000 + 1000 == 50124232


def test_official_classification_weights_give_official_outputs():
    src = random_state_dict('parc_convnext_xt')
    sd, rep = convert_convnext(src)
    assert not rep.unused and len(rep.converted) == len(src)
    model = ParCConvNeXt(arch='xt').eval()
    bb = {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}
    model.load_state_dict(bb, strict=True)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feat = model(x)[0]
        ours = torch.nn.functional.linear(feat, sd['head.fc.weight'], sd['head.fc.bias'])
        ref = official_convnext(src, x)[0]
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_no_parc_equals_mmpretrain_convnext():
    from mmpretrain.models import ConvNeXt
    torch.manual_seed(0)
    ref = ConvNeXt(arch=dict(depths=[2, 2, 3, 2], channels=[16, 32, 64, 128]),
                   out_indices=[0, 1, 2, 3], gap_before_final_norm=False)
    ref.eval()  # mmpretrain's ConvNeXt.train() returns None
    ours = ParCConvNeXt(arch=dict(depths=[2, 2, 3, 2], channels=[16, 32, 64, 128]),
                        parc_cfg=dict(blocks='none'), out_indices=[0, 1, 2, 3],
                        gap_before_final_norm=False).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 80)
    for a, b in zip(ours(x), ref(x)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize('size', [(64, 64), (96, 160), (67, 45), (32, 32)])
def test_output_shapes(size):
    m = ParCConvNeXt(arch=dict(depths=[1, 1, 3, 1], channels=[16, 32, 64, 128]),
                     parc_cfg=dict(blocks='all'), out_indices=[0, 1, 2, 3],
                     gap_before_final_norm=False).eval()
    outs = m(torch.randn(1, 3, *size))
    h, w = size
    for i, o in enumerate(outs):
        # stem: floor(h/4); each downsample floor(/2)
        eh, ew = h // 4, w // 4
        for _ in range(i):
            eh, ew = eh // 2, ew // 2
        assert o.shape == (1, 16 * 2**i, eh, ew)
    cls = ParCConvNeXt(arch='xt').eval()
    assert cls(torch.randn(2, 3, 224, 224))[0].shape == (2, 384)


def test_placement():
    m = ParCConvNeXt(arch='xt')
    assert m.parc_blocks == [[], [], [6, 7, 8], [2]]
    assert m.parc_base_sizes == [56, 28, 14, 7]
    s = ParCConvNeXt(arch='small', parc_cfg=dict(blocks=[[], [-1], [0], []]))
    assert s.parc_blocks == [[], [2], [0], []]
    assert 'depthwise_conv.parc_h' in dict(s.stages[1][2].named_modules())
    assert ParCConvNeXt(arch='small').parc_blocks[2] == list(range(18, 27))


def test_frozen_stages():
    m = ParCConvNeXt(arch='xt', frozen_stages=3, out_indices=[0, 1, 2, 3])
    m.train()
    for i in range(3):
        assert not any(p.requires_grad for p in m.stages[i].parameters())
        assert not any(p.requires_grad for p in m.downsample_layers[i].parameters())
        assert not m.stages[i].training
    assert all(p.requires_grad for p in m.stages[3].parameters())
    # ParC blocks inside frozen stage 3 (index 2) are frozen too
    assert not m.stages[2][8].depthwise_conv.parc_h.weight.requires_grad


def test_errors():
    with pytest.raises(ValueError, match='Unknown ParCConvNeXt arch'):
        ParCConvNeXt(arch='huge-ish')
    with pytest.raises(ValueError, match='Unknown parc_cfg blocks'):
        ParCConvNeXt(parc_cfg=dict(blocks='some'))
    with pytest.raises(ValueError, match='out of range'):
        ParCConvNeXt(parc_cfg=dict(blocks=[[], [], [9], []]))
    with pytest.raises(ValueError, match='one list per stage'):
        ParCConvNeXt(parc_cfg=dict(blocks=[[1]]))


def test_convnext_to_parc_init_reports_replaced_convs():
    from mmpretrain.models import ConvNeXt
    src = ConvNeXt(arch=dict(depths=[3, 3, 9, 3], channels=[48, 96, 192, 384]))
    sd = {'backbone.' + k: v for k, v in src.state_dict().items()}
    out, rep = convnext_to_parc(sd, arch='xt')
    # the 4 dw 7x7 convs that ParC replaces are reported, not silently dropped
    assert sorted(rep.unused) == sorted(
        f'backbone.stages.{s}.{b}.depthwise_conv.{p}'
        for s, b in ((2, 6), (2, 7), (2, 8), (3, 2)) for p in ('weight', 'bias'))
    assert len(rep.missing) == 4 * 6  # parc_h/parc_w weight, bias, pe per block
    model = ParCConvNeXt(arch='xt')
    model.load_state_dict({k[9:]: v for k, v in out.items()}, strict=True)
    torch.testing.assert_close(model.stages[2][5].depthwise_conv.weight,
                               src.stages[2][5].depthwise_conv.weight)


def test_timm_layout_converts():
    from mmpretrain.models import ConvNeXt
    src = ConvNeXt(arch=dict(depths=[3, 3, 9, 3], channels=[48, 96, 192, 384]))
    ours = src.state_dict()
    # write the same weights in timm's layout, then convert back
    timm = {}
    for k, v in ours.items():
        k2 = (k.replace('downsample_layers.0.', 'stem.')
              .replace('depthwise_conv', 'conv_dw').replace('pointwise_conv', 'mlp.fc'))
        if k.startswith('downsample_layers.') and not k.startswith('downsample_layers.0.'):
            i = k.split('.')[1]
            k2 = k.replace(f'downsample_layers.{i}.', f'stages.{i}.downsample.')
        elif k.startswith('stages.'):
            s, b = k.split('.')[1:3]
            k2 = k2.replace(f'stages.{s}.{b}.', f'stages.{s}.blocks.{b}.')
        elif k.startswith('norm3.'):
            k2 = k.replace('norm3.', 'head.norm.')
        timm[k2] = v
    sd, rep = convert_convnext(timm)
    assert not rep.unused
    assert {k[9:] for k in sd} == set(ours)


def test_kernel_base_mismatch_is_resized_on_load():
    src = ParCConvNeXt(arch='xt', img_size=256)  # kernels 16 / 8
    dst = ParCConvNeXt(arch='xt')  # kernels 14 / 7
    dst.load_state_dict(src.state_dict())
    k = dst.stages[2][6].depthwise_conv.parc_h.weight
    assert k.shape == (96, 1, 14, 1)

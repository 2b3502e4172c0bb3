"""ParC-ResNet: official layout, parameter count, equivalence with an independent reference."""
import pytest
import torch

from parc_mm.models import ParCResNet
from parc_mm.models.converters import convert_resnet, load_report, resnet_to_parc
from tests.reference import fixture, n_params, official_resnet50, random_state_dict, to_f64


def test_param_count_matches_official():
    assert n_params(ParCResNet(depth=50)) + 2048 * 1000 + 1000 == \
        fixture('parc_res50')['params'] == 23737640
    det = ParCResNet(depth=50, out_indices=(0, 1, 2, 3))
    assert n_params(det) == fixture('det_resnet50_gcc')['params']


def test_dense_parc_in_paper_blocks():
    m = ParCResNet(depth=50)
    assert m.parc_blocks == [[], [], [3, 4, 5], [2]]
    assert m.layer3[3].conv2.parc_h.weight.shape == (128, 128, 14, 1)
    assert m.layer4[2].conv2.parc_w.weight.shape == (256, 256, 1, 7)
    with pytest.raises(ValueError, match='downsamples'):
        ParCResNet(depth=50, parc_cfg=dict(blocks=[[], [0], [], []]))
    with pytest.raises(ValueError, match='Bottleneck'):
        ParCResNet(depth=18)


def test_official_classification_weights_give_official_outputs():
    src = random_state_dict('parc_res50')
    sd, rep = convert_resnet(src)
    assert not rep.unused
    model = ParCResNet(depth=50).eval()
    rep = load_report(model, sd, 'backbone.')
    assert not (rep.missing or rep.mismatched), rep.summary()
    model, src = to_f64(model, src)  # random BN statistics: activations reach ~1e6
    x = torch.randn(1, 3, 224, 224, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feat = model(x)[0].mean([-2, -1])
        ours = torch.nn.functional.linear(feat, src['fc.weight'], src['fc.bias'])
        ref = official_resnet50(src, x)[0]
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-6)


def test_frozen_stages_and_norm_eval():
    m = ParCResNet(depth=50, frozen_stages=3, norm_eval=True, out_indices=(0, 1, 2, 3))
    m.train()
    assert not any(p.requires_grad for p in m.layer3.parameters())
    assert not m.layer3[4].conv2.parc_h.weight.requires_grad
    assert all(p.requires_grad for p in m.layer4.parameters())
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert bns and not any(b.training for b in bns)


def test_torchvision_resnet_to_parc_init():
    import torchvision
    tv = torchvision.models.resnet50()
    out, rep = resnet_to_parc(tv.state_dict())
    # the 4 replaced 3x3 convs are reported, ParC tensors left at init
    assert sorted(rep.unused) == sorted(f'backbone.layer{a}.{b}.conv2.weight'
                                        for a, b in ((3, 3), (3, 4), (3, 5), (4, 2)))
    assert len(rep.missing) == 4 * 6
    m = ParCResNet(depth=50)
    m.load_state_dict({k[9:]: v for k, v in out.items() if k.startswith('backbone.')})
    torch.testing.assert_close(m.layer2[1].conv2.weight, tv.layer2[1].conv2.weight)
    assert 'head.fc.weight' in out


@pytest.mark.parametrize('size', [(64, 64), (67, 45)])
def test_shapes_deep_stem(size):
    m = ParCResNet(depth=50, deep_stem=True, out_indices=(0, 1, 2, 3)).eval()
    outs = m(torch.randn(1, 3, *size))
    assert [o.shape[1] for o in outs] == [256, 512, 1024, 2048]

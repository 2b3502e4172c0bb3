"""ParC-MobileNetV2: official layout, parameter counts, equivalence with a reference."""
import pytest
import torch

from parc_mm.models import ParCMobileNetV2
from parc_mm.models.converters import convert_mv2, load_report, mv2_to_parc
from tests.reference import fixture, n_params, official_mv2, random_state_dict, to_f64


def test_param_counts_match_official():
    assert n_params(ParCMobileNetV2()) + 1280 * 1000 + 1000 == \
        fixture('parc_mv2')['params'] == 3532136
    assert n_params(ParCMobileNetV2(out_indices=(1, 2, 4, 7))) == \
        fixture('det_mv2_gcc')['params']


def test_pe_only_in_first_parc_block_of_each_layer():
    m = ParCMobileNetV2()
    assert m.layer4[2].conv[1].conv.parc_h.pe is not None
    assert m.layer4[3].conv[1].conv.parc_h.pe is None
    assert m.layer6[2].conv[1].conv.parc_w.weight.shape == (480, 1, 1, 7)


def test_official_classification_weights_give_official_outputs():
    src = random_state_dict('parc_mv2')
    sd, rep = convert_mv2(src)
    assert not rep.unused, rep.unused
    model = ParCMobileNetV2().eval()
    rep = load_report(model, sd, 'backbone.')
    assert not (rep.missing or rep.mismatched), rep.summary()
    model, src = to_f64(model, src)
    x = torch.randn(1, 3, 224, 224, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feat = model(x)[0].mean([-2, -1])
        ours = torch.nn.functional.linear(feat, src['classifier.1.weight'],
                                          src['classifier.1.bias'])
        ref = official_mv2(src, x)[0]
    torch.testing.assert_close(ours, ref, rtol=1e-7, atol=1e-7)


def test_torchvision_mv2_to_parc_init():
    import torchvision
    tv = torchvision.models.mobilenet_v2()
    out, rep = mv2_to_parc(tv.state_dict())
    # the replaced depthwise 3x3 weights are reported; their BN carries over
    assert sorted(rep.unused) == sorted(f'backbone.layer{a}.{b}.conv.1.conv.weight'
                                        for a, b in ((4, 2), (4, 3), (5, 2), (6, 2)))
    m = ParCMobileNetV2()
    m.load_state_dict({k[9:]: v for k, v in out.items() if k.startswith('backbone.')})
    torch.testing.assert_close(m.layer4[2].conv[1].bn.running_var,
                               tv.features[9].conv[1][1].running_var)


def test_freeze_norm_eval_and_errors():
    m = ParCMobileNetV2(frozen_stages=4, norm_eval=True, out_indices=(1, 2, 4, 7))
    m.train()
    assert not any(p.requires_grad for p in m.layer4.parameters())
    assert all(p.requires_grad for p in m.layer5.parameters())
    assert not any(b.training for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d))
    with pytest.raises(ValueError, match='downsamples'):
        ParCMobileNetV2(parc_cfg=dict(blocks=[[], [0], [], [], [], [], []]))
    m = ParCMobileNetV2(widen_factor=0.5, out_indices=(1, 2, 4, 7)).eval()
    assert [o.shape[1] for o in m(torch.randn(1, 3, 67, 45))] == [16, 16, 48, 1280]


def test_no_parc_equals_mmpretrain_mobilenet_v2():
    from mmpretrain.models import MobileNetV2
    torch.manual_seed(0)
    ref = MobileNetV2(out_indices=(1, 2, 4, 7))
    ref.eval()
    ours = ParCMobileNetV2(parc_cfg=dict(blocks='none'), out_indices=(1, 2, 4, 7)).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 80)
    for a, b in zip(ours(x), ref(x)):
        torch.testing.assert_close(a, b)

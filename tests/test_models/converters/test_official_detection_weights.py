"""The first author's detection backbones (ConvNeXt, ResNet50, MobileNetV2 with ParC),
converted: no tensor left over, none missing, and the official forward's outputs (an
independent re-implementation) at the fixture size and at an odd one."""
import pytest
import torch

from parc_mm.models import ParCConvNeXt, ParCMobileNetV2, ParCResNet
from parc_mm.models.converters import convert_convnext, convert_mv2, convert_resnet, load_report
from tests.reference import (
    fixture,
    official_convnext,
    official_mv2,
    official_resnet50,
    random_state_dict,
    to_f64,
)

# fixture key: (seed, converter, backbone, official forward, float64, tolerance). Random BN
# statistics blow the activations of the BN nets up (~1e4 over 16 blocks): those compare in
# float64; ConvNeXt (LayerNorm) in float32.
CASES = {
    'det_convnext_gcc_xt': (1, convert_convnext, lambda: ParCConvNeXt(
        arch='xt', out_indices=[0, 1, 2, 3], gap_before_final_norm=False), official_convnext,
        False, 1e-4),
    'det_resnet50_gcc': (1, convert_resnet, lambda: ParCResNet(depth=50, out_indices=(0, 1, 2, 3)),
                         official_resnet50, True, 1e-7),
    'det_mv2_gcc': (2, convert_mv2, lambda: ParCMobileNetV2(out_indices=(1, 2, 4, 7)),
                    official_mv2, True, 1e-7),
}


@pytest.mark.parametrize('size', [(256, 352), (97, 131)])
@pytest.mark.parametrize('key', list(CASES))
def test_official_detection_weights_give_official_outputs(key, size):
    seed, convert, build, official, f64, tol = CASES[key]
    src = random_state_dict(key, seed=seed)
    sd, rep = convert(src)
    assert not rep.unused, rep.unused
    model = build().eval()
    rep = load_report(model, sd, 'backbone.')
    assert not (rep.missing or rep.unused or rep.mismatched), rep.summary()
    dtype = torch.float64 if f64 else torch.float32
    if f64:
        model, src = to_f64(model, src)
    x = torch.randn(1, 3, *size, dtype=dtype, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model(x)
        ref = official(src, x, det=True)
    if size == (256, 352):
        assert [list(o.shape) for o in ours] == fixture(key)['out_shapes_for_1x3x256x352']
    assert len(ours) == len(ref) == 4
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)

"""ParCNetV2 against the official models: key layout and parameter counts (from the official
code, tests/data), converted weights against an independent re-implementation of the official
forward (tests/reference.py), the backbone interface and its refusals."""
import pytest
import torch

from parc_mm.models import ParCNetV2
from parc_mm.models.converters import (
    check_coverage,
    detect_arch,
    detect_parcnetv2_layout,
    to_parc,
)
from parc_mm.ops import inference_mode, set_impl
from tests.reference import official_parcnetv2, v2_fixture, v2_random_state_dict

ARCHS = ['xt', 'tiny', 'small', 'base']
HEAD = {'xt': 320, 'tiny': 512, 'small': 512, 'base': 576}


def _classifier(arch, **kwargs):
    from mmengine.registry import DefaultScope
    from mmpretrain.models import ImageClassifier
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return ImageClassifier(
            backbone=dict(type='parc_mm.ParCNetV2', arch=arch, **kwargs),
            head=dict(type='LinearClsHead', num_classes=1000, in_channels=HEAD[arch]))


@pytest.mark.parametrize('arch', ARCHS)
def test_parameter_counts_and_keys_equal_the_official_models(arch):
    """Classifier (backbone + 1000-class head) and detection / segmentation backbone."""
    official = v2_fixture(f'parcnetv2_{arch}')
    clf = _classifier(arch)
    ours = sum(p.numel() for p in clf.parameters())
    print(f'ParCNetV2-{arch}: ours {ours:,} official {official["params"]:,}')
    assert ours == official['params']
    sd, rep = to_parc('parcnetv2', {k: torch.zeros(s) for k, s in
                                    official['state_dict'].items()}, arch=arch)
    assert not rep.unused and not rep.missing and not rep.mismatched
    assert set(sd) == set(clf.state_dict())

    det = v2_fixture(f'parcnetv2_{arch}_det')
    dense = ParCNetV2(arch, out_indices=(0, 1, 2, 3), gap_before_final_norm=False)
    print(f'ParCNetV2-{arch} dense backbone: ours {sum(p.numel() for p in dense.parameters()):,}'
          f' official {det["params"]:,}')
    assert sum(p.numel() for p in dense.parameters()) == det['params']
    assert {k: list(v.shape) for k, v in dense.state_dict().items()} == det['state_dict']


@pytest.mark.parametrize('impl', ['direct', 'fft', 'gemm', 'auto'])
def test_converted_classifier_reproduces_the_official_forward(impl):
    """Official weights (random, official layout) -> converter -> ours: the logits of the
    official forward, float64, on an odd non-square input, every implementation."""
    src = {k: v.double() for k, v in v2_random_state_dict('parcnetv2_xt').items()}
    sd, rep = to_parc('parcnetv2', src, arch='xt')
    check_coverage(rep, 'parcnetv2')
    clf = _classifier('xt').double()
    clf.load_state_dict(sd)
    set_impl(clf, impl)
    clf.eval()
    x = torch.randn(2, 3, 72, 104, dtype=torch.float64)
    ref = official_parcnetv2(src, x)
    with torch.no_grad():
        torch.testing.assert_close(clf(x, mode='tensor'), ref, rtol=1e-10, atol=1e-10)
        inference_mode(clf)  # kernels' matrices / spectra as constants: the same logits
        torch.testing.assert_close(clf(x, mode='tensor'), ref, rtol=1e-10, atol=1e-10)


def test_converted_dense_backbone_reproduces_the_official_feature_maps():
    """The official detection / segmentation backbone (norm0-3, no head) on a padded
    detection-like input (a multiple of 32, not square)."""
    src = {k: v.double() for k, v in v2_random_state_dict('parcnetv2_tiny_det').items()}
    assert detect_parcnetv2_layout(src) == 'dense'
    sd, rep = to_parc('parcnetv2', src, arch='tiny', head=False)
    assert not rep.unused and not rep.missing
    bb = ParCNetV2('tiny', out_indices=(0, 1, 2, 3), gap_before_final_norm=False).double()
    bb.load_state_dict({k[len('backbone.'):]: v for k, v in sd.items()})
    bb.eval()
    x = torch.randn(1, 3, 96, 160, dtype=torch.float64)
    with torch.no_grad():
        outs = bb(x)
    ref = official_parcnetv2(src, x, det=True)
    assert [o.shape for o in outs] == [r.shape for r in ref]
    for o, r in zip(outs, ref):
        torch.testing.assert_close(o, r, rtol=1e-10, atol=1e-10)


def test_whole_official_detector_keeps_neck_and_heads():
    src = {'backbone.' + k: v for k, v in v2_random_state_dict('parcnetv2_xt_det').items()}
    src['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 48, 1, 1)
    sd, rep = to_parc('parcnetv2', src, arch='xt')
    assert 'neck.lateral_convs.0.conv.weight' in sd and rep.coverage() == 1.0


def test_wrong_arch_is_named_with_the_fix():
    src = v2_random_state_dict('parcnetv2_xt')
    _, rep = to_parc('parcnetv2', src, arch='tiny')
    assert rep.mismatched and rep.coverage() < 0.5
    with pytest.raises(ValueError, match='is it a checkpoint of this family'):
        check_coverage(rep, 'parcnetv2')
    name, kwargs, cov = detect_arch('parcnetv2', src)
    assert (name, kwargs, cov) == ('xt', {'arch': 'xt'}, 1.0)


def test_foreign_checkpoint_is_refused():
    with pytest.raises(ValueError, match='Unrecognised ParCNetV2 checkpoint layout'):
        to_parc('parcnetv2', {'conv1.weight': torch.zeros(1)})


def test_converter_command_line(tmp_path):
    from tools.model_converters.to_parc import main
    src = v2_random_state_dict('parcnetv2_xt')
    torch.save({'model': src}, tmp_path / 'parcnetv2_xt.pth.tar')
    dst = tmp_path / 'out.pth'
    assert main(['parcnetv2', str(tmp_path / 'parcnetv2_xt.pth.tar'), str(dst),
                 '--arch', 'xt']) == 0
    out = torch.load(dst)['state_dict']
    assert torch.equal(out['head.fc.weight'], src['head.weight'])
    # the default arch (tiny) does not fit an XT source: refused, naming --arch xt
    assert main(['parcnetv2', str(tmp_path / 'parcnetv2_xt.pth.tar'),
                 str(tmp_path / 'x.pth')]) == 1


def test_default_kernels_follow_img_size_and_interpolate_option():
    assert ParCNetV2('xt').kernel_sizes == [111, 55, 27, 13]
    assert ParCNetV2('xt', img_size=256).kernel_sizes == [127, 63, 31, 15]
    m = ParCNetV2('xt', parc_cfg=dict(interpolate=True, impl='fft'))
    conv = m.stages[0][0].token_mixer.dwconv1.conv_h
    assert conv.interpolate is True and conv.impl == 'fft' and conv.taps(40) == 79


def test_interface_out_indices_frozen_stages_and_layer_depth():
    m = ParCNetV2('xt', out_indices=(1, 3), gap_before_final_norm=False, frozen_stages=1)
    outs = m(torch.randn(1, 3, 64, 96))
    assert [o.shape for o in outs] == [(1, 96, 8, 12), (1, 320, 2, 3)]
    m.train()
    assert not any(p.requires_grad for p in m.stages[1].parameters())
    assert not m.stages[1].training and m.stages[2].training
    assert all(p.requires_grad for p in m.stages[2].parameters())
    assert ParCNetV2('xt')(torch.randn(2, 3, 64, 64))[0].shape == (2, 320)
    assert m.get_layer_depth('backbone.stages.2.5.mlp.fc1.weight', 'backbone.') == (4, 9)
    assert m.get_layer_depth('head.fc.weight', 'backbone.') == (8, 9)


def test_drop_path_trains():
    m = ParCNetV2('xt', drop_path_rate=0.3)
    m.train()
    out = m(torch.randn(2, 3, 64, 64))[0]
    out.sum().backward()
    assert m.stages[0][0].token_mixer.dwconv1.conv_w.weight.grad is not None


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Unknown ParCNetV2 arch 'huge'"):
        ParCNetV2('huge')
    with pytest.raises(ValueError, match='kernel_sizes must be 4 odd'):
        ParCNetV2('xt', parc_cfg=dict(kernel_sizes=[110, 55, 27, 13]))
    with pytest.raises(ValueError, match='unknown keys'):
        ParCNetV2('xt', parc_cfg=dict(blocks='all'))
    with pytest.raises(ValueError, match='out_indices'):
        ParCNetV2('xt', out_indices=(4, ))
    with pytest.raises(ValueError, match='at least 32x32'):
        ParCNetV2('xt')(torch.randn(1, 3, 16, 64))


def test_block_wise_layer_decay_groups_as_the_official_recipe():
    """The official detection recipe's groups: every three blocks over all stages."""
    from mmengine.optim import build_optim_wrapper

    from parc_mm.engine.optimizers import block_wise_layer_id

    class Det(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = ParCNetV2('tiny', out_indices=(0, 1, 2, 3),
                                      gap_before_final_norm=False)
            self.neck = torch.nn.Linear(2, 2)

    depths = [3, 3, 12, 3]
    assert block_wise_layer_id('backbone.downsample_layers.0.conv.weight', depths) == 0
    assert block_wise_layer_id('backbone.stages.0.2.norm1.weight', depths) == 1
    assert block_wise_layer_id('backbone.downsample_layers.1.conv.weight', depths) == 2
    assert block_wise_layer_id('backbone.stages.2.11.mlp.fc1.weight', depths) == 6
    assert block_wise_layer_id('backbone.stages.3.2.mlp.fc1.weight', depths) == 7
    assert block_wise_layer_id('neck.weight', depths) == 8
    ow = build_optim_wrapper(Det(), dict(
        constructor='parc_mm.LayerDecayOptimizerConstructor',
        optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05),
        paramwise_cfg=dict(decay_rate=0.5, decay_type='block_wise', num_layers=7)))
    scales = {g['group_name']: g['lr'] for g in ow.optimizer.param_groups}
    assert scales['layer_0_decay'] == 0.5**8 and scales['layer_8_decay'] == 1.0
    with pytest.raises(ValueError, match='num_layers must be 7'):
        build_optim_wrapper(Det(), dict(
            constructor='parc_mm.LayerDecayOptimizerConstructor',
            optimizer=dict(type='AdamW', lr=1.0),
            paramwise_cfg=dict(decay_rate=0.5, decay_type='block_wise', num_layers=6)))

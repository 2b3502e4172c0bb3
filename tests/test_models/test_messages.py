"""Bad arguments and configs get a message that names the problem and the fix."""
import pytest
import torch
from mmengine.config import Config

import parc_mm.models  # noqa: F401
import parc_mm.registry
from parc_mm.models import ParCConvNeXt, ParCMobileNetV2, ParCNet, ParCResNet

SMALL = dict(arch=dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 64]))


@pytest.mark.parametrize('spec', [[0, 1, 2, 3], 5, None, True, [['0'], [], [], []],
                                  [[True], [], [], []], 'half'])
def test_parc_blocks_spec(spec):
    with pytest.raises(ValueError, match="parc_cfg blocks must be 'paper', 'all', 'none' or a "
                                         'list of 4 lists|Unknown parc_cfg blocks'):
        ParCConvNeXt(parc_cfg=dict(blocks=spec), **SMALL)


@pytest.mark.parametrize('sizes', [[56, 28, 14.0, 7], [56, 28, 14], 14, [56, 28, 0, 7]])
def test_base_sizes(sizes):
    with pytest.raises(ValueError, match='parc_cfg base_sizes needs 4 positive ints'):
        ParCConvNeXt(parc_cfg=dict(base_sizes=sizes), **SMALL)
    with pytest.raises(ValueError, match='parc_cfg base_sizes needs 4 positive ints'):
        ParCResNet(parc_cfg=dict(base_sizes=sizes))


@pytest.mark.parametrize('build', [lambda: ParCConvNeXt(img_size=0, **SMALL),
                                   lambda: ParCResNet(img_size=-3),
                                   lambda: ParCMobileNetV2(img_size=0),
                                   lambda: ParCNet(img_size=0),
                                   lambda: ParCConvNeXt(img_size=224.0, **SMALL)])
def test_img_size(build):
    with pytest.raises(ValueError, match='img_size must be a positive int'):
        build()


def test_resnet_depth_as_string():
    with pytest.raises(ValueError, match="the int 50, 101 or 152, got '50'"):
        ParCResNet(depth='50')


def test_convnext_minimum_input_size():
    m = ParCConvNeXt(parc_cfg=dict(blocks='all', base_sizes=[8, 4, 2, 1]), **SMALL).eval()
    assert m(torch.randn(1, 3, 32, 40))[0].shape == (1, 64)  # pooled last stage
    with pytest.raises(ValueError, match=r'at least 32x32 pixels .* got \(31, 64\)'):
        m(torch.randn(1, 3, 31, 64))


def _tool_cfg(tmp_path, backbone_type):
    path = tmp_path / 'cfg.py'
    path.write_text(f"""
_base_ = ['mmpretrain::convnext/convnext-tiny_32xb128_in1k.py']
custom_imports = dict(imports=['parc_mm.models'], allow_failed_imports=False)
model = dict(backbone=dict(_delete_=True, type='{backbone_type}', arch='xt'))
""")
    return str(path)


def test_type_without_prefix_names_the_fix(tmp_path):
    from parc_mm.apis.runner import load_config
    with pytest.raises(ValueError, match=r"write type='parc_mm.ParCConvNeXt' .*custom_imports"):
        load_config(_tool_cfg(tmp_path, 'ParCConvNeXt'))


def test_misspelt_type_suggests_the_close_match(tmp_path):
    from mmpretrain.registry import MODELS

    from parc_mm.apis.runner import load_config
    with pytest.raises(KeyError, match='did you mean parc_mm.ParCConvNeXt'):
        load_config(_tool_cfg(tmp_path, 'parc_mm.ParCConvNext'))
    # the same message when the library builds it (mmdet's / mmpretrain's own scripts)
    cfg = Config.fromfile(_tool_cfg(tmp_path, 'parc_mm.ParCConvNext'))
    with pytest.raises(KeyError, match='did you mean parc_mm.ParCConvNeXt'):
        MODELS.build(cfg.model.backbone)
    assert 'ParCConvNeXt' in parc_mm.registry.MODELS


def test_an_img_size_below_a_parc_stage_stride_is_refused():
    """img_size=7 used to build one-tap 'global' kernels without a word."""
    with pytest.raises(ValueError, match='img_size 7 is smaller than the stride 32 of stage 4'):
        ParCConvNeXt(img_size=7, **SMALL)
    m = ParCConvNeXt(img_size=7, parc_cfg=dict(base_sizes=[4, 4, 4, 4]), **SMALL)
    assert m.parc_base_sizes == [4, 4, 4, 4]  # explicit sizes: the user's choice


def test_parc_net_training_at_batch_1_names_the_layer_and_the_fix():
    m = ParCNet('xs', out_indices=(4, ))
    m.train()
    with pytest.raises(ValueError, match='channel attention .* at least 2 images'):
        m(torch.randn(1, 3, 64, 64))
    m(torch.randn(2, 3, 64, 64))  # two images train
    m.eval()
    m(torch.randn(1, 3, 64, 64))  # and one infers

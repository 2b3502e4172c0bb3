"""The one placement API (parc_cfg) shared by the ParC backbones."""
import pytest
import torch

import parc_mm.models  # noqa: F401
from parc_mm.models import ParCConvNeXt, ParCMobileNetV2, ParCNet, ParCResNet
from parc_mm.models.layers import ParCHW
from parc_mm.models.placement import derive_base_sizes

SMALL = dict(arch=dict(depths=[1, 1, 2, 1], channels=[8, 16, 32, 64]))


def _parc(m):
    return {n: x for n, x in m.named_modules() if isinstance(x, ParCHW)}


@pytest.mark.parametrize('build,kwargs', [
    (ParCConvNeXt, dict(parc_blocks='all', **SMALL)),
    (ParCResNet, dict(parc_dense=False)),
    (ParCMobileNetV2, dict(parc_pe='all')),
])
def test_flat_keywords_are_refused_naming_parc_cfg(build, kwargs):
    with pytest.raises(TypeError, match=r'parc_cfg=dict\((blocks|dense|pe)=\.\.\.\)'):
        build(**kwargs)
    with pytest.raises(TypeError):
        ParCNet(arch='xs', parc_bias=True)


def test_every_family_follows_the_template():
    """Settings, placement and re-freezing happen in one place (placement.ParCBackbone)."""
    from parc_mm.models import ParCSwin, ParCViT
    from parc_mm.models.placement import AttentionToParC, ParCBackbone
    for cls in (ParCConvNeXt, ParCResNet, ParCMobileNetV2, ParCViT, ParCSwin):
        assert issubclass(cls, ParCBackbone)
        assert set(cls.parc_defaults) >= {'blocks', 'base_sizes', 'pe', 'bias', 'impl'}
        for hook in ('parc_stages', 'parc_strides'):
            assert getattr(cls, hook) is not getattr(ParCBackbone, hook), (cls, hook)
    for cls in (ParCViT, ParCSwin):
        assert issubclass(cls, AttentionToParC)
    # frozen stages stay frozen after the swap (the template re-freezes)
    m = ParCConvNeXt(parc_cfg=dict(blocks='all'), frozen_stages=2, **SMALL)
    assert not any(p.requires_grad for p in m.stages[1].parameters())
    assert any(p.requires_grad for p in m.stages[2].parameters())


def test_pe_modes_and_bool():
    m = ParCMobileNetV2(parc_cfg=dict(blocks='all', pe='first'))
    # the first ParC block of each layer has the embedding, later ones not
    blocks = m.parc_blocks
    for i, chosen in enumerate(blocks):
        for n, j in enumerate(chosen):
            conv = getattr(m, f'layer{i + 1}')[j].conv[-2].conv
            assert (conv.parc_h.pe is not None) == (n == 0)
    m = ParCConvNeXt(parc_cfg=dict(blocks='all', pe=False), **SMALL)
    assert all(x.parc_h.pe is None for x in _parc(m).values())
    with pytest.raises(ValueError, match="pe must be one of"):
        ParCConvNeXt(parc_cfg=dict(pe='sometimes'), **SMALL)
    with pytest.raises(ValueError, match="unknown keys \\['block'\\]"):
        ParCConvNeXt(parc_cfg=dict(block='all'), **SMALL)
    with pytest.raises(ValueError, match='unknown keys'):
        ParCNet(parc_cfg=dict(blocks='all'))  # the units' places are structural


def test_one_rule_for_base_sizes_including_non_square():
    assert derive_base_sizes(224, [4, 8, 16, 32]) == [56, 28, 14, 7]
    assert derive_base_sizes((800, 1344), [16, 32]) == [(50, 84), (25, 42)]
    m = ParCConvNeXt(img_size=(128, 160), parc_cfg=dict(blocks='all'), **SMALL)
    assert m.parc_base_sizes == [(32, 40), (16, 20), (8, 10), (4, 5)]
    assert m.stages[0][0].depthwise_conv.parc_w.weight.shape[-1] == 40
    r = ParCResNet(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2), img_size=224)
    assert r.parc_base_sizes == [56, 28, 14, 14]  # the real strides, also when dilated


def test_frozen_stages_stay_frozen_after_the_swap():
    m = ParCConvNeXt(parc_cfg=dict(blocks='all'), frozen_stages=2, **SMALL)
    assert not any(p.requires_grad for p in m.stages[0].parameters())
    assert all(p.requires_grad for p in m.stages[2].parameters())
    assert m.train() is m


@pytest.mark.parametrize('os_,dil', [(16, [1]), (8, [1, 2])])
def test_parcnet_builds_dilated_layers(os_, dil):
    m = ParCNet('xs', out_indices=(3, 4), output_stride=os_).eval()
    kept = m.layers[-len(dil):]
    for layer, d in zip(kept, dil):
        down = layer[0]
        assert down.conv[1].conv.stride == (1, 1) and down.conv[1].conv.dilation == (d, d)
        assert not down.use_res_connect
    outs = m(torch.randn(1, 3, 64, 64))
    assert outs[-1].shape[-1] == 64 // os_
    ref = ParCNet('xs', out_indices=(3, 4))
    assert ref.state_dict().keys() == m.state_dict().keys()


# --- hostile cases: odd configs ---
def test_parc_cfg_strings_and_non_dicts_are_refused():
    from parc_mm.models.backbones.parc_convnext import ParCConvNeXt
    from parc_mm.models.backbones.parc_resnet import ParCResNet
    with pytest.raises(ValueError, match="bias must be True or False, got 'False'"):
        ParCConvNeXt(arch='atto', parc_cfg=dict(bias='False'))
    with pytest.raises(ValueError, match='dense must be True or False'):
        ParCResNet(depth=50, parc_cfg=dict(dense='False'))
    with pytest.raises(ValueError, match=r"parc_cfg must be a dict.*blocks='all'"):
        ParCConvNeXt(arch='atto', parc_cfg='all')

"""ParCFPN: equals mmdet's / mmseg's FPN with ParC off; global context with it on."""
import pytest
import torch

from parc_mm.models import ParCFPN


def _inputs(size=(64, 96)):
    torch.manual_seed(0)
    h, w = size
    return [torch.randn(1, c, h // s, w // s) for c, s in ((8, 4), (16, 8), (32, 16), (64, 32))]


@pytest.mark.parametrize('extra', [dict(), dict(add_extra_convs='on_output'),
                                   dict(start_level=1, add_extra_convs='on_input')])
def test_off_equals_mmdet_and_mmseg_fpn(extra):
    from mmdet.models.necks import FPN as DetFPN
    from mmseg.models.necks import FPN as SegFPN
    args = dict(in_channels=[8, 16, 32, 64], out_channels=16, num_outs=5, **extra)
    ours = ParCFPN(parc_cfg=dict(levels=()), **args).eval()
    for cls in (DetFPN, SegFPN):
        ref = cls(**args).eval()
        ref.load_state_dict(ours.state_dict(), strict=True)
        xs = _inputs()
        for a, b in zip(ours(xs), ref(xs)):
            torch.testing.assert_close(a, b)


def test_parc_levels_give_global_context_and_odd_sizes():
    fpn = ParCFPN([8, 16, 32, 64], 16, 4, parc_cfg=dict(layer_scale=1.0, img_size=(64, 96))).eval()
    xs = [x.requires_grad_() for x in _inputs((67, 99))]
    outs = fpn(xs)
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    # the top-left output of level 0 depends on the bottom-right input of level 0
    outs[0][0, :, 0, 0].sum().backward()
    assert xs[0].grad[0, :, -1, -1].abs().sum() > 0
    assert set(fpn.level_blocks) == {'0', '1', '2', '3'}


def test_errors():
    with pytest.raises(ValueError, match='does not exist'):
        ParCFPN([8, 16], 8, 2, parc_cfg=dict(levels=[2]))
    with pytest.raises(ValueError, match='base_sizes needs 2 positive ints'):
        ParCFPN([8, 16], 8, 2, parc_cfg=dict(base_sizes=[4]))


def test_parc_cfg_is_checked_like_the_backbones():
    with pytest.raises(ValueError, match=r"unknown keys \['img'\]"):
        ParCFPN([8, 16], 8, 2, parc_cfg=dict(img=(64, 64)))
    with pytest.raises(TypeError):  # the flat keywords of an unreleased draft are gone
        ParCFPN([8, 16], 8, 2, parc_img_size=(64, 64))

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
    ours = ParCFPN(parc_levels=(), **args).eval()
    for cls in (DetFPN, SegFPN):
        ref = cls(**args).eval()
        ref.load_state_dict(ours.state_dict(), strict=True)
        xs = _inputs()
        for a, b in zip(ours(xs), ref(xs)):
            torch.testing.assert_close(a, b)


def test_parc_levels_give_global_context_and_odd_sizes():
    fpn = ParCFPN([8, 16, 32, 64], 16, 4, parc_layer_scale=1.0, parc_img_size=(64, 96)).eval()
    xs = [x.requires_grad_() for x in _inputs((67, 99))]
    outs = fpn(xs)
    assert [tuple(o.shape[-2:]) for o in outs] == [(16, 24), (8, 12), (4, 6), (2, 3)]
    # the top-left output of level 0 depends on the bottom-right input of level 0
    outs[0][0, :, 0, 0].sum().backward()
    assert xs[0].grad[0, :, -1, -1].abs().sum() > 0
    assert set(fpn.level_blocks) == {'0', '1', '2', '3'}


def test_errors():
    with pytest.raises(ValueError, match='does not exist'):
        ParCFPN([8, 16], 8, 2, parc_levels=[2])
    with pytest.raises(ValueError, match='one per output level'):
        ParCFPN([8, 16], 8, 2, parc_base_sizes=[4])


def test_checkpoint_of_the_first_release_names_loads():
    fpn = ParCFPN([8, 16], 8, 2, parc_img_size=(64, 64))
    old = {k.replace('level_blocks.', 'parc_blocks.'): v for k, v in fpn.state_dict().items()}
    fresh = ParCFPN([8, 16], 8, 2, parc_img_size=(64, 64))
    fresh.load_state_dict(old)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in fpn.state_dict().items())

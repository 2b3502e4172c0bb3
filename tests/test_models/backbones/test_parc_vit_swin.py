"""ParC-ViT (ParC-DeiT) and ParC-Swin: the token-mixer swap, mmpretrain's interface kept, the
mixer against an independent roll-based reference, and the converters from DeiT / ViT (timm,
mmpretrain) and Swin (original release, mmpretrain, mmdet, mmseg) checkpoints."""
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models import SwinTransformer, VisionTransformer

from parc_mm.models import ParCSwin, ParCViT
from parc_mm.models.converters import convert_swin, swin_to_parc, to_parc, unfold_order
from parc_mm.models.layers import ParCTokenMixer
from parc_mm.ops import parc_impl
from tests.reference import n_params, parc_roll

TINY_VIT = dict(embed_dims=32, num_layers=3, num_heads=2, feedforward_channels=64)
TINY_SWIN = dict(embed_dims=16, depths=[2, 2, 2, 1], num_heads=[1, 2, 2, 4])
ATTENTION = ('MultiheadAttention', 'ShiftWindowMSA', 'WindowMSA')


def _attention_modules(model):
    return [n for n, m in model.named_modules() if type(m).__name__ in ATTENTION]


def _mixer_keys(keys):
    return {k for k in keys if '.attn.' in k}


@pytest.mark.parametrize('size', [(224, 224), (97, 131), (16, 16), (33, 20)])
def test_parc_vit_any_size_no_attention(size):
    m = ParCViT(arch=TINY_VIT, out_type='featmap', out_indices=(0, 2)).eval()
    assert not _attention_modules(m) and m.pos_embed is None and m.cls_token is None
    with torch.no_grad():
        outs = m(torch.randn(2, 3, *size))
    grid = (-(-size[0] // 16), -(-size[1] // 16))  # the patch embedding pads
    assert [tuple(o.shape) for o in outs] == [(2, 32, *grid)] * 2


@pytest.mark.parametrize('size', [(224, 224), (97, 131), (32, 32), (45, 70)])
def test_parc_swin_hierarchical_any_size_no_attention(size):
    m = ParCSwin(arch=TINY_SWIN, out_indices=(0, 1, 2, 3)).eval()
    assert not _attention_modules(m)
    assert not [k for k in m.state_dict() if 'relative_position' in k or 'attn_mask' in k]
    with torch.no_grad():
        outs = m(torch.randn(1, 3, *size))
    h, w = -(-size[0] // 4), -(-size[1] // 4)
    for i, o in enumerate(outs):
        assert tuple(o.shape) == (1, 16 * 2**i, h, w), (i, o.shape)
        h, w = -(-h // 2), -(-w // 2)


def test_names_are_mmpretrains_minus_attention():
    """Every tensor of the ParC version outside the mixers has mmpretrain's name and shape."""
    for ours, theirs, drop in (
            (ParCViT(arch='deit-tiny'), VisionTransformer(arch='deit-tiny', out_type='avg_featmap'),
             {'cls_token', 'pos_embed'}),
            (ParCSwin(arch='tiny'), SwinTransformer(arch='tiny'), set())):
        a = {k: v.shape for k, v in ours.state_dict().items() if '.attn.' not in k}
        b = {k: v.shape for k, v in theirs.state_dict().items()
             if '.attn.' not in k and k not in drop}
        assert a == b
        # the mixers: ParC kernels / PEs / biases and the output projection, nothing else
        assert all(re.search(r'\.attn\.(branch_(hw|wh)\.[01]\.(weight|bias|pe)|proj\.'
                             r'(weight|bias))$', k) for k in _mixer_keys(ours.state_dict()))


def test_param_counts():
    # by hand, DeiT-S (C=384, 12 layers, FFN 1536, 14x14 grid): patch 384*768+384; a layer:
    # 2 LNs 4*384, FFN 2*384*1536+1536+384, 4 ParC convs 4*(192*14+192), proj 384*384+384;
    # PEs in layer 0 only: 4*192*14; final ln1 + ln2 4*384
    c, f, h = 384, 1536, 192
    layer = 4 * c + 2 * c * f + f + c + 4 * (h * 14 + h) + c * c + c
    assert n_params(ParCViT(arch='deit-small')) == \
        c * 768 + c + 12 * layer + 4 * h * 14 + 4 * c == 16417152
    assert n_params(ParCViT(arch='deit-tiny')) == 4227264
    assert n_params(ParCSwin(arch='tiny')) == 21194016
    vit, swin = VisionTransformer(arch='deit-small'), SwinTransformer(arch='tiny')
    assert n_params(vit) == 21665664 and n_params(swin) == 27519354


def _mixer_reference(mixer, tokens, hw):
    """The mixer written out with explicit rolls (tests/reference.py)."""
    b, n, c = tokens.shape
    x = tokens.transpose(1, 2).reshape(b, c, *hw)
    a, z = x[:, :c // 2], x[:, c // 2:]

    def conv(layer, t):
        dim = 2 if layer.direction == 'H' else 3
        return parc_roll(t, layer.weight, layer.bias, layer.pe, dim)

    a = conv(mixer.branch_hw[1], conv(mixer.branch_hw[0], a))
    z = conv(mixer.branch_wh[1], conv(mixer.branch_wh[0], z))
    y = torch.cat([a, z], 1).flatten(2).transpose(1, 2)
    return F.linear(y, mixer.proj.weight, mixer.proj.bias)


@pytest.mark.parametrize('impl', ['direct', 'fft', 'gemm', 'auto'])
@pytest.mark.parametrize('hw', [(7, 7), (6, 10), (1, 5), (13, 8)])
def test_token_mixer_matches_reference(impl, hw):
    torch.manual_seed(0)
    mixer = ParCTokenMixer(12, base_size=(7, 9), impl=impl).double().eval()
    for p in mixer.parameters():
        nn.init.normal_(p)
    x = torch.randn(2, hw[0] * hw[1], 12, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(mixer(x, hw), _mixer_reference(mixer, x, hw))


def test_token_mixer_is_global_in_one_block():
    """Every output token depends on every input token (as with attention)."""
    mixer = ParCTokenMixer(8, base_size=5).double()
    for p in mixer.parameters():
        nn.init.normal_(p)
    x = torch.randn(1, 5 * 7, 8, dtype=torch.float64, requires_grad=True)
    for t in (0, 17, 34):
        g, = torch.autograd.grad(mixer(x, (5, 7))[0, t].sum(), x)
        assert (g[0].abs().sum(-1) > 0).all()


def test_token_mixer_errors():
    with pytest.raises(ValueError, match='even'):
        ParCTokenMixer(7, 5)
    with pytest.raises(ValueError, match='grid'):
        ParCTokenMixer(8, 5)(torch.randn(1, 10, 8), (3, 3))


def test_mixer_takes_over_drop_path_and_layer_scale():
    m = ParCViT(arch=TINY_VIT, drop_path_rate=0.2, layer_scale_init_value=0.1)
    mixer = m.layers[2].attn
    assert mixer.drop_path.drop_prob == pytest.approx(0.2)
    assert torch.allclose(mixer.layer_scale.weight, torch.full((32, ), 0.1))
    s = ParCSwin(arch=TINY_SWIN, drop_path_rate=0.3)
    assert s.stages[3].blocks[0].attn.drop_path.drop_prob == pytest.approx(0.3)


def test_impls_agree_on_whole_backbones():
    torch.manual_seed(0)
    vit = ParCViT(arch=TINY_VIT).eval()
    swin = ParCSwin(arch=TINY_SWIN, out_indices=(0, 1, 2, 3)).eval()
    for model, x in ((vit, torch.randn(1, 3, 80, 112)), (swin, torch.randn(1, 3, 72, 100))):
        outs = {}
        for impl in ('direct', 'fft', 'gemm'):
            with parc_impl(impl), torch.no_grad():
                outs[impl] = model(x)
        for impl in ('fft', 'gemm'):
            for a, b in zip(outs[impl], outs['direct']):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_pe_first_and_placement():
    m = ParCViT(arch=TINY_VIT)
    assert [m.layers[i].attn.branch_hw[0].pe is not None for i in range(3)] == [
        True, False, False]
    assert ParCViT(arch=TINY_VIT, parc_cfg=dict(pe='all')).layers[2].attn.branch_wh[1].pe \
        is not None
    s = ParCSwin(arch=TINY_SWIN)
    assert [s.stages[i].blocks[0].attn.branch_hw[0].pe is not None for i in range(4)] == [
        True] * 4 and s.stages[0].blocks[1].attn.branch_hw[0].pe is None
    assert s.parc_base_sizes == [56, 28, 14, 7]
    assert ParCSwin(arch=TINY_SWIN, img_size=(200, 300)).parc_base_sizes == [
        (50, 75), (25, 38), (13, 19), (7, 10)]
    # a hybrid: attention kept in layer 1
    h = ParCViT(arch=TINY_VIT, parc_cfg=dict(blocks=[[0, 2]]))
    assert type(h.layers[1].attn).__name__ == 'MultiheadAttention'
    assert h(torch.randn(1, 3, 48, 64))[0].shape == (1, 32)
    with pytest.raises(ValueError, match='no ParC mixer'):
        ParCViT(arch=TINY_VIT, parc_cfg=dict(blocks='none'))
    with pytest.raises(ValueError, match='class token'):
        ParCViT(arch=TINY_VIT, out_type='cls_token')
    with pytest.raises(ValueError, match='Unknown ParCSwin arch'):
        ParCSwin(arch='gigantic')


def test_frozen_stages_and_layer_depth():
    m = ParCViT(arch=TINY_VIT, frozen_stages=2)
    assert not any(p.requires_grad for p in m.layers[1].attn.parameters())
    assert all(p.requires_grad for p in m.layers[2].attn.parameters())
    assert m.get_layer_depth('layers.1.attn.branch_hw.0.weight') == (2, 5)
    s = ParCSwin(arch=TINY_SWIN, frozen_stages=1)
    assert not any(p.requires_grad for p in s.stages[1].blocks[0].attn.parameters())
    assert all(p.requires_grad for p in s.stages[2].blocks[0].attn.parameters())
    assert s.get_layer_depth('stages.2.blocks.1.attn.proj.weight')[0] == \
        s.get_layer_depth('stages.2.blocks.1.ffn.layers.1.weight')[0]


# ----------------------------------------------------------------------------- converters


def _carried(src, out, rep):
    """Every source tensor that is not dropped arrives with the same values."""
    names = dict(rep.converted)
    for k, v in src.items():
        if k in rep.dropped:
            continue
        assert k in names, k
        assert torch.equal(out[names[k]], v), k


def test_deit_from_timm():
    timm = pytest.importorskip('timm')
    src = timm.create_model('deit_small_patch16_224', pretrained=False).state_dict()
    out, rep = to_parc('deit', src)
    assert not rep.unused and not rep.mismatched
    assert set(rep.dropped) == {k for k in src if '.attn.' in k} | {'cls_token', 'pos_embed'}
    _carried(src, out, rep)
    new = {'backbone.' + k for k in rep.missing}
    assert new == {k for k in out if '.attn.' in k} | {'backbone.ln2.weight', 'backbone.ln2.bias'}
    assert rep.coverage() > 0.85
    model = ParCViT(arch='deit-small')
    model.load_state_dict({k[9:]: v for k, v in out.items() if k.startswith('backbone.')})


def test_vit_from_an_mmseg_segmentor():
    """mmseg's own ViT (mmcv attention: attn.attn.in_proj_weight) in a whole UperNet
    checkpoint: attention dropped, the rest (and the decode head) carried."""
    from mmseg.models.backbones import VisionTransformer as SegViT
    vit = SegViT(img_size=(64, 64), embed_dims=32, num_layers=3, num_heads=2, mlp_ratio=2,
                 out_indices=(0, 2), final_norm=True)
    src = {'backbone.' + k: v for k, v in vit.state_dict().items()}
    src['decode_head.conv_seg.weight'] = torch.randn(5, 8, 1, 1)
    out, rep = to_parc('deit', src, arch=TINY_VIT)
    assert not rep.unused and not rep.mismatched, (rep.unused, rep.mismatched)
    assert {k for k in rep.dropped if '.attn.' in k} == {k for k in src if '.attn.' in k}
    _carried(src, out, rep)
    assert 'decode_head.conv_seg.weight' in out


def test_every_arch_builds():
    for arch in ('deit-tiny', 'deit-small', 'deit-base', 'base'):
        m = ParCViT(arch=arch)
        assert len(m.parc_blocks[0]) == 12 and not _attention_modules(m)
    for arch in ('tiny', 'small', 'base'):
        m = ParCSwin(arch=arch)
        assert [len(b) for b in m.parc_blocks] == list(m.depths) and not _attention_modules(m)


def test_vit_from_mmpretrain_and_layer_scale_from_timm():
    vit = VisionTransformer(arch=TINY_VIT, layer_scale_init_value=0.5)
    src = {'backbone.' + k: v for k, v in vit.state_dict().items()}
    src['head.layers.head.weight'] = torch.randn(10, 32)
    out, rep = to_parc('deit', src, arch=TINY_VIT)
    assert not rep.unused and not rep.mismatched
    _carried(src, out, rep)
    assert torch.equal(out['head.layers.head.weight'], src['head.layers.head.weight'])
    timm = pytest.importorskip('timm')
    t = timm.models.vision_transformer.VisionTransformer(
        img_size=64, patch_size=16, embed_dim=32, depth=3, num_heads=2, mlp_ratio=2,
        init_values=0.5, num_classes=10)
    out, rep = to_parc('deit', t.state_dict(), arch=TINY_VIT)
    assert not rep.unused and not rep.mismatched
    assert {k for k in rep.dropped if 'ls1' in k} == {f'blocks.{i}.ls1.gamma' for i in range(3)}
    _carried(t.state_dict(), out, rep)
    # the 4x4 table of a 64x64 training: kernels stored at length 4
    assert out['backbone.layers.0.attn.branch_hw.0.weight'].shape[2] == 4


def test_swin_from_mmdet_and_mmseg_whole_models():
    from mmdet.models.backbones import SwinTransformer as DetSwin
    from mmseg.models.backbones import SwinTransformer as SegSwin
    for cls in (DetSwin, SegSwin):
        sw = cls(embed_dims=16, depths=(2, 2, 2, 1), num_heads=(1, 2, 2, 4))
        src = {'backbone.' + k: v for k, v in sw.state_dict().items()}
        src['neck.lateral_convs.0.conv.weight'] = torch.randn(8, 16, 1, 1)
        out, rep = to_parc('swin', src)
        assert not rep.unused and not rep.mismatched, (cls, rep.unused, rep.mismatched)
        assert set(rep.dropped) == {k for k in src if '.attn.' in k}
        _carried(src, out, rep)
        model = ParCSwin(arch=TINY_SWIN, out_indices=(0, 1, 2, 3))
        model.load_state_dict({k[9:]: v for k, v in out.items() if k.startswith('backbone.')})
        assert 'neck.lateral_convs.0.conv.weight' in out


def _original_swin_sd(model):
    """A state dict in the original release's layout, written from its key names: block
    tensors renamed, patch merging in its [x0, x1, x2, x3] channel order."""
    sd = {}
    for k, v in model.state_dict().items():
        k2 = k.replace('stages.', 'layers.').replace('patch_embed.projection', 'patch_embed.proj')
        k2 = k2.replace('ffn.layers.0.0', 'mlp.fc1').replace('ffn.layers.1', 'mlp.fc2')
        k2 = k2.replace('attn.w_msa.', 'attn.').replace('norm3.', 'norm.')
        sd[k2] = v.clone()
    for k in [k for k in sd if '.downsample.' in k]:  # random values in the original order
        sd[k] = torch.randn_like(sd[k])
    sd['layers.0.blocks.1.attn_mask'] = torch.zeros(4, 49, 49)
    sd['head.weight'], sd['head.bias'] = torch.randn(5, 128), torch.randn(5)
    return sd


def _original_patch_merging(x, hw, reduction, norm_w, norm_b):
    """The original PatchMerging: the 2x2 neighbours concatenated as x0..x3."""
    b, _, c = x.shape
    x = x.view(b, *hw, c)
    x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
    x = F.layer_norm(x.view(b, -1, 4 * c), (4 * c, ), norm_w, norm_b)
    return F.linear(x, reduction)


def test_swin_from_the_original_release():
    sw = SwinTransformer(arch=TINY_SWIN)
    src = _original_swin_sd(sw)
    out, rep = to_parc('swin', src)
    assert not rep.unused and not rep.mismatched, (rep.unused, rep.mismatched)
    assert set(rep.dropped) == {k for k in src if '.attn.' in k or 'attn_mask' in k}
    assert torch.equal(out['backbone.norm3.weight'], src['norm.weight'])
    assert torch.equal(out['head.fc.weight'], src['head.weight'])
    # patch merging reordered: mmpretrain's merging gives the original one's output
    model = ParCSwin(arch=TINY_SWIN)
    model.load_state_dict({k[9:]: v for k, v in out.items() if k.startswith('backbone.')})
    x = torch.randn(2, 8 * 10, 16)
    ours, hw = model.stages[0].downsample(x, (8, 10))
    ref = _original_patch_merging(x, (8, 10), src['layers.0.downsample.reduction.weight'],
                                  src['layers.0.downsample.norm.weight'],
                                  src['layers.0.downsample.norm.bias'])
    assert hw == (4, 5)
    torch.testing.assert_close(ours, ref)
    # every other tensor carried as it is
    names = dict(rep.converted)
    for k, v in src.items():
        if k not in rep.dropped and '.downsample.' not in k:
            assert torch.equal(out[names[k]], v), k


def test_unfold_order_is_a_permutation():
    t = torch.arange(8.)
    assert unfold_order(t).tolist() == [0, 4, 2, 6, 1, 5, 3, 7]
    w = torch.randn(3, 8)
    assert torch.equal(unfold_order(w), w[:, [0, 4, 2, 6, 1, 5, 3, 7]])


def test_converters_refuse_foreign_sources():
    with pytest.raises(ValueError, match='Swin'):
        convert_swin({'conv1.weight': torch.zeros(1)})
    with pytest.raises(ValueError, match='ViT'):
        to_parc('deit', {'conv1.weight': torch.zeros(1)})


def test_pretrained_init_cfg_loads_a_converted_checkpoint(tmp_path):
    sw = SwinTransformer(arch=TINY_SWIN, out_indices=(0, 1, 2, 3))
    src = {'backbone.' + k: v for k, v in sw.state_dict().items()}
    out, _ = swin_to_parc(src)
    path = str(tmp_path / 'parc_swin.pth')
    torch.save({'state_dict': out}, path)
    model = ParCSwin(arch=TINY_SWIN, out_indices=(0, 1, 2, 3),
                     init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    model.init_weights()
    for k, v in model.state_dict().items():
        assert torch.equal(v, out['backbone.' + k]), k


@pytest.mark.parametrize('hw', [(14, 14), (5, 9), (30, 31)])
def test_fused_fft_mixer_equals_the_per_layer_path(hw):
    """The one-2-D-FFT mixer (impl 'fft', and 'auto' on small CPU grids) gives the per-layer
    path's outputs and gradients, and its dtype under autocast."""
    from parc_mm.ops import separable_circular_conv2d  # noqa: F401  (public)
    torch.manual_seed(0)
    mixer = ParCTokenMixer(16, base_size=(7, 9))
    for p in mixer.parameters():
        nn.init.normal_(p, std=0.3)
    x = torch.randn(2, hw[0] * hw[1], 16)
    grads, outs = {}, {}
    for impl in ('fft', 'direct'):
        with parc_impl(impl):
            assert (mixer._plan(x.new_empty(1, 16, *hw)) == 'fused') == (impl == 'fft')
            xi = x.clone().requires_grad_()
            out = mixer(xi, hw)
            out.square().sum().backward()
        outs[impl], grads[impl] = out.detach(), (xi.grad, [p.grad.clone() for p in
                                                           mixer.parameters()])
        mixer.zero_grad()
    torch.testing.assert_close(outs['fft'], outs['direct'], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grads['fft'][0], grads['direct'][0], rtol=1e-4, atol=1e-4)
    for a, b in zip(grads['fft'][1], grads['direct'][1]):
        # kernel gradients sum over the whole grid: float32 rounding scales with their size
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5 * max(1., b.abs().max().item()))
    # auto on CPU: fused on small grids, the per-layer circulant GEMM on large ones
    assert mixer._plan(x.new_empty(1, 16, 14, 14)) == 'fused'
    assert mixer._plan(x.new_empty(1, 16, 40, 40)) == 'gemm'
    with torch.autocast('cpu', dtype=torch.bfloat16), torch.no_grad():
        dtypes = set()
        for impl in ('fft', 'direct'):
            with parc_impl(impl):
                dtypes.add(mixer(x, hw).dtype)
    assert dtypes == {torch.bfloat16}


def test_to_parc_command_and_configs_load_the_result(tmp_path, capsys):
    """`to_parc.py deit|swin` writes checkpoints the shipped configs fine-tune from
    (init_cfg Pretrained, prefix backbone.); every kept tensor arrives unchanged."""
    import os.path as osp
    import sys

    from mmengine.config import Config

    from tests.harness import ROOT as root
    sys.path.insert(0, root)
    from tools.model_converters import to_parc
    timm = pytest.importorskip('timm')
    deit = timm.create_model('deit_small_patch16_224', pretrained=False).state_dict()
    swin = {'backbone.' + k: v for k, v in SwinTransformer(arch='tiny').state_dict().items()}
    for family, src, cfg_path, key in (
            ('deit', deit, 'configs/parc_deit/upernet_parc-deit-s_8xb2-160k_ade20k-512x512.py',
             ('blocks.3.mlp.fc1.weight', 'layers.3.ffn.layers.0.0.weight')),
            ('swin', swin, 'configs/parc_swin/mask-rcnn_parc-swin-t_fpn_1x_coco.py',
             ('backbone.stages.2.downsample.reduction.weight',
              'stages.2.downsample.reduction.weight'))):
        torch.save({'model': src}, tmp_path / f'{family}.pth')
        dst = tmp_path / 'checkpoints' / f'parc-{family}.pth'
        assert to_parc.main([family, str(tmp_path / f'{family}.pth'), str(dst)]) == 0
        out = capsys.readouterr().out
        assert 'dropped on purpose' in out and 'NOT used' not in out
        cfg = Config.fromfile(osp.join(root, cfg_path))
        bb = dict(cfg.model.backbone)
        bb.pop('_delete_', None)
        bb['init_cfg']['checkpoint'] = str(dst)
        from parc_mm.registry import MODELS
        model = MODELS.build(bb)
        model.init_weights()
        torch.testing.assert_close(model.state_dict()[key[1]], src[key[0]], rtol=0, atol=0)


def test_layer_decay_constructor_accepts_the_parc_models():
    """mmpretrain's layer-wise lr decay (the DeiT / BEiT fine-tuning recipe) reads the ParC
    models through their classifiers' get_layer_depth: mixer parameters get their layer's
    scale, like the FFN beside them."""
    from mmengine.registry import DefaultScope
    from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
    from mmpretrain.models import ImageClassifier
    for backbone, layer_key in ((dict(type='parc_mm.ParCViT', arch=TINY_VIT), 'layers.1.'),
                                (dict(type='parc_mm.ParCSwin', arch=TINY_SWIN),
                                 'stages.1.blocks.0.')):
        # The classifier builds its data preprocessor in the current default scope, which an
        # earlier test (or user code) may have set to mmdet / mmseg.
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = ImageClassifier(
                backbone=backbone, neck=None,
                head=dict(type='LinearClsHead', num_classes=5, in_channels=32))
        ctor = LearningRateDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05)),
            dict(layer_decay_rate=0.5))
        groups = ctor(model).optimizer.param_groups
        scale = {g['param_name']: g['lr_scale'] for g in groups}
        mixer = [v for k, v in scale.items() if layer_key + 'attn.' in k]
        ffn = [v for k, v in scale.items() if layer_key + 'ffn.' in k]
        assert mixer and set(mixer) == set(ffn) and len(set(mixer)) == 1
        assert min(scale.values()) < max(scale.values())

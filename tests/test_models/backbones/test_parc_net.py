"""ParC-Net-S / XS: official layout and parameter counts, converted-weight equivalence with an
independent reference of the official forward, shapes, dense-prediction options, errors."""
import pytest
import torch

from parc_mm.models import ParCNet
from parc_mm.models.converters import convert_parcnet, load_report, parcnet_to_parc
from parc_mm.models.layers import ParCNetBlock
from tests.reference import fixture, n_params, official_parcnet, random_state_dict, to_f64

ARCHS = {'s': 'parc_net_s', 'xs': 'parc_net_xs'}


@pytest.mark.parametrize('arch', ['s', 'xs'])
def test_param_counts_match_official(arch):
    head = 640 * 1000 + 1000
    assert n_params(ParCNet(arch)) + head == fixture(ARCHS[arch])['params']
    assert fixture('parc_net_s')['params'] == 5037088
    assert fixture('parc_net_xs')['params'] == 2185384


@pytest.mark.parametrize('arch', ['s', 'xs'])
def test_every_official_tensor_has_exactly_one_place(arch):
    src = random_state_dict(ARCHS[arch])
    sd, rep = convert_parcnet(src)
    assert not rep.unused, rep.unused
    # the alias of layer_5.0 (residual.*) is the only thing dropped, and it is reported
    n_alias = sum(k.startswith('residual.') for k in src)
    assert n_alias and len(sd) == len(src) - n_alias
    assert any('residual' in n for n in rep.notes)
    model = ParCNet(arch)
    rep = load_report(model, sd, 'backbone.')
    assert not (rep.missing or rep.mismatched), rep.summary()
    assert sorted(k for k in rep.unused) == ['head.fc.bias', 'head.fc.weight']


def test_alias_that_differs_is_reported_not_dropped():
    src = random_state_dict('parc_net_xs')
    key = next(k for k in src if k.startswith('residual.') and k.endswith('conv.weight'))
    src[key] = src[key] + 1
    _, rep = convert_parcnet(src)
    assert rep.unused == [key]


@pytest.mark.parametrize('arch,size', [('s', (256, 256)), ('xs', (256, 256)),
                                       ('s', (320, 320)), ('s', (97, 131)),
                                       ('xs', (64, 200))])
def test_official_weights_give_official_outputs(arch, size):
    src = random_state_dict(ARCHS[arch], seed=3)
    out, rep = parcnet_to_parc(src, arch, out_indices=(0, 1, 2, 3, 4, 5))
    assert not (rep.unused or rep.missing or rep.mismatched), rep.summary()
    model = ParCNet(arch, out_indices=(0, 1, 2, 3, 4, 5)).eval()
    model.load_state_dict({k[9:]: v for k, v in out.items() if k.startswith('backbone.')})
    model, src = to_f64(model, src)
    x = torch.randn(2, 3, *size, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = list(model(x))
        ours.append(torch.nn.functional.linear(ours[-1].mean([-2, -1]),
                                               out['head.fc.weight'].double(),
                                               out['head.fc.bias'].double()))
        ref = official_parcnet(src, x)
    assert len(ours) == len(ref) == 7
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize('impl', ['direct', 'fft', 'gemm'])
def test_impls_agree_on_the_block(impl):
    torch.manual_seed(0)
    blk = ParCNetBlock(64, 128, base_size=(16, 12), impl='direct').eval()
    x = torch.randn(2, 64, 11, 19)
    ref = blk(x)
    for m in blk.modules():
        if hasattr(m, 'impl'):
            m.impl = impl
    torch.testing.assert_close(blk(x), ref, rtol=1e-4, atol=1e-5)


def test_shapes_256_and_non_square():
    m = ParCNet('s', out_indices=(0, 1, 2, 3, 4, 5)).eval()
    with torch.no_grad():
        outs = m(torch.randn(1, 3, 256, 256))
        assert [tuple(o.shape[1:]) for o in outs] == [
            (32, 128, 128), (64, 64, 64), (96, 32, 32), (128, 16, 16), (160, 8, 8),
            (640, 8, 8)]
        outs = m(torch.randn(1, 3, 190, 320))
        assert [tuple(o.shape[2:]) for o in outs] == [
            (95, 160), (48, 80), (24, 40), (12, 20), (6, 10), (6, 10)]
        # tiny: layer 5 is 1x1, global kernels shrink to length 1
        assert m(torch.randn(1, 3, 32, 32))[-1].shape == (1, 640, 1, 1)
    assert m.out_channels == [32, 64, 96, 128, 160, 640]


@pytest.mark.parametrize('os_,sizes', [(16, [32, 32]), (8, [64, 64])])
def test_output_stride_keeps_resolution_and_weights(os_, sizes):
    ref = ParCNet('s', out_indices=(3, 4))
    m = ParCNet('s', out_indices=(3, 4), output_stride=os_).eval()
    # same parameters: dilation only changes strides, never shapes
    m.load_state_dict(ref.state_dict(), strict=True)
    with torch.no_grad():
        outs = m(torch.randn(1, 3, 512, 512))
    assert [o.shape[-1] for o in outs] == sizes
    if os_ == 8:
        assert m.layers[4][0].conv[1].conv.dilation == (2, 2)


def test_detection_outputs_build_no_unused_head():
    m = ParCNet('s', out_indices=(3, 4))
    assert not hasattr(m, 'conv_1x1_exp')
    x = torch.randn(2, 3, 64, 64)
    sum(o.sum() for o in m(x)).backward()
    # every parameter takes part (DDP without find_unused_parameters)
    assert all(p.grad is not None for p in m.parameters())


def test_pe_only_in_first_block_and_no_bias():
    m = ParCNet('s')
    unit = m.layers[3][1]
    assert unit.global_rep[0].branch_hw.pe is not None
    assert unit.global_rep[0].branch_wh.conv2.pe.shape == (1, 128, 16, 1)
    assert unit.global_rep[1].branch_hw.pe is None
    assert unit.global_rep[1].branch_hw.conv2.pe is None
    assert all(b.bias is None for n, b in m.named_modules() if n.endswith(('conv1', 'conv2'))
               and hasattr(b, 'direction'))


def test_checkpoint_of_another_base_size_is_resized_on_load():
    src = ParCNet('xs', img_size=256).state_dict()
    m = ParCNet('xs', img_size=320)
    m.load_state_dict(src)
    k = 'layers.2.1.global_rep.0.branch_hw.pe.weight'
    assert src[k].shape == (1, 48, 32, 1) and m.state_dict()[k].shape == (1, 48, 40, 1)


def test_freeze_norm_eval_and_errors():
    m = ParCNet('xs', frozen_stages=3, norm_eval=True, out_indices=(3, 4))
    m.train()
    assert not any(p.requires_grad for p in m.stem.parameters())
    assert not any(p.requires_grad for p in m.layers[2].parameters())
    assert all(p.requires_grad for p in m.layers[3].parameters())
    assert not any(b.training for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d))
    with pytest.raises(ValueError, match="Unknown ParCNet arch 'm'"):
        ParCNet('m')
    with pytest.raises(ValueError, match='output_stride'):
        ParCNet('s', output_stride=4)
    with pytest.raises(ValueError, match='out_indices'):
        ParCNet('s', out_indices=(7, ))
    with pytest.raises(ValueError, match='parc_cfg base_sizes needs 3'):
        ParCNet('s', parc_cfg=dict(base_sizes=[32, 16]))
    with pytest.raises(ValueError, match='built for .B, 96'):
        ParCNetBlock(96, 192, 8)(torch.randn(1, 64, 8, 8))


def test_registered_and_built_from_config():
    from mmengine.registry import MODELS as ROOT

    import parc_mm.models  # noqa: F401
    m = ROOT.build(dict(type='parc_mm.ParCNet', arch='xs', out_indices=(4, )))
    assert isinstance(m, ParCNet)


def test_converter_cli_output_loads_into_the_config_model(tmp_path):
    import os.path as osp
    import sys

    from mmengine.config import Config
    from mmengine.registry import MODELS as ROOT

    from tests.harness import ROOT as root
    sys.path.insert(0, root)
    from tools.model_converters import to_parc
    src = random_state_dict('parc_net_s', seed=5)
    torch.save({'model': src}, tmp_path / 'official.pt')
    dst = tmp_path / 'parc-net-s_in1k.pth'
    assert to_parc.main(['parcnet', str(tmp_path / 'official.pt'), str(dst), '--arch', 's',
                         '--strict']) == 0
    cfg = Config.fromfile(osp.join(root, 'configs/parc_net/parc-net-s_8xb128-ms-300e_in1k.py'))
    from mmengine.registry import DefaultScope

    import parc_mm.models  # noqa: F401
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        import mmpretrain.models  # noqa: F401
        model = ROOT.build(cfg.model)
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    torch.testing.assert_close(model.head.fc.weight, src['classifier.fc.weight'])
    # --strict refuses an incomplete source and writes nothing
    del src['layer_3.1.spatial_global_rep.0.meta_kernel_1_H']
    torch.save(src, tmp_path / 'broken.pt')
    assert to_parc.main(['parcnet', str(tmp_path / 'broken.pt'), str(tmp_path / 'x.pth'),
                         '--strict']) == 1
    assert not (tmp_path / 'x.pth').exists()


def test_multi_scale_preprocessor_draws_sizes_in_training_only():
    from parc_mm.models import MultiScaleClsDataPreprocessor
    pre = MultiScaleClsDataPreprocessor(scales=(32, 48, 64), interval=2, seed=1,
                                        mean=[0, 0, 0], std=[255, 255, 255])
    data = dict(inputs=[torch.randint(0, 255, (3, 40, 40), dtype=torch.uint8)] * 2)
    sizes = [pre(data, training=True)['inputs'].shape[-1] for _ in range(40)]
    assert set(sizes) == {32, 48, 64}
    assert all(a == b for a, b in zip(sizes[::2], sizes[1::2]))  # one draw per 2 iterations
    out = pre(data, training=False)['inputs']
    assert out.shape[-2:] == (40, 40) and float(out.max()) <= 1.0
    with pytest.raises(ValueError, match='scales'):
        MultiScaleClsDataPreprocessor(scales=())


def test_ssd_head_predicts_where_mmdet_330_does_not():
    from mmdet.models.dense_heads import SSDHead as MMDetSSDHead
    from mmdet.structures import DetDataSample
    from mmengine.config import ConfigDict

    from parc_mm.models import SSDHead
    kw = dict(in_channels=(16, 16), num_classes=3, use_depthwise=True,
              anchor_generator=dict(type='SSDAnchorGenerator', scale_major=False,
                                    strides=[16, 32], ratios=[[2], [2]], min_sizes=[16, 32],
                                    max_sizes=[32, 64]),
              bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                              target_stds=[0.1, 0.1, 0.2, 0.2]),
              test_cfg=ConfigDict(nms_pre=100, nms=dict(type='nms', iou_threshold=0.45),
                                  min_bbox_size=0, score_thr=0.0, max_per_img=10))
    feats = (torch.randn(1, 16, 4, 4), torch.randn(1, 16, 2, 2))
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                         scale_factor=(1.0, 1.0)))
    from mmengine.registry import DefaultScope
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        theirs = MMDetSSDHead(**kw).eval()
        with pytest.raises(AttributeError, match='loss_cls'):  # if this passes, drop our fix
            theirs.predict(feats, [sample])
        ours = SSDHead(**kw).eval()
        ours.load_state_dict(theirs.state_dict())
        res = ours.predict(feats, [sample])[0]
    assert res.bboxes.shape[1] == 4 and 0 < len(res.scores) <= 10


@pytest.mark.parametrize('cfg_name,scope', [
    ('ssdlite_parc-net-s_8xb24-600e_coco.py', 'mmdet'),
    ('deeplabv3_parc-net-s-os16_4xb4-40k_voc12aug-512x512.py', 'mmseg')])
def test_converted_checkpoint_initialises_the_dense_prediction_configs(cfg_name, scope,
                                                                      tmp_path):
    """The converted ImageNet checkpoint is what the SSDLite / DeepLabV3 configs' init_cfg
    loads (prefix ``backbone.``): every backbone tensor comes from it, also at OS16."""
    import os.path as osp

    from mmengine.config import Config
    from mmengine.registry import MODELS as ROOT
    from mmengine.registry import DefaultScope

    from parc_mm.apis.tasks import sync_bn_to_bn
    out, _ = parcnet_to_parc(random_state_dict('parc_net_s', seed=7), 's')
    ckpt = str(tmp_path / 'parc-net-s_in1k.pth')
    torch.save({'state_dict': out}, ckpt)
    from tests.harness import ROOT as root
    cfg = Config.fromfile(osp.join(root, 'configs/parc_net', cfg_name))
    cfg.model.backbone.init_cfg.checkpoint = ckpt
    sync_bn_to_bn(cfg.model)
    import importlib
    importlib.import_module(f'{scope}.models')
    with DefaultScope.overwrite_default_scope(scope):
        model = ROOT.build(cfg.model)
        model.init_weights()
    for k, v in model.backbone.state_dict().items():
        torch.testing.assert_close(v, out['backbone.' + k], msg=k)

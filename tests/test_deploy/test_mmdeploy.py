"""mmdeploy for the three tasks (tools/deploy/deploy.py with the shipped deploy configs):
ONNX Runtime against PyTorch, int8, tools/infer.py on the deploy folder, the refusals."""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('onnxruntime')
pytest.importorskip('mmdeploy')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'deploy', 'deploy.py')
ENV = {'PATH': '/usr/bin:/bin', 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '2', 'HOME': '/tmp',
       'PYTHONWARNINGS': 'ignore'}
CASES = {  # task: model config, deploy config, library scope, images under the data root
    'cls': ('configs/demo/shapes_cls_parc-convnext.py',
            'configs/deploy/classification_onnxruntime_static-64x64.py', 'mmpretrain',
            'cls/val/[cr][ri]*/00000.png'),
    'seg': ('configs/demo/shapes_seg_parc-convnext_upernet.py',
            'configs/deploy/segmentation_onnxruntime_static-128x160.py', 'mmseg',
            'ade/images/validation/val_0000[0-2].jpg'),
    'det': ('configs/demo/shapes_det_parc-convnext_mask-rcnn.py',
            'configs/deploy/instance-seg_onnxruntime_static-128x160.py', 'mmdet',
            'coco/val/val_0000[0-2].jpg'),
}


def _run(script, *args):
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          cwd=ROOT, env=ENV)


@pytest.mark.parametrize('n_in,n_out', [(4, 6), (5, 6), (16, 6), (7, 3), (6, 3), (9, 9)])
def test_the_exact_adaptive_pooling_equals_torch(n_in, n_out):
    from parc_mm.deploy.mmdeploy.rewriters import adaptive_pool_matrix
    x = torch.randn(2, 3, n_in, n_in + 1)
    ref = F.adaptive_avg_pool2d(x, (n_out, n_out))
    got = torch.from_numpy(adaptive_pool_matrix(n_in, n_out)) @ x @ \
        torch.from_numpy(adaptive_pool_matrix(n_in + 1, n_out)).T
    assert torch.allclose(got, ref, atol=1e-6)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    from parc_mm.datasets import synthetic
    root = str(tmp_path_factory.mktemp('shapes'))
    synthetic.ensure(root)
    return root


@pytest.mark.parametrize('task', ['cls', 'seg', 'det'])
def test_deploy_equals_pytorch_and_infers_the_same(tmp_path, data_root, task):
    """The shipped deploy config through mmdeploy: the ONNX Runtime model predicts what the
    PyTorch one does (top-5 / > 99.5 % of pixels / every box with IoU > 0.99 and its mask),
    the int8 graph has every ParC conv quantized, and tools/infer.py on the deploy folder
    writes the checkpoint's predictions."""
    _check_deploy(tmp_path, data_root, task, CASES[task][0])


# the demo models with a small ParCNetV2 backbone (oversized linear convs in every block)
V2_BACKBONE = ("dict(_delete_=True, type='parc_mm.ParCNetV2', "
               "arch=dict(depths=[1, 1, 1, 1], channels=[32, 64, 128, 256]), {})")


@pytest.mark.parametrize('task', ['cls', 'seg', 'det'])
def test_parcnetv2_deploys_like_the_v1_families(tmp_path, data_root, task):
    """ParCNetV2 through the same deploy path: ONNX Runtime equals PyTorch, no DFT / guard in
    the graph, every oversized conv quantized in int8, tools/infer.py on the folder."""
    out = "out_indices=(3, )" if task == 'cls' else \
        "out_indices=(0, 1, 2, 3), gap_before_final_norm=False"
    cfg = tmp_path / f'v2_{task}.py'
    cfg.write_text(f"_base_ = ['{ROOT}/{CASES[task][0]}']\n"
                   f"model = dict(backbone={V2_BACKBONE.format(out)})\n")
    _check_deploy(tmp_path, data_root, task, str(cfg))


def test_empty_masks_of_both_backends_agree():
    """Two empty masks (an untrained mask head) are the same mask: IoU 1, not 0."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from parc_mm.deploy.mmdeploy.pipeline import compare_predictions
    samples = []
    for _ in range(2):
        s = DetDataSample()
        s.pred_instances = InstanceData(bboxes=torch.tensor([[0., 0., 4., 4.]]),
                                        scores=torch.tensor([0.9]), labels=torch.tensor([1]),
                                        masks=torch.zeros(1, 8, 8, dtype=torch.bool))
        samples.append(s)
    c = compare_predictions('det', *samples)
    assert c['matched'] == 1 and c['min_mask_iou'] == 1.0


def _check_deploy(tmp_path, data_root, task, config):
    import cv2
    import numpy as np

    from tests.harness import demo_checkpoint
    _, deploy_cfg, scope, pattern = CASES[task]
    ckpt = demo_checkpoint(tmp_path, config, scope)
    images = sorted(glob.glob(osp.join(data_root, pattern)))
    assert len(images) == 3
    out = tmp_path / 'deploy'
    calib = osp.dirname(images[0])
    p = _run(TOOL, deploy_cfg, config, ckpt, images[0], '--work-dir', str(out), '--test-img',
             *images[1:], '--int8', calib, '--int8-images', '4', '--score-thr', '0.05')
    assert p.returncode == 0, p.stderr[-4000:]
    for f in ('end2end.onnx', 'end2end_int8.onnx', 'deploy.json', 'pipeline.json',
              'detail.json'):
        assert (out / f).is_file(), f
    rec = json.loads((out / 'parc_export.json').read_text())
    assert rec['task'] == task and rec['non_portable'] == [], rec['non_portable']
    assert 'DFT' not in rec['ops'] and 'IsNaN' not in rec['ops']
    for img, c in rec['vs_pytorch'].items():
        if task == 'cls':
            assert c['top5_equal'] and c['max_score_diff'] < 1e-4, (img, c)
        elif task == 'seg':
            assert c['pixel_agreement'] > 0.995, (img, c)
        else:
            assert c['boxes_pytorch'] > 0 and c['boxes_backend'] == c['boxes_pytorch'], c
            assert c['matched'] == c['boxes_pytorch'] and c['min_mask_iou'] > 0.99, (img, c)
    q = rec['int8']
    assert q['parc'] > 0 and q['parc_int8'] == q['parc'] and q['float_parc'] == []
    assert q['conv_int8'] == q['conv']
    # tools/infer.py: the deploy folder (mmdeploy's backend model) against the checkpoint
    preds = {}
    for kind, model in (('pth', ckpt), ('onnx', str(out))):
        r = _run(osp.join(ROOT, 'tools', 'infer.py'), config, model, *images, '--out-dir',
                 str(tmp_path / kind), '--device', 'cpu', '--score-thr', '0.05')
        assert r.returncode == 0, r.stderr[-4000:]
        preds[kind] = json.loads((tmp_path / kind / 'predictions.json').read_text())
        assert len(preds[kind]) == 3 and all(osp.isfile(x['vis']) for x in preds[kind])
    for a, b in zip(preds['pth'], preds['onnx']):
        if task == 'cls':
            assert [t['label'] for t in a['top5']] == [t['label'] for t in b['top5']]
        elif task == 'seg':
            ma = cv2.imread(a['pred_png'], cv2.IMREAD_UNCHANGED)
            mb = cv2.imread(b['pred_png'], cv2.IMREAD_UNCHANGED)
            assert np.mean(ma == mb) > 0.995
        else:
            from parc_mm.deploy.mmdeploy.pipeline import _box_iou
            assert a['labels'] == b['labels'] and len(a['bboxes']) > 0
            iou = _box_iou(torch.tensor(a['bboxes']), torch.tensor(b['bboxes'])).diagonal()
            assert bool((iou > 0.99).all()), iou


def test_deploy_reports_the_test_metrics_of_pytorch_fp32_and_int8(tmp_path, data_root):
    from mmengine.config import Config

    from tests.harness import demo_checkpoint
    config, deploy_cfg, scope, pattern = CASES['cls']
    ckpt = demo_checkpoint(tmp_path, config, scope)
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.test_dataloader.dataset.data_root = osp.join(data_root, 'cls')
    local = str(tmp_path / 'cls.py')
    cfg.dump(local)
    images = sorted(glob.glob(osp.join(data_root, pattern)))
    p = _run(TOOL, deploy_cfg, local, ckpt, images[0], '--work-dir', str(tmp_path / 'd'),
             '--int8', osp.join(data_root, 'cls', 'train'), '--int8-images', '12', '--eval')
    assert p.returncode == 0, p.stderr[-4000:]
    m = json.loads((tmp_path / 'd' / 'parc_export.json').read_text())['test_metrics']
    top1 = {k: v['accuracy/top1'] for k, v in m.items()}
    assert top1['onnxruntime_fp32'] == pytest.approx(top1['pytorch'], abs=1e-6)
    assert 0 <= top1['onnxruntime_int8'] <= 100


def test_a_dynamic_deploy_config_is_refused_for_parc_models(tmp_path, data_root):
    dyn = tmp_path / 'dyn.py'
    base = f'{ROOT}/configs/deploy/classification_onnxruntime_static-64x64.py'
    dyn.write_text(f"_base_ = ['{base}']\n"
                   "onnx_config = dict(input_shape=None, dynamic_axes=dict(input={0: 'b', "
                   "2: 'h', 3: 'w'}, output={0: 'b'}))\n")
    config = CASES['cls'][0]
    img = sorted(glob.glob(osp.join(data_root, CASES['cls'][3])))[0]
    p = _run(TOOL, str(dyn), config, 'none.pth', img, '--work-dir', str(tmp_path / 'o'))
    assert p.returncode == 2 and 'static deploy config' in p.stderr, p.stderr[-2000:]


def test_a_checkpoint_that_does_not_fit_is_refused(tmp_path, data_root):
    toy = tmp_path / 'toy.pth'
    torch.save({'state_dict': {'a': torch.zeros(1)}}, toy)
    config, deploy_cfg = CASES['cls'][:2]
    img = sorted(glob.glob(osp.join(data_root, CASES['cls'][3])))[0]
    p = _run(TOOL, deploy_cfg, config, str(toy), img, '--work-dir', str(tmp_path / 'o'))
    assert p.returncode == 2 and 'does not fit the model' in p.stderr, p.stderr[-2000:]


def test_ssdlite_deploys_with_the_single_stage_config(tmp_path):
    """The 320x320 detection deploy config with the shipped SSDLite ParC-Net-S (random
    init; the score threshold lowered so that the untrained head gives boxes): the same
    boxes as PyTorch."""
    from parc_mm.apis.tasks import build_model, drop_pretrained, load_config
    config = tmp_path / 'ssd.py'
    config.write_text(
        f"_base_ = ['{ROOT}/configs/parc_net/ssdlite_parc-net-s_8xb24-600e_coco.py']\n"
        "model = dict(test_cfg=dict(score_thr=0.005, max_per_img=50))\n")
    cfg = load_config(str(config))
    drop_pretrained(cfg.model)
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'ssd.pth')
    torch.save({'state_dict': build_model(cfg).state_dict(), 'meta': {}}, ckpt)
    p = _run(TOOL, 'configs/deploy/detection_onnxruntime_static-320x320.py', str(config),
             ckpt, osp.join(ROOT, 'tests', 'data', 'cat.jpg'), '--work-dir',
             str(tmp_path / 'd'), '--score-thr', '0')
    assert p.returncode == 0, p.stderr[-4000:]
    rec = json.loads((tmp_path / 'd' / 'parc_export.json').read_text())
    c = next(iter(rec['vs_pytorch'].values()))
    assert c['boxes_pytorch'] == c['boxes_backend'] == c['matched'] == 50, c
    assert rec['non_portable'] == []


# --- the deploy folder is written whole ------------------------------------------------------
def test_a_redeploy_replaces_the_folder_whole(tmp_path, data_root):
    """A re-deploy without --int8 leaves no int8 graph of the earlier run (tools/infer.py
    would run it); the folder's manifest verifies after each run."""
    from parc_mm.utils.fileio import verify_folder
    from tests.harness import demo_checkpoint
    config, deploy_cfg, scope, pattern = CASES['cls']
    ckpt = demo_checkpoint(tmp_path, config, scope)
    img = sorted(glob.glob(osp.join(data_root, pattern)))[0]
    out = tmp_path / 'd'
    p = _run(TOOL, deploy_cfg, config, ckpt, img, '--work-dir', str(out), '--int8',
             osp.dirname(img), '--int8-images', '2')
    assert p.returncode == 0, p.stderr[-3000:]
    assert (out / 'end2end_int8.onnx').is_file()
    verify_folder(str(out))
    p = _run(TOOL, deploy_cfg, config, ckpt, img, '--work-dir', str(out))
    assert p.returncode == 0, p.stderr[-3000:]
    assert not (out / 'end2end_int8.onnx').exists()
    man = verify_folder(str(out))
    assert 'end2end.onnx' in man['files'] and 'parc_export.json' in man['files']
    text = ''.join((out / f).read_text() for f in ('deploy.json', 'detail.json',
                                                   'pipeline.json', 'parc_export.json'))
    assert 'parc-stage' not in text  # no record points into the staging folder
    # a trace image the static 64x64 graph cannot take: refused, the folder as it was
    big = sorted(glob.glob(osp.join(data_root, CASES['seg'][3])))[0]
    p = _run(TOOL, deploy_cfg, config, ckpt, big, '--work-dir', str(out))
    assert p.returncode == 2 and 'traced at 128x160' in p.stderr and 'static at 64x64' in p.stderr
    assert verify_folder(str(out))['files'] == man['files']


def test_deploy_refuses_a_foreign_folder_and_an_absent_gpu(tmp_path, data_root):
    config, deploy_cfg, scope, pattern = CASES['cls']
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'deploy.json').write_text('{"mine": 1}')
    img = sorted(glob.glob(osp.join(data_root, pattern)))[0]
    p = _run(TOOL, deploy_cfg, config, 'none.pth', img, '--work-dir', str(user))
    assert p.returncode == 2 and 'was not written by parc_mm' in p.stderr
    assert (user / 'deploy.json').read_text() == '{"mine": 1}'
    if not torch.cuda.is_available():
        p = _run(TOOL, deploy_cfg, config, 'none.pth', img, '--work-dir', str(tmp_path / 'g'),
                 '--device', 'cuda')
        assert p.returncode == 2 and 'no usable CUDA device' in p.stderr


def test_int8_calibration_names_and_skips_bad_images(tmp_path, data_root):
    """An undecodable file and an image of another size are skipped by name; links to the
    folder itself are not followed (the listing ends)."""
    import os
    import shutil

    from parc_mm.apis.inference import list_images
    from tests.harness import demo_checkpoint
    config, deploy_cfg, scope, pattern = CASES['cls']
    ckpt = demo_checkpoint(tmp_path, config, scope)
    imgs = sorted(glob.glob(osp.join(data_root, pattern)))
    calib = tmp_path / 'calib'
    calib.mkdir()
    for i, im in enumerate(imgs[:2]):
        shutil.copy(im, calib / f'ok{i}.png')
    (calib / 'broken.png').write_bytes(b'not a png')
    shutil.copy(sorted(glob.glob(osp.join(data_root, CASES['seg'][3])))[0], calib / 'big.jpg')
    os.symlink(str(calib), str(calib / 'loop'))
    os.symlink('..', str(calib / 'up'))
    assert len(list_images(str(calib), recursive=True)) == 4
    p = _run(TOOL, deploy_cfg, config, ckpt, imgs[0], '--work-dir', str(tmp_path / 'd'),
             '--int8', str(calib))
    assert p.returncode == 0, p.stderr[-3000:]
    q = json.loads((tmp_path / 'd' / 'parc_export.json').read_text())['int8']
    assert q['calibration_images'] == 2
    reasons = {osp.basename(s['image']): s['reason'] for s in q['skipped_images']}
    assert 'not a decodable image' in reasons['broken.png']
    assert 'the graph takes [1, 3, 64, 64]' in reasons['big.jpg']


def test_deploy_takes_trust_checkpoint_for_pickled_objects(tmp_path, data_root):
    import argparse

    from tests.harness import demo_checkpoint
    config, deploy_cfg, scope, pattern = CASES['cls']
    obj = torch.load(demo_checkpoint(tmp_path, config, scope))
    obj['args'] = argparse.Namespace(lr=0.1)
    torch.save(obj, tmp_path / 'ns.pth')
    img = sorted(glob.glob(osp.join(data_root, pattern)))[0]
    p = _run(TOOL, deploy_cfg, config, str(tmp_path / 'ns.pth'), img, '--work-dir',
             str(tmp_path / 'd'))
    assert p.returncode == 2 and '--trust-checkpoint' in p.stderr
    p = _run(TOOL, deploy_cfg, config, str(tmp_path / 'ns.pth'), img, '--work-dir',
             str(tmp_path / 'd'), '--trust-checkpoint')
    assert p.returncode == 0, p.stderr[-3000:]

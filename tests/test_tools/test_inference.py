"""Inference as users run it: the libraries' Inferencers and tools/infer.py on a real photo,
with our configs and checkpoints (one converted from the official weight layout)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PHOTO = osp.join(ROOT, 'tests', 'data', 'cat.jpg')
PY = sys.executable


def _demo_checkpoint(tmp_path, config, scope):
    """A checkpoint of the demo config's model (random init) with its dataset meta, as a
    Runner would save it."""
    import importlib

    from mmengine.config import Config

    from parc_mm.datasets import synthetic
    from tests.harness import build_model
    cfg = Config.fromfile(osp.join(ROOT, config))
    for m in cfg.custom_imports['imports']:
        importlib.import_module(m)
    torch.manual_seed(0)
    model = build_model(cfg, scope)
    task = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}[scope]
    meta = synthetic.metainfo(task)
    path = str(tmp_path / f'{task}.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {k: list(v) for k, v in meta.items()}}}, path)
    return path


def _is_image(path):
    import cv2
    img = cv2.imread(path)
    return img is not None and img.shape[0] > 0


@pytest.mark.parametrize('config,scope', [
    ('configs/demo/shapes_det_parc-convnext_mask-rcnn.py', 'mmdet'),
    ('configs/demo/shapes_seg_parc-convnext_upernet.py', 'mmseg'),
    ('configs/demo/shapes_cls_parc-convnext.py', 'mmpretrain')])
def test_infer_tool_each_task(tmp_path, config, scope):
    ckpt = _demo_checkpoint(tmp_path, config, scope)
    out = tmp_path / 'out'
    p = subprocess.run([PY, osp.join(ROOT, 'tools/infer.py'), osp.join(ROOT, config), ckpt,
                        PHOTO, '--out-dir', str(out), '--score-thr', '0.0', '--device', 'cpu'],
                       capture_output=True, text=True, cwd=str(tmp_path),
                       env={'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin',
                            'HOME': str(tmp_path)})
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    preds = json.load(open(out / 'predictions.json'))
    assert len(preds) == 1 and preds[0]['image'] == PHOTO
    assert preds[0]['vis'].startswith(str(out / 'vis')) and _is_image(preds[0]['vis'])
    from parc_mm.datasets import synthetic
    if scope == 'mmdet':
        assert preds[0]['scores'] and set(preds[0]['classes']) <= set(synthetic.CLASSES)
        assert all(len(b) == 4 for b in preds[0]['bboxes'])
    elif scope == 'mmseg':
        assert abs(sum(preds[0]['class_fractions'].values()) - 1) < 1e-3
        assert _is_image(preds[0]['pred_png'])
    else:
        assert preds[0]['pred_class'] == synthetic.CLASSES[preds[0]['pred_label']]


def test_imagenet_inferencer_and_get_model_with_converted_official_weights(tmp_path):
    """Official ParC-ConvNeXt-XT weights (their key layout; random values) -> to_parc.py ->
    mmpretrain's get_model / ImageClassificationInferencer with our ImageNet config."""
    from tests.reference import random_state_dict
    src = tmp_path / 'official_xt.pth'
    torch.save({'model': random_state_dict('parc_convnext_xt')}, str(src))
    ckpt = tmp_path / 'checkpoints' / 'parc-convnext-xt_in1k.pth'
    p = subprocess.run([PY, osp.join(ROOT, 'tools/model_converters/to_parc.py'), 'convnext',
                        str(src), str(ckpt), '--arch', 'xt'], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    from mmengine.registry import DefaultScope
    from mmpretrain import get_model
    from mmpretrain.apis import ImageClassificationInferencer

    import parc_mm.models  # noqa: F401
    cfg = osp.join(ROOT, 'configs/parc_convnext/parc-convnext-xt_32xb128_in1k.py')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = get_model(cfg, pretrained=str(ckpt))
        sd = torch.load(str(ckpt))['state_dict']
        torch.testing.assert_close(model.state_dict()['backbone.stages.2.8.depthwise_conv.'
                                                      'parc_h.weight'],
                                   sd['backbone.stages.2.8.depthwise_conv.parc_h.weight'])
        inf = ImageClassificationInferencer(cfg, pretrained=str(ckpt), device='cpu')
        res = inf(PHOTO, show_dir=str(tmp_path / 'vis'))[0]
    assert 0 <= res['pred_label'] < 1000 and isinstance(res['pred_class'], str)
    assert _is_image(str(tmp_path / 'vis' / 'cat.png')) or _is_image(
        str(tmp_path / 'vis' / 'cat.jpg'))


def test_class_folder_images_with_the_same_name_get_their_own_drawing(tmp_path):
    """Class folders repeat file names (cls/val/<class>/00000.png): one drawing each, and the
    returned name is the folder's (labels and names come from one sorted tuple)."""
    from parc_mm.apis.inference import infer
    from parc_mm.datasets import synthetic
    root = synthetic.generate(str(tmp_path / 'shapes'), num_train=1, num_val=1,
                              cls_per_class=(1, 1))
    config = 'configs/demo/shapes_cls_parc-convnext.py'
    ckpt = _demo_checkpoint(tmp_path, config, 'mmpretrain')
    imgs = [osp.join(root, 'cls', 'val', c, '00000.png') for c in synthetic.CLASSES[:3]]
    preds = infer(osp.join(ROOT, config), ckpt, imgs, str(tmp_path / 'out'))
    assert len({p['vis'] for p in preds}) == 3 and all(_is_image(p['vis']) for p in preds)
    assert all(p['pred_class'] == synthetic.CLASSES[p['pred_label']] for p in preds)

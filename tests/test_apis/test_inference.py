"""Inference as users run it: the libraries' Inferencers and tools/infer.py on a real photo,
with our configs and checkpoints (one converted from the official weight layout)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.harness import demo_checkpoint
from tests.harness import run_py as _run

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PHOTO = osp.join(ROOT, 'tests', 'data', 'cat.jpg')
PY = sys.executable


def _is_image(path):
    import cv2
    img = cv2.imread(path)
    return img is not None and img.shape[0] > 0


@pytest.mark.parametrize('config,scope', [
    ('configs/demo/shapes_det_parc-convnext_mask-rcnn.py', 'mmdet'),
    ('configs/demo/shapes_seg_parc-convnext_upernet.py', 'mmseg'),
    ('configs/demo/shapes_cls_parc-convnext.py', 'mmpretrain')])
def test_infer_tool_each_task(tmp_path, config, scope):
    ckpt = demo_checkpoint(tmp_path, config, scope)
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
    ckpt = demo_checkpoint(tmp_path, config, 'mmpretrain')
    imgs = [osp.join(root, 'cls', 'val', c, '00000.png') for c in synthetic.CLASSES[:3]]
    preds = infer(osp.join(ROOT, config), ckpt, imgs, str(tmp_path / 'out'))
    assert len({p['vis'] for p in preds}) == 3 and all(_is_image(p['vis']) for p in preds)
    assert all(p['pred_class'] == synthetic.CLASSES[p['pred_label']] for p in preds)


# --- hostile cases: infer ---

@pytest.fixture(scope='module')
def cls_ckpt(tmp_path_factory):
    from tests.harness import demo_checkpoint
    return demo_checkpoint(tmp_path_factory.mktemp('ckpt'), 'configs/demo/shapes_cls_parc-'
                            'convnext.py', 'mmpretrain')


def test_infer_skips_bad_images_keeps_the_rest_and_draws_each(tmp_path, cls_ckpt):
    import shutil
    photos = tmp_path / 'photos'
    photos.mkdir()
    cat = osp.join(ROOT, 'tests', 'data', 'cat.jpg')
    shutil.copy(cat, photos / 'a.jpg')
    import cv2
    cv2.imwrite(str(photos / 'a.png'), cv2.imread(cat))
    (photos / 'b.jpg').write_bytes(b'\xff\xd8\xff garbage')  # unreadable
    (photos / 'c.jpg').write_bytes(b'')
    out = tmp_path / 'out'
    p = _run([osp.join(ROOT, 'tools', 'infer.py'), osp.join(ROOT, 'configs/demo/'
              'shapes_cls_parc-convnext.py'), cls_ckpt, str(photos), '--out-dir', str(out),
              '--device', 'cpu'], check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    preds = json.load(open(out / 'predictions.json'))
    assert sorted(osp.basename(r['image']) for r in preds) == ['a.jpg', 'a.png']
    assert len({r['vis'] for r in preds}) == 2 and all(osp.isfile(r['vis']) for r in preds)
    skipped = json.load(open(out / 'skipped.json'))
    assert sorted(osp.basename(s['image']) for s in skipped) == ['b.jpg', 'c.jpg']
    assert 'b.jpg' in p.stderr and 'c.jpg' in p.stderr


def test_infer_refuses_a_checkpoint_that_fits_nothing(tmp_path):
    toy = tmp_path / 'toy.pth'
    torch.save({'state_dict': {'a': torch.zeros(2), 'b': torch.zeros(3)}}, toy)
    p = _run([osp.join(ROOT, 'tools', 'infer.py'), osp.join(ROOT, 'configs/demo/'
              'shapes_det_parc-convnext_mask-rcnn.py'), str(toy),
              osp.join(ROOT, 'tests', 'data', 'cat.jpg'), '--out-dir', str(tmp_path / 'o'),
              '--device', 'cpu'], check=False)
    assert p.returncode == 2 and 'does not fit the model' in p.stderr, p.stderr[-2000:]


def test_infer_class_names_come_from_the_config_not_coco(tmp_path):
    """A checkpoint without dataset meta: the Inferencer would name COCO classes."""
    from parc_mm.apis.inference import infer
    from parc_mm.datasets import synthetic
    from tests.harness import demo_checkpoint
    config = 'configs/demo/shapes_det_parc-convnext_mask-rcnn.py'
    ckpt = demo_checkpoint(tmp_path, config, 'mmdet')
    sd = torch.load(ckpt)
    torch.save({'state_dict': sd['state_dict']}, ckpt)  # no meta
    preds = infer(osp.join(ROOT, config), ckpt, osp.join(ROOT, 'tests', 'data', 'cat.jpg'),
                  str(tmp_path / 'out'), score_thr=0.0)
    assert preds[0]['classes'] and set(preds[0]['classes']) <= set(synthetic.CLASSES)


def test_infer_skips_images_beyond_the_pixel_limit(tmp_path):
    import cv2
    import numpy as np

    from parc_mm.apis.inference import check_image
    big = tmp_path / 'big.png'
    cv2.imwrite(str(big), np.zeros((1200, 1000, 3), np.uint8))
    assert 'more than the' in check_image(str(big), max_pixels=1_000_000)
    assert check_image(str(big), max_pixels=2_000_000) is None

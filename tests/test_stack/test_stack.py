"""The OpenMMLab stack works on CPU: one loss step + one inference per library, from the
libraries' own configs."""
import torch

from parc_mm.utils import collect_env
from tests.harness import (
    build_model,
    cls_batch,
    det_batch,
    load_cfg,
    seg_batch,
    train_step_and_predict,
)


def test_mmcv_ops_and_imports():
    assert 'nms' in collect_env.check_mmcv_ops()
    collect_env.check_imports()


def test_runner_checkpoint_roundtrip_weights_only():
    collect_env.check_runner_checkpoint()


def test_import_parc_mm_is_cheap():
    import subprocess
    import sys
    code = ('import sys, parc_mm, parc_mm.ops; '
            'bad = [m for m in ("mmdet", "mmseg", "mmpretrain", "mmcv") if m in sys.modules]; '
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_mask_rcnn_r50_fpn():
    cfg = load_cfg('mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py')
    model = build_model(cfg, 'mmdet')
    losses, preds = train_step_and_predict(model, det_batch(size=(160, 224)), 'mmdet')
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    assert len(preds) == 2
    inst = preds[0].pred_instances
    assert inst.bboxes.shape[1] == 4 and inst.masks.shape[1:] == (160, 224)


def test_upernet_r50_syncbn_to_bn():
    cfg = load_cfg('mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py')
    cfg.model.data_preprocessor.size = (128, 128)
    model = build_model(cfg, 'mmseg')
    assert not any('SyncBatchNorm' in type(m).__name__ for m in model.modules())
    losses, preds = train_step_and_predict(model, seg_batch(size=(128, 128)), 'mmseg')
    assert 'decode.loss_ce' in losses and 'aux.loss_ce' in losses
    assert preds[0].pred_sem_seg.data.shape == (1, 128, 128)


def test_mmpretrain_classifier():
    cfg = load_cfg('mmpretrain::resnet/resnet18_8xb32_in1k.py')
    model = build_model(cfg, 'mmpretrain')
    losses, preds = train_step_and_predict(model, cls_batch(), 'mmpretrain')
    assert 'loss' in losses
    assert preds[0].pred_score.shape == (1000, )
    torch.testing.assert_close(preds[0].pred_score.sum(), torch.tensor(1.0))

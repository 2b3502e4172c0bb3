"""The OpenMMLab stack works on CPU: one loss step + one inference per library, from the
libraries' own configs."""
import torch

from parc_mm.apis import collect_env
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
    assert collect_env.check_imports().endswith("imported")


def test_runner_checkpoint_roundtrip_weights_only():
    assert collect_env.check_runner_checkpoint().startswith("Runner checkpoint saved and resumed")


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


def test_models_import_with_only_mmpretrain(tmp_path):
    """A classification-only install: the stack without mmdet / mmseg on the path."""
    import os
    import subprocess
    import sys
    import sysconfig
    site = sysconfig.get_paths()['purelib']
    farm = tmp_path / 'site'
    farm.mkdir()
    for name in os.listdir(site):
        if not name.lower().startswith(('mmdet', 'mmseg')) and not name.endswith('.pth'):
            os.symlink(os.path.join(site, name), farm / name)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = ('import importlib.util as u, sys; assert u.find_spec("mmdet") is None; '
            'import parc_mm.models as m; '
            'assert "ParCConvNeXt" in m.__all__ and "ParCFPN" not in m.__all__; '
            'assert not [k for k in sys.modules if k.startswith(("mmdet", "mmseg"))]')
    env = {'PYTHONPATH': f'{root}:{farm}', 'PATH': os.environ['PATH']}
    p = subprocess.run([sys.executable, '-S', '-c', code], env=env, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr[-3000:]


def test_installer_keeps_setuptools_and_installs_mim():
    from importlib.metadata import version

    from packaging.version import Version
    assert Version('77.0.3') <= Version(version('setuptools')) < Version('81')
    assert Version(version('packaging')) >= Version('25')  # openxlab would pin 24.x
    import mim  # noqa: F401  (openmim, installed without openxlab)

"""Every shipped config builds, trains an iteration and runs a validation pass through the
real mmengine Runner on the synthetic data (real COCO / ADE20K / class-folder formats)."""
import glob
import math
import os.path as osp

import pytest
from mmengine.config import Config

from parc_mm.testing import smoke_config, task_of

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
    if not osp.basename(p).startswith('_') and '/deploy/' not in p
    # the real-image configs train on their own data (grey channels, the pointer task): each
    # runs through tools/train.py + tools/test.py in tests/test_tools/test_real_data_experiment
    and '/fashion/' not in p)


@pytest.fixture(scope='session')
def data_root(tmp_path_factory):
    from parc_mm.datasets import synthetic
    root = str(tmp_path_factory.mktemp('shapes'))
    # small split sizes keep generation ~1 s; the formats are the real ones
    return synthetic.generate(root, num_train=8, num_val=4, cls_per_class=(4, 2))


def test_configs_found():
    assert len(CONFIGS) >= 11


@pytest.mark.parametrize('cfg_path', CONFIGS)
def test_config_trains_and_validates(cfg_path, data_root, tmp_path):
    from mmengine.runner import Runner
    cfg = Config.fromfile(osp.join(ROOT, cfg_path))
    task = task_of(cfg)
    cfg = smoke_config(cfg, data_root, str(tmp_path), max_iters=1, num_val=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    loss = runner.message_hub.log_scalars['train/loss'].current()
    assert math.isfinite(loss), loss
    metrics = runner.val()
    keys = {'det': ['coco/bbox_mAP'], 'seg': ['mIoU'], 'cls': ['accuracy/top1']}[task]
    if task == 'det' and 'segm' in str(cfg.val_evaluator):
        keys.append('coco/segm_mAP')
    for k in keys:
        assert k in metrics and math.isfinite(metrics[k]), metrics

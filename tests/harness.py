"""Build a model from a library config and run one loss step / one inference on CPU.

The harness every ParC config plugs into: configs are loaded exactly as the libraries ship
them (``mmdet::``, ``mmseg::``, ``mmpretrain::``), with only pretrained downloads and SyncBN
switched off.
"""
from __future__ import annotations

import math
import os
import os.path as osp
import subprocess
import sys

import torch
from mmengine.registry import DefaultScope

from parc_mm.apis import tasks

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PY = sys.executable
# a child process that imports this checkout, one thread
ENV = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1'}


def run_py(args, check=True, env=None, **kw):
    """``python ARGS`` from the repository root; with ``check``, a failure raises with the
    end of its output."""
    p = subprocess.run([PY] + list(args), capture_output=True, text=True, env=env or ENV,
                       cwd=ROOT, **kw)
    if check and p.returncode:
        raise AssertionError(p.stdout[-2000:] + p.stderr[-3000:])
    return p


def file_tree(path):
    """{relative path: bytes} of every file under ``path`` (what must survive)."""
    out = {}
    for d, _, files in os.walk(path):
        for f in files:
            full = osp.join(d, f)
            with open(full, 'rb') as fh:
                out[osp.relpath(full, path)] = fh.read()
    return out


def load_cfg(name: str):
    """A config as the tools load it (:func:`parc_mm.apis.tasks.load_config`), or a library's
    own (``mmdet::...``, for the baselines), pretrained downloads and SyncBN switched off."""
    if '::' in name and not name.startswith('parc_mm::'):
        from mmengine.hub import get_config
        cfg = get_config(name)
        tasks.register_scope(cfg)
    else:
        cfg = tasks.load_config(name)
    tasks.drop_pretrained(cfg.model)
    tasks.sync_bn_to_bn(cfg.model)
    return cfg


def build_model(cfg, scope: str = None):
    """:func:`parc_mm.apis.tasks.build_model`, then ``init_weights`` (quietly: it logs every
    parameter). ``scope``: checked against the config's library."""
    from mmengine.logging import MMLogger
    if scope is not None:
        assert tasks.TASKS[tasks.task_of(cfg)].scope == scope, (scope, cfg.get('default_scope'))
    model = tasks.build_model(cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def _finite_total(losses: dict) -> torch.Tensor:
    total = 0
    for k, v in losses.items():
        if 'loss' not in k:
            continue
        vs = v if isinstance(v, (list, tuple)) else [v]
        for t in vs:
            assert torch.isfinite(t).all(), (k, t)
            total = total + t.sum()
    assert isinstance(total, torch.Tensor) and math.isfinite(total.item())
    return total


def det_batch(n: int = 2, size=(192, 256), num_classes: int = 80):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    h, w = size
    for _ in range(n):
        inputs.append(torch.randint(0, 255, (3, h, w), generator=g, dtype=torch.uint8))
        boxes = torch.tensor([[20., 30., 120., 150.], [100., 40., 200., 110.]])
        masks = torch.zeros(2, h, w, dtype=torch.uint8)
        for i, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
            masks[i, y0:y1, x0:x1] = 1
        ds = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                         scale_factor=(1.0, 1.0), pad_shape=(h, w),
                                         batch_input_shape=(h, w)))
        ds.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, num_classes - 1]),
                                       masks=BitmapMasks(masks.numpy(), h, w))
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def seg_batch(n: int = 2, size=(128, 128), num_classes: int = 150):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 255, (3, *size), generator=g, dtype=torch.uint8))
        ds = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
        ds.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, *size), generator=g))
        samples.append(ds)
    return dict(inputs=inputs, data_samples=samples)


def cls_batch(n: int = 2, size=(64, 64), num_classes: int = 1000):
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randint(0, 255, (3, *size), generator=g, dtype=torch.uint8)
              for _ in range(n)]
    samples = [DataSample().set_gt_label(i % num_classes) for i in range(n)]
    return dict(inputs=inputs, data_samples=samples)


def train_step_and_predict(model, batch: dict, scope: str):
    """One forward+backward of the losses, then one inference; returns (losses, preds)."""
    with DefaultScope.overwrite_default_scope(scope):
        model.train()
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        total = _finite_total(losses)
        total.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        model.eval()
        with torch.no_grad():
            data = model.data_preprocessor(batch, False)
            preds = model(**data, mode='predict')
    return losses, preds


def demo_checkpoint(tmp_path, config, scope):
    """A checkpoint of the demo config's model (random init) with its dataset meta, as a
    Runner would save it."""
    from parc_mm.datasets import synthetic
    cfg = load_cfg(osp.join(ROOT, config))
    torch.manual_seed(0)
    model = build_model(cfg, scope)
    task = {'mmdet': 'det', 'mmseg': 'seg', 'mmpretrain': 'cls'}[scope]
    meta = synthetic.metainfo(task)
    path = str(tmp_path / f'{task}.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {k: list(v) for k, v in meta.items()}}}, path)
    return path

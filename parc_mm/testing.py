"""Test helper: shrink any mmdet / mmseg / mmpretrain config for a CPU smoke run on the
synthetic data (every shipped config trains an iteration and validates through the real
Runner in the tests). The model is left as configured — only what a CPU run on small
data cannot do is changed: the dataset (synthetic, in the real on-disk formats), image
scales (divided by ``shrink``), iteration counts, AMP (asserts a GPU), SyncBN and
pretrained downloads.
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import Any, Optional

from mmengine.config import Config, ConfigDict

from parc_mm.apis.tasks import TASKS, drop_pretrained, sync_bn_to_bn, task_of  # noqa: F401
from parc_mm.datasets import synthetic

# keys of pipeline transforms / preprocessors / test_cfg holding pixel sizes
_SIZE_KEYS = ('scale', 'scales', 'crop_size', 'img_scale', 'size', 'stride', 'edge_size')


def _shrink_sizes(obj: Any, f: float, min_size: int) -> Any:
    def s(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            return v
        out = max(min_size, int(round(v * f)))
        return out if isinstance(v, int) else float(out)

    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in _SIZE_KEYS:
                if isinstance(v, (list, tuple)):
                    obj[k] = type(v)(
                        type(x)(s(y) for y in x) if isinstance(x, (list, tuple)) else s(x)
                        for x in v)
                else:
                    obj[k] = s(v)
            else:
                _shrink_sizes(v, f, min_size)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _shrink_sizes(v, f, min_size)
    return obj


def _set_key(obj: Any, key: str, value: Any) -> None:
    if isinstance(obj, dict):
        for k in list(obj.keys()):
            if k == key:
                obj[k] = value
            else:
                _set_key(obj[k], key, value)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _set_key(v, key, value)


def _det_dataset(root: str, split: str, meta: dict) -> dict:
    ds = dict(type='CocoDataset', data_root=osp.join(root, TASKS['det'].data),
              ann_file=f'annotations/instances_{split}.json', data_prefix=dict(img=f'{split}/'),
              metainfo=meta)
    if split == 'train':
        ds['filter_cfg'] = dict(filter_empty_gt=True, min_size=4)
    else:
        ds['test_mode'] = True
    return ds


def _seg_dataset(root: str, split: str, meta: dict) -> dict:
    sub = 'training' if split == 'train' else 'validation'
    return dict(type='BaseSegDataset', data_root=osp.join(root, TASKS['seg'].data),
                data_prefix=dict(img_path=f'images/{sub}', seg_map_path=f'annotations/{sub}'),
                img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True, metainfo=meta)


def _cls_dataset(root: str, split: str, meta: dict) -> dict:
    return dict(type='CustomDataset', data_root=osp.join(root, TASKS['cls'].data),
                data_prefix=split, with_label=True, metainfo=dict(classes=meta['classes']))


# the synthetic data of each task as its library's dataset config
_DATASETS = {'det': _det_dataset, 'seg': _seg_dataset, 'cls': _cls_dataset}


def _dataset(task: str, split: str, root: str, pipeline, extra: dict) -> dict:
    ds = _DATASETS[task](root, split, synthetic.metainfo(task))
    ds['pipeline'] = pipeline
    ds.update(extra)
    return ds


def _inner_dataset(loader_cfg: dict) -> dict:
    ds = loader_cfg['dataset']
    # RepeatDataset / ClassBalanced wrappers; ConcatDataset (e.g. VOC + SBD aug): the first
    while 'pipeline' not in ds and ('dataset' in ds or 'datasets' in ds):
        ds = ds['dataset'] if 'dataset' in ds else ds['datasets'][0]
    return ds


def smoke_config(cfg: Config,
                 data_root: str,
                 work_dir: str,
                 shrink: Optional[float] = None,
                 max_iters: int = 1,
                 num_val: Optional[int] = 2,
                 batch_size: int = 2,
                 val_interval: Optional[int] = None) -> Config:
    """A copy of ``cfg`` that trains ``max_iters`` iterations on the synthetic data under
    ``data_root`` (generated if missing), on CPU. Validation runs every ``val_interval``
    iterations, or (None) not during training: call ``runner.val()``."""
    cfg = copy.deepcopy(cfg)
    task = task_of(cfg)
    synthetic.ensure(data_root)
    f = shrink if shrink is not None else TASKS[task].smoke_shrink
    n_cls = len(synthetic.metainfo(task)['classes'])

    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(name) is None:
            continue
        dl = cfg[name]
        split = 'train' if name == 'train_dataloader' else 'val'
        pipeline = _shrink_sizes(copy.deepcopy(_inner_dataset(dl)['pipeline']), f, 16)
        extra = {}
        if split != 'train' and num_val is not None:
            extra['indices'] = num_val
        dl['dataset'] = ConfigDict(_dataset(task, split, data_root, pipeline, extra))
        dl['batch_size'] = batch_size if split == 'train' else 1
        dl['num_workers'] = 0
        dl['persistent_workers'] = False
    for name in ('val_evaluator', 'test_evaluator'):
        ev = cfg.get(name)
        if ev is None:
            continue
        for e in (ev if isinstance(ev, list) else [ev]):
            if e.get('type') == 'CocoMetric':
                e['ann_file'] = osp.join(data_root, TASKS['det'].data, 'annotations',
                                         'instances_val.json')
            if e.get('type') == 'Accuracy':
                e['topk'] = (1, )

    model = cfg.model
    bb = model.get('backbone') or {}
    if task == 'cls' and str(bb.get('type', '')).split('.')[-1] == 'SwinTransformer':
        # mmpretrain's window attention refuses maps below its window (7) unless it may pad:
        # the shrunk inputs give the last stage 3x3 maps
        bb['pad_small_map'] = True
    _set_key(model, 'num_classes', n_cls)
    drop_pretrained(model)
    sync_bn_to_bn(model)
    if model.get('data_preprocessor') is not None:
        _shrink_sizes(model['data_preprocessor'], f, 16)
    if model.get('test_cfg') is not None and task == 'seg':
        _shrink_sizes(model['test_cfg'], f, 16)
    if task == 'det':
        # fewer proposals / detections: CPU time goes to RoI heads; score_thr 0 so that an
        # untrained detector still hands the COCO evaluator something to score
        train, test = model.get('train_cfg') or {}, model.get('test_cfg') or {}
        for rpn in (train.get('rpn_proposal'), test.get('rpn')):
            if isinstance(rpn, dict):
                for k, v in (('max_per_img', 200), ('nms_pre', 400)):
                    if k in rpn:
                        rpn[k] = v
        det_head = test.get('rcnn') if 'rcnn' in test else test
        if isinstance(det_head, dict):
            for k, v in (('max_per_img', 20), ('score_thr', 0.0)):
                if k in det_head:
                    det_head[k] = v
    if cfg.get('data_preprocessor') is not None:
        _shrink_sizes(cfg['data_preprocessor'], f, 16)
        _set_key(cfg['data_preprocessor'], 'num_classes', n_cls)
    if task == 'cls':  # (head / loss num_classes were set by _set_key above)
        ta = model.get('train_cfg') or {}
        for a in ta.get('augments', []) or []:
            a.pop('num_classes', None)

    # iterations, CPU optimiser wrapper, logging, no checkpoints
    cfg.train_cfg = ConfigDict(type='IterBasedTrainLoop', max_iters=max_iters,
                               val_interval=val_interval or max_iters,
                               val_begin=1 if val_interval else max_iters + 1)
    cfg.log_processor = ConfigDict(by_epoch=False, window_size=1)
    cfg.val_cfg = ConfigDict(type='ValLoop')
    cfg.test_cfg = ConfigDict(type='TestLoop')
    for dl in ('train_dataloader', ):
        sampler = cfg[dl].get('sampler') or {}
        if sampler.get('type') == 'InfiniteSampler' or task == 'det':
            cfg[dl]['sampler'] = ConfigDict(type='DefaultSampler', shuffle=True)
        cfg[dl].pop('batch_sampler', None)
    ow = cfg.optim_wrapper
    if ow.get('type') == 'AmpOptimWrapper':
        ow['type'] = 'OptimWrapper'
        ow.pop('loss_scale', None)
    cfg.param_scheduler = []
    cfg.default_hooks = ConfigDict(
        timer=dict(type='IterTimerHook'),
        logger=dict(type='LoggerHook', interval=1),
        param_scheduler=dict(type='ParamSchedulerHook'),
        # save_last=False: otherwise the run ends by writing a full checkpoint (up to 1 GB
        # with the optimiser state of a full-width model) that nothing reads
        checkpoint=dict(type='CheckpointHook', interval=-1, save_last=False),
        sampler_seed=dict(type='DistSamplerSeedHook'))
    cfg.custom_hooks = [h for h in cfg.get('custom_hooks', []) or []
                        if h.get('type') != 'EMAHook'] or []
    cfg.visualizer = ConfigDict(type=cfg.visualizer['type'],
                                vis_backends=[dict(type='LocalVisBackend')]) \
        if cfg.get('visualizer') else None
    cfg.work_dir = work_dir
    # a unique name: Runners in one process otherwise share a DefaultScope instance
    import uuid
    cfg.experiment_name = f'smoke_{uuid.uuid4().hex[:8]}'
    cfg.launcher = 'none'
    cfg.env_cfg = ConfigDict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'),
                             mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0))
    cfg.pop('auto_scale_lr', None)
    cfg.load_from = None
    cfg.resume = False
    return cfg

"""What tools/train.py and tools/test.py do to a config before handing it to the Runner."""
from __future__ import annotations

import importlib
import os
import os.path as osp
from typing import Iterator, List, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

SCOPES = ('mmdet', 'mmseg', 'mmpretrain')
DEMO_HINT = ('For the built-in demo data run: python -m parc_mm.datasets.synthetic data/shapes '
             '(or use a config from configs/demo/, which generates it).')


def register_scope(cfg: Config) -> str:
    """Register the modules of the library named by the config's ``default_scope``."""
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        raise ValueError(f'Config default_scope is {scope!r}; parc_mm tools run configs of '
                         f'{SCOPES} (inherit one of their _base_ configs).')
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    return scope


def _datasets(obj) -> Iterator[dict]:
    if isinstance(obj, dict):
        if 'type' in obj and ('data_root' in obj or 'ann_file' in obj or 'data_prefix' in obj):
            yield obj
        for v in obj.values():
            yield from _datasets(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _datasets(v)


def _paths(ds: dict) -> List[Tuple[str, str]]:
    root = ds.get('data_root') or ''
    out = []
    if root:
        out.append(('data_root', root))
    if ds.get('ann_file'):
        out.append(('ann_file', osp.join(root, ds['ann_file'])))
    prefix = ds.get('data_prefix')
    if isinstance(prefix, str):
        prefix = {'data_prefix': prefix}
    for k, v in (prefix or {}).items():
        if isinstance(v, str) and v:
            out.append((f'data_prefix.{k}', osp.join(root, v)))
    return out


def check_datasets(cfg: Config, loaders=('train_dataloader', 'val_dataloader',
                                         'test_dataloader')) -> None:
    """Fail early, naming the dataset and the missing path, instead of deep inside a
    dataset class. Datasets that generate themselves (parc_mm.Shapes*) are skipped."""
    for name in loaders:
        loader = cfg.get(name)
        if not loader:
            continue
        for ds in _datasets(loader.get('dataset', {})):
            if str(ds.get('type', '')).startswith('parc_mm.Shapes'):
                continue
            for key, path in _paths(ds):
                if '://' in path or osp.exists(path):
                    continue
                raise FileNotFoundError(
                    f'{name}: {ds["type"]} {key} "{path}" does not exist. Download the '
                    f'dataset and place it there, or point the config at it with '
                    f'--cfg-options {name}.dataset.data_root=<path>. {DEMO_HINT}')


def adapt_to_device(cfg: Config) -> Config:
    """CPU runs: AMP needs a GPU in mmengine 0.10 and SyncBN needs a GPU process group."""
    import torch
    if torch.cuda.is_available():
        return cfg
    ow = cfg.get('optim_wrapper') or {}
    if ow.get('type') == 'AmpOptimWrapper':
        print_log('No GPU: AmpOptimWrapper -> OptimWrapper (fp32 training)', logger='current',
                  level=30)
        ow['type'] = 'OptimWrapper'
        ow.pop('loss_scale', None)
    from parc_mm.testing import _bn_not_sync
    _bn_not_sync(cfg.get('model', {}))
    env = cfg.setdefault('env_cfg', {})
    env.setdefault('dist_cfg', {})['backend'] = 'gloo'
    return cfg


def setup_env_vars() -> None:
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1))))

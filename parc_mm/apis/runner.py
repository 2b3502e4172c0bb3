"""What tools/train.py and tools/test.py do to a config before handing it to the Runner:
load it from anywhere, check its model types, datasets and checkpoint, adapt it to the
machine (CPU: fp32, BN, gloo)."""
from __future__ import annotations

import os.path as osp
from typing import Iterator, List, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from parc_mm.apis.tasks import SCOPES, adapt_to_cpu, iter_dicts
from parc_mm.apis.tasks import load_config as _load_config

DEMO_HINT = ('For the built-in demo data run: python -m parc_mm.datasets.synthetic data/shapes '
             '(or use a config from configs/demo/, which generates it).')


def check_model_types(cfg: Config) -> None:
    """Name the fix for a parc_mm model written without its ``parc_mm.`` prefix, or misspelt
    (the library's own error only says the name is not in its registry)."""
    import importlib

    from parc_mm.registry import MODELS, suggest
    scope = cfg.get('default_scope')
    if scope not in SCOPES:
        return
    importlib.import_module('parc_mm.models')
    registry = importlib.import_module(f'{scope}.registry').MODELS
    ours = MODELS._module_dict
    types = [d['type'] for d in iter_dicts(cfg.get('model', {}))
             if isinstance(d.get('type'), str)]
    for t in types:
        if t.startswith('parc_mm.'):
            MODELS.get(t[len('parc_mm.'):])  # raises with close matches when misspelt
            continue
        if '.' in t or registry.get(t) is not None:
            continue
        if t in ours:
            raise ValueError(
                f"type='{t}' is a parc_mm model: write type='parc_mm.{t}' and import it with "
                "custom_imports=dict(imports=['parc_mm.models'], allow_failed_imports=False)")
        close = suggest(t, ours)
        if close:
            raise ValueError(f"type='{t}' is not registered in {scope}; did you mean "
                             f"'parc_mm.{close[0]}' (with custom_imports="
                             "dict(imports=['parc_mm.models']))?")


def load_config(path: str, cfg_options=None, launcher: str = 'none',
                work_dir=None) -> Config:
    """What tools/train.py and tools/test.py share: read the config, apply ``--cfg-options``,
    register the library of its ``default_scope`` and choose the work dir."""
    cfg = _load_config(path, cfg_options)
    cfg.launcher = launcher
    check_model_types(cfg)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def _datasets(obj) -> Iterator[dict]:
    """The dataset dicts (a type and where its files are) inside a dataloader's ``dataset``."""
    return (d for d in iter_dicts(obj)
            if 'type' in d and ('data_root' in d or 'ann_file' in d or 'data_prefix' in d))


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
    dataset class. Datasets that generate themselves (parc_mm.Shapes*, parc_mm.Fashion*: they
    name their own fix) are skipped."""
    for name in loaders:
        loader = cfg.get(name)
        if not loader:
            continue
        for ds in _datasets(loader.get('dataset', {})):
            if str(ds.get('type', '')).startswith(('parc_mm.Shapes', 'parc_mm.Fashion')):
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
    adapt_to_cpu(cfg, log=lambda m: print_log(m, logger='current', level=30))
    env = cfg.setdefault('env_cfg', {})
    env.setdefault('dist_cfg', {})['backend'] = 'gloo'
    # DDP on CPU modules takes no device_ids (mmengine passes [LOCAL_RANK] by default)
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel',
                                                   broadcast_buffers=False)
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper
    return cfg


def check_checkpoint_fits(model, checkpoint: str, allow_partial: bool = False) -> None:
    """Refuse to evaluate a checkpoint that does not fit the model (mmengine only warns).

    Raises a ValueError naming the missing / unexpected / mis-shaped tensors and the fix.
    """
    from parc_mm.models.converters import is_parc_resizable, parc_resizable_keys, unwrap_checkpoint
    from parc_mm.utils.checkpoint import load_checkpoint_file
    sd = unwrap_checkpoint(load_checkpoint_file(checkpoint, map_location='cpu'))
    ours = model.state_dict()
    resizable = parc_resizable_keys(model)
    missing = [k for k in ours if k not in sd]
    unexpected = [k for k in sd if k not in ours]
    bad = [f'{k} {tuple(sd[k].shape)} vs model {tuple(v.shape)}' for k, v in ours.items()
           if k in sd and sd[k].shape != v.shape and not is_parc_resizable(k, sd[k], v, resizable)]
    if (missing or unexpected or bad) and not allow_partial:
        def show(xs):
            return ', '.join(xs[:5]) + (f' ... (+{len(xs) - 5})' if len(xs) > 5 else '')
        raise ValueError(
            f'Checkpoint {checkpoint} does not fit the model: {len(missing)} missing '
            f'[{show(missing)}], {len(unexpected)} unexpected [{show(unexpected)}], '
            f'{len(bad)} with wrong shapes [{show(bad)}]. Is it for this config? Official / '
            'timm / torchvision checkpoints need tools/model_converters first; pass '
            '--allow-partial to evaluate anyway.')



def init_cpu_distributed(launcher: str) -> None:
    """mmengine's ``init_dist('pytorch')`` always calls ``torch.cuda.set_device``; on a
    machine without a GPU we start the gloo process group ourselves (the Runner then sees
    it initialised and skips its own init)."""
    import torch
    import torch.distributed as dist
    if launcher == 'none' or torch.cuda.is_available() or dist.is_initialized():
        return
    if launcher != 'pytorch':
        raise RuntimeError(f'--launcher {launcher} without a GPU: use --launcher pytorch '
                           '(tools/dist_train.sh) for CPU (gloo) runs')
    dist.init_process_group(backend='gloo')

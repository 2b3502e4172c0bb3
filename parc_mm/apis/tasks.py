"""One task table and one config layer for tools, analysis, inference, the demo and the tests.

:data:`TASKS` says, per task, which library runs it (the config's ``default_scope``), its test
input size, the folder of the built-in synthetic data and its main metric. The functions load
a config of any of the three libraries from anywhere, build its model in the right scope and
adapt it to a CPU.
"""
from __future__ import annotations

import importlib
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, Iterator, Optional, Tuple

from parc_mm.utils.model_index import mim_dir  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class Task:
    """One task of the three libraries."""
    name: str  # 'cls' | 'det' | 'seg'
    scope: str  # the library (config ``default_scope``)
    test_size: Tuple[int, int]  # (h, w) the params / FLOPs are counted at
    data: str  # folder of the built-in synthetic data (parc_mm.datasets.synthetic)
    metric: str  # the main metric the library's evaluator reports
    metric_scale: float  # metric * scale = percent
    inferencer: str  # 'module:Class' of the library's Inferencer
    weights_kwarg: str  # the Inferencer's checkpoint argument
    val_images: str  # glob of the built-in data's validation images, under its data root
    smoke_shrink: float  # input-size factor of the CPU smoke runs (parc_mm.testing)
    exports: str  # what the ONNX export holds: 'logits' or 'features' (backbone + neck)
    # the checkpoint argument's value for "no weights" (mmpretrain's True would download)
    no_weights: Any = None
    inferencer_kwargs: Tuple[Tuple[str, Any], ...] = ()  # fixed extra arguments

    def build_inferencer(self, cfg, checkpoint: Optional[str], device: Optional[str]):
        """The library's Inferencer for ``cfg`` (built in the library's scope)."""
        module, name = self.inferencer.split(':')
        cls = getattr(importlib.import_module(module), name)
        return cls(model=cfg, device=device, **dict(self.inferencer_kwargs),
                   **{self.weights_kwarg: checkpoint or self.no_weights})


TASKS: Dict[str, Task] = {
    'cls': Task('cls', 'mmpretrain', (224, 224), 'cls', 'accuracy/top1', 1.0,
                'mmpretrain.apis:ImageClassificationInferencer', 'pretrained',
                'cls/val/*/00000.*', 1 / 3, 'logits', no_weights=False),
    'det': Task('det', 'mmdet', (800, 1333), 'coco', 'coco/bbox_mAP', 100.0,
                'mmdet.apis:DetInferencer', 'weights', 'coco/val/*.*', 1 / 5, 'features',
                inferencer_kwargs=(('show_progress', False), )),
    'seg': Task('seg', 'mmseg', (512, 512), 'ade', 'mIoU', 1.0,
                'mmseg.apis:MMSegInferencer', 'weights', 'ade/images/validation/*.*', 1 / 6,
                'logits'),
}
BY_SCOPE: Dict[str, Task] = {t.scope: t for t in TASKS.values()}
SCOPES = tuple(BY_SCOPE)


def task_of(cfg) -> str:
    """'cls' / 'det' / 'seg' from the config's ``default_scope``."""
    scope = cfg.get('default_scope')
    if scope not in BY_SCOPE:
        raise ValueError(f'Config default_scope is {scope!r}; parc_mm runs configs of '
                         f'{SCOPES} (inherit one of their _base_ configs).')
    return BY_SCOPE[scope].name




def resolve_config(path: str) -> str:
    """A config file path for ``path``: an existing file as given; ``parc_mm::family/x.py``
    or ``configs/family/x.py`` from the package's configs (so tools work from any folder).
    Raises FileNotFoundError naming what was tried."""
    if osp.isfile(path):
        return path
    rel = path.split('::', 1)[1] if path.startswith('parc_mm::') else path
    rel = rel[len('configs/'):] if rel.startswith('configs/') else rel
    candidate = osp.join(mim_dir(), 'configs', rel)
    if osp.isfile(candidate):
        return candidate
    raise FileNotFoundError(f'Config file {path} does not exist (also looked for {candidate}, '
                            'the configs shipped with parc_mm).')


def register_scope(cfg) -> str:
    """Register the modules of the library named by the config's ``default_scope``."""
    task = TASKS[task_of(cfg)]
    importlib.import_module(f'{task.scope}.utils').register_all_modules(
        init_default_scope=False)
    return task.scope


def load_config(path: str, cfg_options: Optional[dict] = None):
    """Read a config (from anywhere, see :func:`resolve_config`), apply overrides, register its
    library and import its ``custom_imports``."""
    from mmengine.config import Config
    cfg = Config.fromfile(resolve_config(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    register_scope(cfg)
    for mod in (cfg.get('custom_imports') or {}).get('imports', []):
        importlib.import_module(mod)
    return cfg


def iter_dicts(obj: Any) -> Iterator[dict]:
    """Every dict inside a config value, parents before their children (a consumer may edit a
    dict's values when it is yielded)."""
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from iter_dicts(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from iter_dicts(v)


def drop_pretrained(model: dict) -> None:
    """Remove ``Pretrained`` init_cfgs and ``pretrained`` URLs (nothing is downloaded)."""
    for o in iter_dicts(model):
        ic = o.get('init_cfg')
        if isinstance(ic, dict) and ic.get('type') == 'Pretrained':
            o['init_cfg'] = None
        elif isinstance(ic, list):
            o['init_cfg'] = [c for c in ic if c.get('type') != 'Pretrained'] or None
        if 'pretrained' in o and isinstance(o['pretrained'], str):
            o['pretrained'] = None


def sync_bn_to_bn(obj: Any) -> None:
    """SyncBN -> BN in a config dict (SyncBN needs a GPU process group)."""
    for o in iter_dicts(obj):
        if o.get('type') in ('SyncBN', 'MMSyncBN'):
            o['type'] = 'BN'


def adapt_to_cpu(cfg, log=None) -> None:
    """What a CPU cannot run: AMP (mmengine's AmpOptimWrapper asserts a GPU) -> fp32, SyncBN ->
    BN."""
    ow = cfg.get('optim_wrapper') or {}
    if ow.get('type') == 'AmpOptimWrapper':
        if log:
            log('No GPU: AmpOptimWrapper -> OptimWrapper (fp32 training)')
        ow['type'] = 'OptimWrapper'
        ow.pop('loss_scale', None)
    sync_bn_to_bn(cfg.get('model', {}))


def build_model(cfg, pretrained: bool = False):
    """The config's model, built in its library's scope (pretrained init weights dropped
    unless ``pretrained``; SyncBN -> BN)."""
    from mmengine.registry import DefaultScope
    scope = register_scope(cfg)
    if not pretrained:
        drop_pretrained(cfg.model)
    sync_bn_to_bn(cfg.model)
    if cfg.get('data_preprocessor') and 'data_preprocessor' not in cfg.model:
        cfg.model.data_preprocessor = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope(scope):
        return importlib.import_module(f'{scope}.registry').MODELS.build(cfg.model)

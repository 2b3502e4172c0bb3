"""Registries of parc_mm: children of mmengine's root registries (scope ``parc_mm``).

Configs refer to our modules as ``type='parc_mm.ParCConvNeXt'`` which resolves from any
default scope (mmdet, mmseg, mmpretrain) once ``parc_mm.models`` is imported.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='parc_mm',
                  locations=['parc_mm.models'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='parc_mm',
                    locations=['parc_mm.datasets.mm'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='parc_mm', locations=['parc_mm.hooks'])

__all__ = ['MODELS', 'DATASETS', 'HOOKS']

"""Registries of parc_mm: children of mmengine's root registries (scope ``parc_mm``).

Configs refer to our modules as ``type='parc_mm.ParCConvNeXt'`` which resolves from any
default scope (mmdet, mmseg, mmpretrain) once ``parc_mm.models`` is imported.
"""
import difflib

from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import Registry


class ParCRegistry(Registry):
    """A Registry whose lookups of a misspelt ``parc_mm.<Name>`` fail with the close matches
    (mmengine's own message only says the name is not registered)."""

    def get(self, key):
        obj = super().get(key)
        if obj is None and isinstance(key, str) and '.' not in key:
            close = suggest(key, self._module_dict)
            if close:
                raise KeyError(f'{self.scope}.{key} is not a registered {self.name}; did you '
                               f'mean {" or ".join(f"{self.scope}.{c}" for c in close)}?')
        return obj

    def __contains__(self, key) -> bool:
        return super().get(key) is not None


def suggest(name: str, names) -> list:
    """Registered names close to ``name`` (case-insensitive)."""
    lower = {n.lower(): n for n in names}
    return [lower[m] for m in difflib.get_close_matches(name.lower(), list(lower), n=3,
                                                         cutoff=0.8)]


MODELS = ParCRegistry('model', parent=MMENGINE_MODELS, scope='parc_mm',
                      locations=['parc_mm.models'])
DATASETS = ParCRegistry('dataset', parent=MMENGINE_DATASETS, scope='parc_mm',
                        locations=['parc_mm.datasets.mm'])
HOOKS = ParCRegistry('hook', parent=MMENGINE_HOOKS, scope='parc_mm',
                     locations=['parc_mm.engine.hooks'])

OPTIM_WRAPPER_CONSTRUCTORS = ParCRegistry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS, scope='parc_mm',
    locations=['parc_mm.engine.optimizers'])

__all__ = ['MODELS', 'DATASETS', 'HOOKS', 'OPTIM_WRAPPER_CONSTRUCTORS']

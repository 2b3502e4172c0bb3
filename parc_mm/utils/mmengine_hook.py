"""Make ``_base_ = ['parc_mm::family/config.py']`` work in any Python process.

mmengine resolves ``pkg::path`` config bases only for packages listed in its
``MODULE2PACKAGE`` table, and reads that table while it *parses* a config: before the
config's ``custom_imports`` run. So a user's config that inherits one of ours, run with
mmdet's / mmseg's / mmpretrain's own ``tools/train.py`` or with ``mim train``, fails with
``mmengine does not support to load parc_mm config`` unless ``parc_mm`` is in the table
before the first config is read.

The installed package therefore ships ``parc_mm_mmengine.pth`` next to itself. Python runs
its one line at start-up, which calls :func:`install`: a post-import hook that adds
``parc_mm`` to the table the moment ``mmengine.config.utils`` is imported, and makes our bases
build in the using config's scope (:func:`unscope_our_bases`). Nothing is imported before
that, so the start-up cost is a few microseconds. mmengine then reads our
configs from ``<site-packages>/parc_mm/.mim/configs/``, where the wheel puts them (a
checkout links ``parc_mm/.mim`` to its own ``configs/`` and ``tools/``).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys


def register(module) -> None:
    """Add ``parc_mm`` to mmengine's ``MODULE2PACKAGE`` (idempotent)."""
    module.MODULE2PACKAGE.setdefault('parc_mm', 'parc_mm')


def unscope_our_bases(module) -> None:
    """Objects of a ``parc_mm::`` base build in the scope of the config using them.

    mmengine tags every dict of a ``pkg::`` base with ``_scope_=pkg`` so that, e.g., a
    ``mmdet::`` base builds its transforms from mmdet's registries. Our configs are not a
    library scope: each one already names its library (``default_scope`` mmdet / mmseg /
    mmpretrain, inherited from that library's bases, whose dicts keep their own tags). Tagged
    ``parc_mm``, a dataset's pipeline would look ``LoadAnnotations`` up in mmengine's root
    registry and get mmcv's instead of mmdet's. So their scope is dropped, as for a local
    ``./`` base.
    """
    config_cls = module.Config
    if getattr(config_cls._get_cfg_path, '_parc_mm', False):
        return
    orig = config_cls._get_cfg_path

    def _get_cfg_path(cfg_path, filename):
        path, scope = orig(cfg_path, filename)
        return path, (None if scope == 'parc_mm' else scope)

    _get_cfg_path._parc_mm = True  # type: ignore[attr-defined]
    config_cls._get_cfg_path = staticmethod(_get_cfg_path)


# module -> (the attribute that shows it has run, the hook)
_HOOKS = {'mmengine.config.utils': ('MODULE2PACKAGE', register),
          'mmengine.config.config': ('Config', unscope_our_bases)}


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the mmengine modules of ``_HOOKS`` through the other finders and applies their
    hook right after each module has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _HOOKS:
            return None
        hook = _HOOKS[fullname][1]
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_hook(module):
            exec_module(module)
            hook(module)

        spec.loader.exec_module = exec_and_hook
        return spec


def install() -> None:
    """Apply the hooks now to loaded modules, and when the others are loaded (called by the
    start-up ``.pth`` line unless ``PARC_MM_NO_STARTUP=1``, and by ``import parc_mm``)."""
    pending = False
    for name, (ready, hook) in _HOOKS.items():
        module = sys.modules.get(name)
        if module is not None and hasattr(module, ready):
            hook(module)
        else:
            pending = True
    if pending and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())

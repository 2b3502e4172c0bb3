"""Make ``_base_ = ['parc_mm::family/config.py']`` work in any Python process.

mmengine resolves ``pkg::path`` config bases only for packages listed in its
``MODULE2PACKAGE`` table, and reads that table while it *parses* a config: before the
config's ``custom_imports`` run. So a user's config that inherits one of ours, run with
mmdet's / mmseg's / mmpretrain's own ``tools/train.py`` or with ``mim train``, fails with
``mmengine does not support to load parc_mm config`` unless ``parc_mm`` is in the table
before the first config is read.

The installed package therefore ships ``parc_mm_mmengine.pth`` next to itself. Python runs
its one line at start-up, which calls :func:`install`: a post-import hook that adds
``parc_mm`` to the table the moment ``mmengine.config.utils`` is imported (nothing is
imported before that, so start-up cost is a few microseconds). mmengine then reads our
configs from ``<site-packages>/parc_mm/.mim/configs/``, where the wheel puts them (a
checkout links ``parc_mm/.mim`` to its own ``configs/`` and ``tools/``).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import os.path as osp
import sys

_TARGET = 'mmengine.config.utils'


def _package_dir() -> str:
    return osp.dirname(osp.dirname(osp.abspath(__file__)))


def register(module) -> None:
    """Add ``parc_mm`` to mmengine's ``MODULE2PACKAGE`` (idempotent)."""
    module.MODULE2PACKAGE.setdefault('parc_mm', 'parc_mm')


class _Finder(importlib.abc.MetaPathFinder):
    """Finds ``mmengine.config.utils`` through the other finders and registers us right
    after it has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            register(module)

        spec.loader.exec_module = exec_and_register
        return spec


def install() -> None:
    """Register now if mmengine's config utils are loaded, else when they are."""
    if _TARGET in sys.modules:
        register(sys.modules[_TARGET])
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())

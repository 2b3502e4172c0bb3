"""parc_mm: ParC / Fast-ParC for OpenMMLab 2.x.

Importing the package is cheap (no torch, no OpenMMLab). ``import parc_mm.models`` registers
the backbones, necks and blocks into the ``parc_mm`` registry scope.
"""
from .utils.mmengine_hook import install as _install_mmengine_hook
from .version import __version__

# `_base_ = ['parc_mm::...']` resolves once parc_mm is imported (an installed package does
# this at interpreter start-up through parc_mm_mmengine.pth).
_install_mmengine_hook()

__all__ = ['__version__']

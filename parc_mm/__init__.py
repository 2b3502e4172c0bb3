"""parc_mm: ParC / Fast-ParC for OpenMMLab 2.x.

Importing the package is cheap (no torch, no OpenMMLab). ``import parc_mm.models`` registers
the backbones, necks and blocks into the ``parc_mm`` registry scope.
"""
from . import compat
from .version import __version__

# the one trigger of every change to upstream libraries (parc_mm.compat: a lazy import hook;
# an installed environment also runs it at start-up through parc_mm_mmengine.pth)
compat.install()

__all__ = ['__version__']

"""parc_mm: ParC / Fast-ParC for OpenMMLab 2.x.

Importing the package is cheap (torch only). ``import parc_mm.models`` registers the
backbones, necks and blocks into the ``parc_mm`` registry scope.
"""
from .version import __version__

__all__ = ['__version__']

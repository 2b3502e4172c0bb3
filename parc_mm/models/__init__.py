"""Registers parc_mm backbones, necks and blocks into the ``parc_mm`` registry scope.

Configs import this with ``custom_imports=dict(imports=['parc_mm.models'],
allow_failed_imports=False)`` and refer to ``type='parc_mm.ParCConvNeXt'``.
"""
from parc_mm.utils.compat import allow_mmengine_checkpoints

from .backbones import *  # noqa: F401,F403
from .backbones import __all__ as _backbones
from .data_preprocessors import *  # noqa: F401,F403
from .data_preprocessors import __all__ as _preprocessors
from .dense_heads import *  # noqa: F401,F403
from .dense_heads import __all__ as _heads
from .necks import *  # noqa: F401,F403
from .necks import __all__ as _necks

# Runner checkpoints (resume) load under torch >= 2.6 once any config imported us.
allow_mmengine_checkpoints()

__all__ = list(_backbones) + list(_necks) + list(_heads) + list(_preprocessors)

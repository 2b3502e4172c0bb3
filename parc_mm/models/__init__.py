"""Registers parc_mm backbones, necks and blocks into the ``parc_mm`` registry scope.

Configs import this with ``custom_imports=dict(imports=['parc_mm.models'],
allow_failed_imports=False)`` and refer to ``type='parc_mm.ParCConvNeXt'``.

The backbones build on mmpretrain's (``pip install parc_mm[cls]``). What needs mmdet (the
ParCFPN neck, the SSD head) is registered only when mmdet is installed (``parc_mm[det]``),
so a classification-only install imports without it.
"""
from importlib.util import find_spec

from parc_mm.engine import (
    hooks,  # noqa: F401  (registers the hooks the configs name)
    optimizers,  # noqa: F401  (the layer-decay constructor)
)
from parc_mm.utils.optional import require

require('mmpretrain', 'parc_mm.models (the ParC backbones build on mmpretrain\'s)', 'cls')

from .backbones import *  # noqa: F401,F403,E402
from .backbones import __all__ as _backbones  # noqa: E402
from .data_preprocessors import *  # noqa: F401,F403,E402
from .data_preprocessors import __all__ as _preprocessors  # noqa: E402

__all__ = list(_backbones) + list(_preprocessors)
if find_spec('mmdet') is not None:
    from .dense_heads import *  # noqa: F401,F403
    from .dense_heads import __all__ as _heads
    from .necks import *  # noqa: F401,F403
    from .necks import __all__ as _necks
    __all__ += list(_heads) + list(_necks)

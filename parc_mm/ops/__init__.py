"""The ParC operator (one module: :mod:`parc_mm.ops.parc`)."""
from .parc import (
                   IMPLS,
                   ParCConv2d,
                   ParCHW,
                   ParCPosEmbed,
                   circular_conv,
                   fix_input_size,
                   parc_impl,
                   resize_to,
                   select_impl,
                   set_default_impl,
                   set_impl,
)

__all__ = [
    'IMPLS', 'ParCConv2d', 'ParCHW', 'ParCPosEmbed', 'circular_conv', 'fix_input_size',
    'parc_impl', 'resize_to', 'select_impl', 'set_default_impl', 'set_impl'
]

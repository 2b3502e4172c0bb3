"""The ParC operator, one concern per file.

* :mod:`.functional`: the exact implementations, :func:`circular_conv` and its linear
  (zero-padded, oversized-kernel) mode :func:`linear_conv`;
* :mod:`.registry`: every implementation with what it computes and where it runs;
* :mod:`.dispatch`: the one place an implementation is chosen (explicit > global default >
  export form > autotuned > measured rule), and the token mixer's plan;
* :mod:`.tracing`: where a call runs (compile, trace, ONNX export, ``torch.export``);
* :mod:`.separable`: ParC-H then ParC-W as one 2-D FFT (the token mixer's fused path);
* :mod:`.autotuner`: ``auto`` timed on the real input and cached (opt-in), save / load / sync;
* :mod:`.resize`: the resize rule for kernels / position embeddings (also on load);
* :mod:`.export`: :func:`set_impl`, :func:`inference_mode`, :func:`fix_input_size`.

The layers that hold parameters (``ParCConv2d``, ``ParCPosEmbed``, ``ParCHW``) live in
:mod:`parc_mm.models.layers`: the operator never imports the models.
"""
from .autotuner import (
    autotune,
    autotune_cache,
    clear_autotune_cache,
    enable_autotune,
    load_autotune_cache,
    save_autotune_cache,
    sync_autotune_cache,
)
from .dispatch import impl_choices, parc_impl, select_impl, set_default_impl
from .export import fix_input_size, inference_mode, set_impl
from .functional import circular_conv, linear_conv
from .resize import resize_to
from .separable import separable_circular_conv2d

__all__ = [
    'autotune', 'autotune_cache', 'circular_conv', 'clear_autotune_cache', 'enable_autotune',
    'fix_input_size', 'impl_choices', 'inference_mode', 'linear_conv', 'load_autotune_cache',
    'parc_impl', 'resize_to', 'save_autotune_cache', 'select_impl', 'separable_circular_conv2d',
    'set_default_impl', 'set_impl', 'sync_autotune_cache'
]

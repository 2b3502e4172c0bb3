"""Compatibility of the pinned OpenMMLab stack with current torch.

mmengine 0.10.7 saves Runner checkpoints holding ``HistoryBuffer`` objects and numpy arrays
(the message hub), which ``torch.load(weights_only=True)`` — the default since torch 2.6 —
refuses (``Unsupported global: mmengine.logging.history_buffer.HistoryBuffer``). We allow
exactly those types through torch's own allow-list instead of turning the safety check off
or editing mmengine. HistoryBuffer also pickles its four built-in statistics methods as
``getattr(HistoryBuffer, 'mean')``; allowing ``getattr`` would defeat the check, so we stop
pickling the built-ins (``__setstate__`` re-registers them anyway).
"""
from __future__ import annotations

from typing import List

_DONE = False


def _mmengine_checkpoint_globals() -> List[object]:
    import numpy as np
    from mmengine.logging import HistoryBuffer

    allowed: List[object] = [HistoryBuffer, np.ndarray, np.dtype]
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    allowed += [_reconstruct, scalar]
    # Concrete dtype classes (np.dtypes.Float64DType, ...) are pickled by numpy >= 1.25.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return allowed


def _patch_history_buffer() -> None:
    from mmengine.logging import HistoryBuffer

    if getattr(HistoryBuffer.__getstate__, '_parc_mm', False):
        return
    orig = HistoryBuffer.__getstate__

    def __getstate__(self) -> dict:
        state = dict(orig(self))
        methods = state.get('statistics_methods', {})
        state['statistics_methods'] = {
            k: v for k, v in methods.items() if getattr(HistoryBuffer, k, None) is not v}
        return state

    __getstate__._parc_mm = True  # type: ignore[attr-defined]
    HistoryBuffer.__getstate__ = __getstate__


def allow_mmengine_checkpoints() -> None:
    """Let ``torch.load(weights_only=True)`` read mmengine Runner checkpoints (idempotent)."""
    global _DONE
    if _DONE:
        return
    import torch

    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch >= 2.4
        add(_mmengine_checkpoint_globals())
    _patch_history_buffer()
    _DONE = True


def require(package: str, what: str, extra: str) -> None:
    """Fail with the install command when an optional OpenMMLab library is missing."""
    from importlib.util import find_spec
    if find_spec(package) is None:
        raise ImportError(f'{what} needs {package}, which is not installed: '
                          f'pip install "parc_mm[{extra}]" (or bash tools/setup_env.sh for '
                          'the whole pinned stack).')

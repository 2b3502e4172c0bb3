"""The registry of ParC implementations: what each computes and where it can run.

Every exact implementation of the operator is one :class:`Implementation`: its compute, the
dtype it computes in, what it keeps in a caller's ``kernel_cache``, and where it runs (device
types, dtypes, ONNX export, autograd). The operator dispatches through it (an unknown name
raises), the autotuner times only the implementations available for the call, and an export
takes only exportable ones. A new implementation (a Triton or vendor kernel) is one file that
calls :func:`register_impl`; ``docs/extending.md`` has the checklist.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

# compute(x, weight, groups, direction, cache) -> y, without bias, for a validated call whose
# x / weight are already NCHW-contiguous and in the implementation's compute dtype
Compute = Callable[[torch.Tensor, torch.Tensor, int, str, Optional[dict]], torch.Tensor]


@dataclass(frozen=True)
class Implementation:
    """One exact ParC implementation.

    Args:
        name: what ``impl=`` selects (not ``'auto'``).
        compute: see :data:`Compute`.
        devices: device types it runs on (``torch.device.type``).
        dtypes: input dtypes it accepts (under autocast: the autocast dtype).
        compute_dtype: ``f(x_dtype, weight_dtype) -> dtype`` it computes in, outside autocast
            (e.g. the FFT: float32, float64 if either is); None: the call's output dtype.
        exportable: traces into plain ONNX that every runtime runs (no ``DFT``).
        differentiable: has a backward (training may use it).
        caches: the ``kernel_cache`` entries it keeps (e.g. a spectrum, a circulant matrix).
        propagates_non_finite: a NaN / inf input gives NaN in every output that sums over it
            by itself (the FFT does); otherwise the operator's guard makes it so.
        linear: the same signature for the *linear* boundary mode (zero padding ``K // 2``
            on both sides, an odd kernel of any length ``K <= 2n - 1``: ParCNetV2's oversized
            convolution); None: the implementation runs the circular mode only.
    """

    name: str
    compute: Compute
    devices: Tuple[str, ...] = ('cpu', 'cuda')
    dtypes: Tuple[torch.dtype, ...] = FLOAT_DTYPES
    compute_dtype: Optional[Callable[[torch.dtype, torch.dtype], torch.dtype]] = None
    exportable: bool = False
    differentiable: bool = True
    caches: Tuple[str, ...] = ()
    propagates_non_finite: bool = False
    linear: Optional[Compute] = None

    def available(self, device: torch.device, dtype: torch.dtype,
                  mode: str = 'circular') -> bool:
        return device.type in self.devices and dtype in self.dtypes and \
            (mode == 'circular' or self.linear is not None)

    def compute_for(self, mode: str) -> Compute:
        """The compute of boundary ``mode`` (``'circular'`` or ``'linear'``)."""
        fn = self.compute if mode == 'circular' else self.linear
        if fn is None:
            raise ValueError(f'ParC implementation {self.name!r} has no {mode} mode; choose one '
                             f'of {tuple(i.name for i in _REGISTRY.values() if i.linear)} or '
                             "'auto'")
        return fn


_REGISTRY: Dict[str, Implementation] = {}

# Bumped whenever what ``auto`` chooses can change (an implementation registered or removed,
# the global default set, autotuning switched, its cache filled / cleared / loaded / synced):
# a layer that keeps its resolved impl (eval-mode inference plans) re-resolves when it moved.
_GENERATION = 0


def changed() -> None:
    """Say that a choice of ``auto`` may differ from now on."""
    global _GENERATION
    _GENERATION += 1


def generation() -> int:
    return _GENERATION


def register_impl(impl: Implementation, override: bool = False) -> Implementation:
    """Add ``impl`` (``override``: replace one of the same name)."""
    if not isinstance(impl, Implementation):
        raise TypeError(f'register_impl takes an Implementation, got {type(impl).__name__}')
    if not isinstance(impl.name, str) or not impl.name or impl.name == 'auto':
        raise ValueError(f"a ParC implementation needs a name other than 'auto', got "
                         f'{impl.name!r}')
    if not callable(impl.compute):
        raise ValueError(f'ParC implementation {impl.name!r} has no compute (got '
                         f'{impl.compute!r}): register a callable (x, weight, groups, '
                         'direction, cache) -> y')
    if impl.name in _REGISTRY and not override:
        raise ValueError(f'a ParC implementation {impl.name!r} is registered already; pass '
                         'override=True to replace it')
    _REGISTRY[impl.name] = impl
    changed()  # a new or replaced impl changes what auto may choose
    return impl


def unregister_impl(name: str) -> None:
    _REGISTRY.pop(name, None)
    changed()


def get_impl(name: str) -> Implementation:
    """The registered implementation ``name`` (ValueError naming the choices otherwise)."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f'Unknown ParC impl {name!r}; choose one of '
                         f"{impl_names() + ('auto', )}.") from None


def impl_names() -> Tuple[str, ...]:
    return tuple(_REGISTRY)


def available_impls(device: torch.device, dtype: torch.dtype, exportable: bool = False,
                    differentiable: bool = False, mode: str = 'circular') -> List[str]:
    """The implementations that can run a call on ``device`` in ``dtype`` in boundary
    ``mode`` (and export / train, when asked)."""
    return [i.name for i in _REGISTRY.values() if i.available(device, dtype, mode)
            and (i.exportable or not exportable) and (i.differentiable or not differentiable)]

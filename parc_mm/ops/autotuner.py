"""Autotuned ``impl='auto'``, as ``torch.backends.cudnn.benchmark`` does for convolutions.

With autotuning on (:func:`enable_autotune`, the :func:`autotune` context, or the environment
variable ``PARC_AUTOTUNE=1``), the first ``auto`` call of a given configuration (device, dtype,
autocast dtype, direction, input shape, output channels, depthwise / dense / grouped kernels,
train or eval) times the exact implementations on the real input and caches the fastest; later
calls are a dictionary lookup. Without it, or inside ``torch.compile`` / tracing for a
configuration not measured yet, ``auto`` falls back to the deterministic rule
(:func:`parc_mm.ops.dispatch.select_impl`).

The cache can be saved and loaded (one JSON file per device, :func:`save_autotune_cache` /
:func:`load_autotune_cache`) so a deployment picks without timing, and shared across
distributed ranks (:func:`sync_autotune_cache`: every rank takes rank 0's choices; call it
after a first iteration, e.g. from a hook: a collective inside the forward would deadlock
ranks whose inputs differ in shape).
"""
from __future__ import annotations

import contextlib
import json
import os
import os.path as osp
import platform
import time
from typing import Callable, Dict, Iterator, Optional

import torch

from . import registry
from .tracing import compiling  # noqa: F401  (compiling: re-exported)

_TRUE, _FALSE = ('1', 'true', 'yes', 'on'), ('', '0', 'false', 'no', 'off')


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, '').strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ValueError(f'{name}={os.environ[name]!r} is not a switch: set it to one of '
                     f'{_TRUE} to turn autotuning on, or one of {_FALSE[1:]} (or unset it).')


class AutotuneCacheError(ValueError):
    """A saved autotune cache that cannot be read (damaged, not ours, unknown impls)."""


_ENABLED = _env_flag('PARC_AUTOTUNE')
_CACHE: Dict[str, str] = {}
_DEVICE_NAMES: Dict[str, str] = {}
_REPEATS = 3
def state() -> tuple:
    """(enabled, generation): equal states give equal choices for every configuration."""
    return _ENABLED, registry.generation()


def enable_autotune(enabled: bool = True) -> None:
    """Turn autotuning of ``impl='auto'`` on or off (the cache is kept)."""
    global _ENABLED
    _ENABLED = bool(enabled)
    if _ENABLED:
        _known_devices()
    registry.changed()


def autotune_enabled() -> bool:
    return _ENABLED


@contextlib.contextmanager
def autotune(enabled: bool = True) -> Iterator[None]:
    """Context manager form of :func:`enable_autotune`."""
    old = _ENABLED
    enable_autotune(enabled)
    try:
        yield
    finally:
        enable_autotune(old)


def clear_autotune_cache() -> None:
    _CACHE.clear()
    registry.changed()


def autotune_cache() -> Dict[str, str]:
    """A copy of the cache: configuration key -> chosen impl."""
    return dict(_CACHE)


def device_name(device: torch.device) -> str:
    """A stable name of the device kind the timings hold for (cache files are per device)."""
    key = str(device)
    if device.type == 'cuda' and device.index is None:
        key = f'cuda:{torch.cuda.current_device()}'
    if key not in _DEVICE_NAMES:
        if device.type == 'cuda':
            name = torch.cuda.get_device_name(device)
        else:
            name = f'{device.type}-{platform.machine()}-{os.cpu_count()}cpu'
        _DEVICE_NAMES[key] = name.replace(' ', '_')
    return _DEVICE_NAMES[key]


def cache_key(x: torch.Tensor, weight: torch.Tensor, groups: int, direction: str,
              shape=None, mode: str = 'circular') -> str:
    dev = x.device.type
    amp = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None
    if weight.shape[1] == 1 and weight.shape[0] == x.shape[1]:
        kind = 'depthwise'
    else:
        kind = 'dense' if groups == 1 else f'groups{groups}'
    if mode != 'circular':  # the linear mode: its kernel length is part of the problem
        kind += f'-{mode}{int(weight.shape[2] * weight.shape[3])}'
    phase = 'train' if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad) \
        else 'eval'
    shape = tuple(x.shape) if shape is None else shape
    return (f'{device_name(x.device)}|{x.dtype}|amp={amp}|{direction}|{shape}|'
            f'out={int(weight.shape[0])}|{kind}|{phase}')


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    # the input's own device (not the current one); synchronize waits for all its streams
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == 'cuda' else (lambda: None)
    fn()  # warm-up (kernels, plans, allocator)
    sync()
    best = float('inf')
    for _ in range(_REPEATS):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def capturing(device: torch.device) -> bool:
    """A CUDA graph is being captured on ``device``'s current stream (nothing may be timed or
    synchronized then)."""
    return device.type == 'cuda' and torch.cuda.is_current_stream_capturing()


_INDEX: Dict[str, list] = {}
_INDEX_GEN = -1


def _index() -> Dict[str, list]:
    """The cache by configuration without the input shape: prefix -> [(shape, impl)]."""
    global _INDEX_GEN
    if _INDEX_GEN != registry.generation():
        _INDEX.clear()
        for key, impl in _CACHE.items():
            parts = key.split('|')
            if len(parts) != 8:
                continue
            try:
                shape = tuple(int(v) for v in parts[4].strip('()').split(',') if v.strip())
            except ValueError:
                continue
            _INDEX.setdefault('|'.join(parts[:4] + parts[5:]), []).append((shape, impl))
        _INDEX_GEN = registry.generation()
    return _INDEX


def _traced_lookup(x: torch.Tensor, weight: torch.Tensor, groups: int, direction: str,
                   mode: str = 'circular') -> Optional[str]:
    """The cached choice inside torch.compile: the sizes may be symbols
    (``dynamic=True``), so the shape is matched by comparisons, which dynamo turns into guards:
    a size with a cached choice gets a graph of its own running that choice (as eager does),
    any other size the rule."""
    parts = cache_key(x, weight, groups, direction, shape='?', mode=mode).split('|')
    for shape, impl in _index().get('|'.join(parts[:4] + parts[5:]), ()):
        if len(shape) == x.dim() and all(d == s for d, s in zip(x.shape, shape)):
            return impl
    return None


def choose(x: torch.Tensor, weight: torch.Tensor, groups: int, direction: str,
           run: Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor],
           candidates=None, mode: str = 'circular') -> Optional[str]:
    """The autotuned impl for this call, or None (use the rule). ``run(impl, x, weight)``
    computes the call with one impl. Training keys (autograd on) are timed forward +
    backward, which decides training speed; eval keys forward only, without autograd.
    Inside torch.compile / tracing / CUDA-graph capture nothing is timed: a cached choice is
    used, else the rule."""
    if compiling() or capturing(x.device):
        if str(x.device) not in _DEVICE_NAMES or not _CACHE:
            return None  # (load_autotune_cache / enable_autotune name the devices)
        return _traced_lookup(x, weight, groups, direction, mode)
    if not _ENABLED and not _CACHE:
        return None
    key = cache_key(x, weight, groups, direction, mode=mode)
    if key in _CACHE or not _ENABLED:
        return _CACHE.get(key)
    if candidates is None:
        candidates = registry.impl_names()
    if key.endswith('|train'):
        xd = x.detach().requires_grad_(x.requires_grad)
        wd = weight.detach().requires_grad_(weight.requires_grad)
        wrt = [t for t in (xd, wd) if t.requires_grad]

        def step(i):
            y = run(i, xd, wd)
            return torch.autograd.grad(y, wrt, torch.ones_like(y))

        with torch.enable_grad():
            times = {impl: _timed(lambda i=impl: step(i), x.device) for impl in candidates}
    else:
        with torch.no_grad():
            times = {impl: _timed(lambda i=impl: run(i, x, weight), x.device)
                     for impl in candidates}
    _CACHE[key] = min(times, key=times.get)
    registry.changed()
    return _CACHE[key]


def default_cache_file(device: Optional[torch.device] = None) -> str:
    device = device or torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    root = os.environ.get('PARC_CACHE', osp.join(osp.expanduser('~'), '.cache', 'parc_mm'))
    return osp.join(root, f'autotune-{device_name(device)}.json')


def save_autotune_cache(path: Optional[str] = None) -> str:
    """Write the cache (JSON: key -> impl) to ``path`` (default: one file per device): under a
    lock next to the file, the entries a file there already holds are read, this process's
    choices merged over them and the result renamed over the file (several processes saving
    at once keep every choice). A file there that is not a readable autotune cache (a user's
    file, a damaged one) is never overwritten: :class:`AutotuneCacheError` names it."""
    from parc_mm.utils.fileio import atomic_write, expand, locked
    path = expand(path or default_cache_file())
    with locked(path):
        merged = _read_cache(path) if osp.exists(path) else {}
        merged.update(_CACHE)
        atomic_write(path, lambda f: json.dump(merged, f, indent=1, sort_keys=True), mode='w')
    return path


def _read_cache(path: str) -> Dict[str, str]:
    fix = ('if it is a damaged autotune cache, delete it (it is rebuilt by timing); otherwise '
           'choose another cache file')
    try:
        with open(path) as f:
            entries = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        reason = 'nested too deeply' if isinstance(e, RecursionError) else str(e)[:200]
        raise AutotuneCacheError(f'{path} is not a readable ParC autotune cache ({reason}): '
                                 f'{fix}') from None
    if not isinstance(entries, dict) or not all(
            isinstance(k, str) and '|' in k and isinstance(v, str) for k, v in entries.items()):
        raise AutotuneCacheError(f'{path} is not a ParC autotune cache (a JSON object of '
                                 f'configuration -> impl name): {fix}')
    names = registry.impl_names()
    bad = {k: v for k, v in entries.items() if v not in names}
    if bad:
        raise AutotuneCacheError(f'ParC autotune cache {path}: unknown impls '
                                 f'{sorted(map(str, set(bad.values())))} (registered: '
                                 f'{names}); '
                                 'delete it (it is rebuilt by timing)')
    return entries


def load_autotune_cache(path: Optional[str] = None) -> int:
    """Merge a saved cache (choices are then lookups, no timing); returns the entries read.
    Raises :class:`AutotuneCacheError` naming the file when it cannot be used."""
    path = path or default_cache_file()
    entries = _read_cache(path)
    _CACHE.update(entries)
    _known_devices()
    registry.changed()
    return len(entries)


def _known_devices() -> None:
    """Name this machine's devices now, in eager code: a compiled graph can only look a
    loaded choice up for a device whose name is known (naming it is not traceable)."""
    device_name(torch.device('cpu'))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            device_name(torch.device('cuda', i))


def sync_autotune_cache(src: int = 0) -> None:
    """Every rank takes rank ``src``'s cache (a no-op without torch.distributed)."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    obj = [dict(_CACHE) if dist.get_rank() == src else None]
    dist.broadcast_object_list(obj, src=src)
    _CACHE.clear()
    _CACHE.update(obj[0])
    registry.changed()

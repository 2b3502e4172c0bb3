"""Every change parc_mm makes to the libraries it runs on, in one place, with one trigger.

:func:`install` is the only trigger. ``import parc_mm`` calls it (so does the start-up
``parc_mm_mmengine.pth`` line of an installed environment, which only imports ``parc_mm``;
``PARC_MM_NO_STARTUP=1`` turns that line off). It imports nothing: it registers an import
hook, and each patch below is applied right after the module it patches has executed (at
once if it already has), and only when the installed versions need it (its ``needed``
guard). :func:`applied` says which patches are active in this process;
``tests/test_compat.py`` checks for each one that the upstream behaviour it works around is
still there, so a patch that upstream made unnecessary fails a test instead of lingering.

The patches:

``mmengine-parc-scope``
    mmengine resolves ``pkg::path`` config bases only for the packages of its hard-coded
    ``MODULE2PACKAGE`` table (open-mmlab/mmengine#1410; the fix, #1411, was closed
    unmerged), and reads that table while it parses a config, before the config's
    ``custom_imports`` run: adds ``parc_mm``.
``mmengine-unscope-parc-bases``
    mmengine tags every dict of a ``pkg::`` base with ``_scope_=pkg``, right for a library
    scope (``mmdet::``) but not for ours: our configs already name their library
    (``default_scope``), and tagged ``parc_mm`` a pipeline would look ``LoadAnnotations`` up
    in mmengine's root registry and get mmcv's. Our bases build in the using config's scope,
    as a local ``./`` base does.
``mmengine-checkpoints-weights-only``
    torch >= 2.6 loads with ``weights_only=True`` by default; mmengine <= 0.10.7 saves Runner
    checkpoints holding ``HistoryBuffer`` objects and numpy arrays, which that refuses
    (open-mmlab/mmengine#1655, #1650 open): exactly those types join torch's allow-list (the
    check stays on), and ``HistoryBuffer`` stops pickling its built-in statistics methods as
    ``getattr(HistoryBuffer, 'mean')`` (``__setstate__`` re-registers them), since allowing
    ``getattr`` would defeat the check.
``mmengine-fork-distribution-names``
    the OneDL fork installs the same modules under other distribution names
    (``onedl-mmsegmentation`` provides ``mmseg``), but its mmengine still maps ``mmseg`` to
    the distribution ``mmsegmentation`` when it resolves ``mmseg::`` bases, and fails with
    "mmsegmentation is not installed": every entry of ``MODULE2PACKAGE`` whose distribution is
    absent while another installed distribution provides the module is pointed at that one
    (only with onedl-mmengine installed).
``mmdeploy-torchscript-exporter``
    mmdeploy <= 1.3.1 (the last release) calls ``torch.onnx.export`` without ``dynamo=``;
    torch >= 2.9 exports with dynamo by default, which ignores mmdeploy's rewriters (its whole
    mechanism: NMS, box coders, RoI ops) and needs ``onnxscript``. Inside mmdeploy's
    ``export``, ``torch.onnx.export`` defaults to the TorchScript exporter again (an explicit
    ``dynamo=`` still wins).
``mmdeploy-roi-align-cast-long``
    mmdeploy's RoIAlign symbolic (ONNX Runtime backend: every two-stage detector) imports
    ``torch.onnx.symbolic_opset9._cast_Long``, which torch >= 2.9 removed: it is put back (a
    ``Cast`` to int64, what it was), only while missing and only with mmdeploy installed.
``mmdeploy-rewriter-restores-descriptors``
    mmdeploy's function rewriter puts an original function back by evaluating its path, so a
    ``staticmethod`` / ``classmethod`` comes back as a plain function: after one in-process
    mmdeploy export, mmpretrain's ``ShiftWindowMSA.get_attn_mask`` (a staticmethod it
    rewrites) is called with ``self`` and every Swin fails ("got multiple values for argument
    'window_size'"). The class attributes it rewrites are snapshotted on entry and put back
    as they were on exit.
``parc-onnx-static-size``
    parc_mm's own guarantee: a ParC graph is valid only at the size it was traced at (its
    kernels are as long as the feature map), so ``torch.onnx.export`` of a model holding ParC
    layers with a dynamic height or width (``dynamic_axes`` / ``dynamic_shapes`` on input
    axes 2 / 3; a dynamic batch is fine) is refused with the per-size fix, instead of writing
    a graph that runs at other sizes with wrong results.
``parc-verified-checkpoint-loader``
    not an upstream fix but parc_mm's own guarantee, applied the same way: mmengine's loader
    for local paths verifies the file first (a truncated or foreign checkpoint fails naming
    the file and the fix instead of deep inside ``torch.load``); see
    :func:`parc_mm.utils.checkpoint.load_checkpoint_file`.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Dict, List, Optional, Tuple

# the distributions that install each import name (OpenMMLab's and the OneDL fork's)
DISTRIBUTIONS = {'mmengine': ('mmengine', 'onedl-mmengine'), 'torch': ('torch', ),
                 'mmdeploy': ('mmdeploy', )}


_FROM_MODULE: Dict[str, str] = {}  # module -> the __version__ read where metadata is missing


def installed_version(module: str) -> Optional[Tuple[int, ...]]:
    """The (major, minor, patch) of the distribution installing ``module``; where no
    distribution metadata exists (a source tree on PYTHONPATH) the imported module's own
    ``__version__`` (recorded: :func:`applied` ``(verbose=True)`` says so); None when neither
    is known."""
    from importlib.metadata import PackageNotFoundError, version
    for dist in DISTRIBUTIONS.get(module, (module, )):
        try:
            text = version(dist)
        except PackageNotFoundError:
            continue
        return _parse(text)
    mod = sys.modules.get(module)
    text = getattr(mod, '__version__', None) if mod is not None else None
    if text is None and mod is not None:  # still executing its __init__: its version module
        try:
            text = getattr(importlib.import_module(module + '.version'), '__version__', None)
        except ImportError:
            text = None
    if isinstance(text, str) and re.match(r'\d', text):
        _FROM_MODULE[module] = text
        return _parse(text)
    return None


def _parse(text: str) -> Tuple[int, ...]:
    nums = re.findall(r'\d+', text.split('+')[0])[:3]
    return tuple(int(n) for n in nums)


def stack() -> str:
    """``'onedl'`` when the OneDL fork provides mmengine, else ``'openmmlab'``."""
    return 'onedl' if _has_distribution('onedl-mmengine') else 'openmmlab'


def _older_than(module: str, bound: Tuple[int, ...]) -> bool:
    v = installed_version(module)
    return v is not None and v < bound


def _at_least(module: str, bound: Tuple[int, ...]) -> bool:
    v = installed_version(module)
    return v is not None and v >= bound


@dataclass(frozen=True)
class Patch:
    """One change to an upstream module.

    Attributes:
        name: what :func:`applied` reports.
        target: the module patched; the patch runs right after it has executed.
        ready: an attribute the target has once it has executed.
        needed: the version guard: whether the installed versions need the patch.
        apply: the change, given the target module (idempotent).
    """
    name: str
    target: str
    ready: str
    needed: Callable[[], bool]
    apply: Callable[[ModuleType], None]


def _register_scope(module: ModuleType) -> None:
    module.MODULE2PACKAGE.setdefault('parc_mm', 'parc_mm')


def _unscope_bases(module: ModuleType) -> None:
    config_cls = module.Config
    if getattr(config_cls._get_cfg_path, '_parc_mm', False):
        return
    orig = config_cls._get_cfg_path

    def _get_cfg_path(cfg_path, filename):
        path, scope = orig(cfg_path, filename)
        return path, (None if scope == 'parc_mm' else scope)

    _get_cfg_path._parc_mm = True  # type: ignore[attr-defined]
    config_cls._get_cfg_path = staticmethod(_get_cfg_path)


def _has_distribution(name: str) -> bool:
    from importlib.metadata import PackageNotFoundError, version
    try:
        version(name)
        return True
    except PackageNotFoundError:
        return False


def _fork_distributions(module: ModuleType) -> None:
    from importlib.metadata import packages_distributions
    from importlib.util import find_spec
    table = module.MODULE2PACKAGE
    missing = [m for m, d in table.items() if not _has_distribution(d) and find_spec(m)]
    if not missing:
        return
    provided = packages_distributions()  # import name -> the distributions installing it
    for m in missing:
        dists = [d for d in provided.get(m, []) if _has_distribution(d)]
        if dists:
            table[m] = dists[0]


def _allow_checkpoints(module: ModuleType) -> None:
    import torch

    from parc_mm.utils.checkpoint import checkpoint_globals
    buffer = module.HistoryBuffer
    torch.serialization.add_safe_globals(checkpoint_globals(buffer))
    if getattr(buffer.__getstate__, '_parc_mm', False):
        return
    orig = buffer.__getstate__

    def __getstate__(self) -> dict:
        state = dict(orig(self))
        methods = state.get('statistics_methods', {})
        state['statistics_methods'] = {
            k: v for k, v in methods.items() if getattr(buffer, k, None) is not v}
        return state

    __getstate__._parc_mm = True  # type: ignore[attr-defined]
    buffer.__getstate__ = __getstate__


def _verified_loader(module: ModuleType) -> None:
    from parc_mm.utils.checkpoint import load_checkpoint_file
    loader = module.CheckpointLoader
    if loader._schemes.get('') is not load_checkpoint_file:
        loader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)


def _torchscript_default(module: ModuleType) -> None:
    import functools

    import torch
    orig = module.export
    if getattr(orig, '_parc_mm', False):
        return

    @functools.wraps(orig)
    def export(*args, **kwargs):
        onnx_export = torch.onnx.export
        torch.onnx.export = functools.partial(onnx_export, dynamo=False)
        try:
            return orig(*args, **kwargs)
        finally:
            torch.onnx.export = onnx_export

    export._parc_mm = True  # type: ignore[attr-defined]
    module.export = export


def _cast_long(module: ModuleType) -> None:
    if hasattr(module, '_cast_Long'):
        return

    def _cast_Long(g, input, non_blocking=False):  # noqa: N802 (torch's name)
        from torch.onnx import _C_onnx
        return g.op('Cast', input, to_i=_C_onnx.TensorProtoDataType.INT64)

    module._cast_Long = _cast_Long


def _restore_descriptors(module: ModuleType) -> None:
    import importlib
    rewriter = module.FunctionRewriter
    if getattr(rewriter.enter, '_parc_mm', False):
        return
    enter, exit_ = rewriter.enter, rewriter.exit

    def _owner(path: str):
        """(class, attribute name) when ``path`` names a class attribute, else None."""
        parts = path.split('.')
        for i in range(len(parts) - 1, 0, -1):
            try:
                obj = importlib.import_module('.'.join(parts[:i]))
            except Exception:  # noqa: BLE001 - not a module path
                continue
            try:
                for name in parts[i:-1]:
                    obj = getattr(obj, name)
            except AttributeError:
                return None
            return (obj, parts[-1]) if isinstance(obj, type) else None
        return None

    def patched_enter(self, *args, **kwargs):
        saved = []
        for path, _ in self._registry.get_records(kwargs.get('env', args[1] if len(args) > 1
                                                             else {})):
            owner = _owner(path)
            if owner is not None and owner[1] in vars(owner[0]):
                raw = vars(owner[0])[owner[1]]
                if isinstance(raw, (staticmethod, classmethod)):
                    saved.append((owner[0], owner[1], raw))
        self._parc_mm_descriptors = saved
        return enter(self, *args, **kwargs)

    def patched_exit(self, *args, **kwargs):
        try:
            return exit_(self, *args, **kwargs)
        finally:
            for cls, name, raw in getattr(self, '_parc_mm_descriptors', ()):
                setattr(cls, name, raw)

    patched_enter._parc_mm = True  # type: ignore[attr-defined]
    rewriter.enter, rewriter.exit = patched_enter, patched_exit


def _dynamic_input_axes(kwargs: dict) -> List[str]:
    """The input height / width axes an export call marks dynamic (as 'name[axis]')."""
    found = []
    axes = kwargs.get('dynamic_axes') or {}
    outputs = set(kwargs.get('output_names') or ())
    inputs = kwargs.get('input_names')
    for name, spec in dict(axes).items():
        if name in outputs or (inputs is not None and name not in inputs):
            continue
        dims = spec.keys() if isinstance(spec, dict) else spec
        found += [f'{name}[{d}]' for d in dims if d in (2, 3, -1, -2)]
    shapes = kwargs.get('dynamic_shapes')
    first = None
    if isinstance(shapes, dict) and shapes:
        first = next(iter(shapes.values()))
    elif isinstance(shapes, (tuple, list)) and shapes:
        first = shapes[0]
    if isinstance(first, dict):
        found += [f'input[{d}]' for d, v in first.items() if d in (2, 3) and v is not None]
    elif isinstance(first, (tuple, list)):
        found += [f'input[{d}]' for d, v in enumerate(first) if d in (2, 3) and v is not None]
    return found


def _static_size_export(module: ModuleType) -> None:
    import functools

    orig = module.export
    if getattr(orig, '_parc_mm', False):
        return

    @functools.wraps(orig)
    def export(model, *args, **kwargs):
        dynamic = _dynamic_input_axes(kwargs)  # (export's dynamic arguments are keyword-only)
        if dynamic and callable(getattr(model, 'modules', None)):
            from parc_mm.ops.export import parc_layers
            if next(parc_layers(model), None) is not None:
                raise ValueError(
                    f'this model holds ParC layers, whose kernels are as long as the feature '
                    f'map: its ONNX graph is valid only at the size it is traced at, but the '
                    f'export marks {", ".join(dynamic)} dynamic. Export once per input size '
                    '(a dynamic batch axis is fine); with mmdeploy, use a static deploy '
                    'config (onnx_config.input_shape) per size')
        return orig(model, *args, **kwargs)

    export._parc_mm = True  # type: ignore[attr-defined]
    module.export = export


# mmengine 0.11 is the first release that could carry the upstream fixes (none so far)
_MMENGINE_FIXED = (0, 11)

PATCHES: Tuple[Patch, ...] = (
    Patch('mmengine-parc-scope', 'mmengine.config.utils', 'MODULE2PACKAGE',
          lambda: _older_than('mmengine', _MMENGINE_FIXED), _register_scope),
    Patch('mmengine-unscope-parc-bases', 'mmengine.config.config', 'Config',
          lambda: _older_than('mmengine', _MMENGINE_FIXED), _unscope_bases),
    Patch('mmengine-checkpoints-weights-only', 'mmengine.logging.history_buffer',
          'HistoryBuffer',
          lambda: _at_least('torch', (2, 6)) and _older_than('mmengine', _MMENGINE_FIXED),
          _allow_checkpoints),
    Patch('mmengine-fork-distribution-names', 'mmengine.config.utils', 'MODULE2PACKAGE',
          lambda: stack() == 'onedl', _fork_distributions),
    # mmdeploy 1.3.1 is the last release; a later one could carry the fixes
    Patch('mmdeploy-torchscript-exporter', 'mmdeploy.apis.onnx.export', 'export',
          lambda: _at_least('torch', (2, 9)) and _older_than('mmdeploy', (1, 4)),
          _torchscript_default),
    Patch('mmdeploy-roi-align-cast-long', 'torch.onnx.symbolic_opset9', 'index',
          lambda: _at_least('torch', (2, 9)) and _older_than('mmdeploy', (1, 4)), _cast_long),
    Patch('mmdeploy-rewriter-restores-descriptors', 'mmdeploy.core.rewriters.function_rewriter',
          'FunctionRewriter', lambda: _older_than('mmdeploy', (1, 4)), _restore_descriptors),
    Patch('parc-onnx-static-size', 'torch.onnx', 'export',
          lambda: installed_version('torch') is not None, _static_size_export),
    Patch('parc-verified-checkpoint-loader', 'mmengine.runner.checkpoint', 'CheckpointLoader',
          lambda: installed_version('mmengine') is not None, _verified_loader),
)
_BY_NAME: Dict[str, Patch] = {p.name: p for p in PATCHES}
_APPLIED: Dict[str, bool] = {}
_GUARDS: Dict[str, bool] = {}


def _needed(patch: Patch) -> bool:
    if patch.name not in _GUARDS:  # (reads package metadata: once per process)
        _GUARDS[patch.name] = bool(patch.needed())
    return _GUARDS[patch.name]


def _run(patch: Patch, module: ModuleType) -> None:
    if _needed(patch):
        patch.apply(module)
        _APPLIED[patch.name] = True


class _Finder(importlib.abc.MetaPathFinder):
    """Finds each patch's target through the other finders and applies the patch right after
    the module has executed."""

    def find_spec(self, fullname, path, target=None):
        patches = [p for p in PATCHES if p.target == fullname and p.name not in _APPLIED]
        if not patches:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            for patch in patches:
                _run(patch, module)

        spec.loader.exec_module = exec_and_patch
        return spec


def install() -> None:
    """Apply each needed patch now to loaded targets, and to the others when they are
    imported (idempotent; imports nothing)."""
    pending = False
    for patch in PATCHES:
        module = sys.modules.get(patch.target)
        if module is not None and hasattr(module, patch.ready):
            _run(patch, module)
        elif patch.name not in _APPLIED:
            pending = True
    if pending and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def ensure(name: str) -> bool:
    """Import the target of patch ``name`` and (re)apply the patch; True if it is active. For
    code that needs a patch right now: a ``torch.load`` of a Runner checkpoint needs the
    allow-list before unpickling, and another library's ``torch.serialization.safe_globals``
    block removes, when it exits, every entry it named, ours included (the OneDL fork's
    mmengine loads checkpoints inside one), so each load re-adds them (cheap, idempotent)."""
    patch = _BY_NAME[name]
    install()
    module = importlib.import_module(patch.target)
    if hasattr(module, patch.ready):
        _run(patch, module)
    return _APPLIED.get(patch.name, False)


def applied(verbose: bool = False) -> Dict[str, object]:
    """Each patch's name -> whether it is active in this process. ``verbose``: a sentence
    instead (applied / not needed by the installed versions / target not imported yet), which
    also says when a version was read from a module's ``__version__`` because its
    distribution metadata is missing."""
    if not verbose:
        return {p.name: _APPLIED.get(p.name, False) for p in PATCHES}
    note = ''
    if _FROM_MODULE:
        note = ' (versions read from ' + ', '.join(
            f'{m}.__version__ = {v}' for m, v in sorted(_FROM_MODULE.items())) + \
            ': no distribution metadata)'
    out: Dict[str, object] = {}
    for p in PATCHES:
        if _APPLIED.get(p.name):
            state = 'applied'
        elif p.name in _GUARDS:
            state = 'not needed by the installed versions'
        else:
            state = f'pending ({p.target} not imported yet)'
        out[p.name] = state + note
    return out


__all__ = ['PATCHES', 'Patch', 'applied', 'ensure', 'install', 'installed_version', 'stack']

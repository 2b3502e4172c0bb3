"""Checkpoints that are never half-written and never load damaged.

* :func:`verify_checkpoint` checks a file before anything reads it: PyTorch's zip format stores
  a CRC32 per record, which ``torch.load`` does not check (a file with 2 KB flipped in the
  middle loads "fine" with weights of 1e29). A damaged, truncated, empty or non-checkpoint file
  raises :class:`CheckpointError` naming the file and what to do.
* :func:`load_checkpoint_file` is what every parc_mm tool uses to read a checkpoint; once
  ``parc_mm`` is imported (:mod:`parc_mm.compat`) it is also mmengine's loader for local
  paths, so ``init_cfg=dict(type='Pretrained')``, ``load_from`` and
  ``--resume`` verify too, in our tools and in mmdet's / mmseg's / mmpretrain's own scripts.
* :func:`atomic_torch_save` writes a temporary file in the same folder, fsyncs it and renames
  it over the target: a reader (or a kill) sees the old file or the new one, never a part.
* :func:`newest_loadable_checkpoint` is the resume fallback: the newest checkpoint of a work
  dir that verifies, logging every broken one it skips.
"""
from __future__ import annotations

import glob
import os.path as osp
import re
import zipfile
from typing import Any, Callable, List, Optional, Sequence

# Where the checkpoint files the shipped configs expect come from (missing-file messages).
_RECIPES = {
    'parc-convnext-xt_in1k.pth': 'python tools/model_converters/to_parc.py convnext '
                                 '<official ParC-ConvNeXt-XT .pth> {path} --arch xt',
    'parc-convnext-t_in1k.pth': 'python tools/model_converters/to_parc.py convnext '
                                '<ConvNeXt-T ImageNet .pth (facebook / timm / mmpretrain)> '
                                '{path} --arch tiny',
    'parc-resnet50_in1k.pth': 'python tools/model_converters/to_parc.py resnet '
                              '<official ParC-ResNet50 .pth> {path}',
    'parc-mobilenet-v2_in1k.pth': 'python tools/model_converters/to_parc.py mv2 '
                                  '<official ParC-MobileNetV2 .pth> {path}',
    'parc-net-s_in1k.pth': 'python tools/model_converters/to_parc.py parcnet '
                           '<official ParC-Net-S .pt> {path} --arch s',
    'parc-net-xs_in1k.pth': 'python tools/model_converters/to_parc.py parcnet '
                            '<official ParC-Net-XS .pt> {path} --arch xs',
}


class CheckpointError(ValueError):
    """A checkpoint file that is missing, empty, truncated, damaged or not a checkpoint."""


def missing_checkpoint_hint(path: str) -> str:
    """How to make the checkpoint file ``path`` that a config expects."""
    recipe = _RECIPES.get(osp.basename(path))
    if recipe:
        return f'Make it with: {recipe.format(path=path)}'
    return ('Train the matching ImageNet config (configs/<family>/*_in1k.py) or convert a '
            'checkpoint with tools/model_converters/to_parc.py, then point init_cfg.checkpoint '
            'at it (or set init_cfg=None to start from random weights).')


def verify_checkpoint(path: str) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a whole, undamaged checkpoint.

    Zip-format files (``torch.save`` since 1.6) are checked record by record against their
    CRC32; legacy (pickle) files, which carry no checksum, only for being non-empty.
    """
    path = osp.expanduser(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'Checkpoint {path} does not exist. '
                                f'{missing_checkpoint_hint(path)}')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointError(f'Checkpoint {path} is empty (0 bytes): a save that was '
                              'interrupted, or a failed download. Delete it and save / '
                              'download it again.')
    with open(path, 'rb') as f:
        head = f.read(4)
    if head.startswith(b'PK'):
        try:
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
            raise CheckpointError(f'Checkpoint {path} is truncated or damaged ({e}); it '
                                  'cannot be loaded. Delete it and save / download it '
                                  'again.') from None
        if bad is not None:
            raise CheckpointError(f'Checkpoint {path} is damaged: record {bad!r} fails its '
                                  'CRC32 check (the file changed after it was written). '
                                  'Delete it and save / download it again.')
    elif not head.startswith(b'\x80'):  # pickle protocol 2+ (legacy torch.save)
        raise CheckpointError(f'{path} is not a PyTorch checkpoint (it starts with {head!r}, '
                              'neither a zip archive nor a pickle).')
    else:
        import warnings
        warnings.warn(f'{path} is a legacy (non-zip) PyTorch checkpoint: it carries no '
                      'checksums, so damage to it cannot be detected (a damaged file may load '
                      'with wrong or NaN weights). Re-save it with torch.save (PyTorch >= 1.6) '
                      'to get a file that is verified on every load.', UserWarning,
                      stacklevel=2)


def torch_load(path: str, map_location: Any = 'cpu', trusted: bool = False) -> Any:
    """``torch.load`` of a verified file with a clear message for what it refuses.

    ``trusted=True`` loads arbitrary pickled objects (``weights_only=False``): only for files
    you trust, e.g. official checkpoints that pickle their ``argparse.Namespace``.
    """
    import pickle

    import torch

    verify_checkpoint(path)
    if not trusted:
        allow_runner_checkpoint_types()
    try:
        return torch.load(path, map_location=map_location, weights_only=not trusted)
    except pickle.UnpicklingError as e:
        if trusted:
            raise
        raise CheckpointError(
            f'Checkpoint {path} holds Python objects that the safe loader refuses '
            f'({str(e).splitlines()[0][:200]}). If you trust the file, pass '
            '--trust-checkpoint (parc_mm\'s tools/train.py, test.py, infer.py, '
            'deploy/export_onnx.py, deploy/deploy.py and model_converters/to_parc.py), set '
            'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 for other scripts, or call torch.load(..., '
            'weights_only=False).') from None
    except (EOFError, RuntimeError, KeyError) as e:
        raise CheckpointError(f'Checkpoint {path} cannot be read ({type(e).__name__}: '
                              f'{e}); it is damaged or not a PyTorch checkpoint.') from None


_TRUSTED = False


def checkpoint_globals(history_buffer: type) -> List[object]:
    """The types of a Runner checkpoint that torch's weights-only unpickler may build."""
    import numpy as np

    allowed: List[object] = [history_buffer, np.ndarray, np.dtype]
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    allowed += [_reconstruct, scalar]
    # concrete dtype classes (np.dtypes.Float64DType, ...) are pickled by numpy >= 1.25
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return allowed


def allow_runner_checkpoint_types() -> None:
    """Put the types of a Runner checkpoint on torch's weights-only allow-list, before each
    load: another library's ``torch.serialization.safe_globals`` block removes, when it exits,
    every entry it named, ours included (the OneDL fork's mmengine loads inside one). Importing
    mmengine's ``HistoryBuffer`` also applies the ``mmengine-checkpoints-weights-only`` patch
    (:mod:`parc_mm.compat`) where the installed versions need it."""
    import torch
    try:
        from mmengine.logging.history_buffer import HistoryBuffer
    except ImportError:  # no mmengine: no Runner checkpoints to allow
        return
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(checkpoint_globals(HistoryBuffer))


def trust_checkpoints(trusted: bool = True) -> None:
    """Let the loader below read pickled Python objects (``--trust-checkpoint`` of the tools:
    only for files you trust)."""
    global _TRUSTED
    _TRUSTED = bool(trusted)


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-path checkpoint loader, verifying the file first."""
    return torch_load(filename, map_location=map_location, trusted=_TRUSTED)


def check_resumable(path: str) -> None:
    """Raise :class:`CheckpointError` unless ``path`` is a Runner checkpoint that ``--resume``
    can continue from (its ``meta`` holds the step; weights-only files have none)."""
    import torch

    allow_runner_checkpoint_types()
    try:
        ckpt = torch.load(path, map_location='cpu', mmap=True, weights_only=not _TRUSTED)
    except Exception:  # legacy files do not mmap; the loader itself reports the rest
        ckpt = torch_load(path, trusted=_TRUSTED)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get('meta'), dict) or \
            'state_dict' not in ckpt:
        keys = sorted(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(
            f'--resume: {path} is not a training checkpoint (it holds {keys}: weights only, '
            'no iteration / optimizer state), so a run cannot resume from it. Start a new run '
            f'from its weights instead: --cfg-options load_from={path} (without --resume).')


from .fileio import (  # noqa: E402,F401  (the writers live in fileio; re-exported)
    TMP_SUFFIX,
    _fsync_dir,
    atomic_write,
    current_umask,
    file_mode_for,
    temp_name,
)


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)``, atomically (see :func:`atomic_write`)."""
    import torch
    atomic_write(path, lambda f: torch.save(obj, f))


def _step_of(path: str) -> int:
    m = re.search(r'(\d+)\.pth$', osp.basename(path))
    return int(m.group(1)) if m else -1


def newest_loadable_checkpoint(work_dir: str, prefer: Optional[str] = None,
                               logger: Optional[Callable[[str], None]] = None,
                               patterns: Sequence[str] = ('iter_*.pth', 'epoch_*.pth')
                               ) -> Optional[str]:
    """The checkpoint to resume from: ``prefer`` (e.g. the one ``last_checkpoint`` names)
    when it verifies, else the newest file matching ``patterns`` (the checkpoint hook's
    ``filename_tmpl`` with ``*`` for the step) in ``work_dir`` that does. Every broken
    candidate is reported through ``logger``. None when there is none."""
    found = {p for pat in patterns for p in glob.glob(osp.join(glob.escape(work_dir), pat))
             if not osp.basename(p).startswith(('.', 'best_'))}
    candidates: List[str] = sorted(found, key=lambda p: (_step_of(p), osp.getmtime(p)),
                                   reverse=True)
    if prefer:
        candidates = [prefer] + [c for c in candidates if osp.abspath(c) != osp.abspath(prefer)]
    for c in candidates:
        try:
            verify_checkpoint(c)
            return c
        except (CheckpointError, FileNotFoundError) as e:
            if logger is not None:
                logger(f'resume: skipping broken checkpoint {c}: {e}')
    return None


def checkpoint_meta(checkpoint: Optional[str]) -> dict:
    """The ``meta`` dict of a checkpoint file (empty when it has none)."""
    if checkpoint is None:
        return {}
    ckpt = load_checkpoint_file(checkpoint, map_location='cpu')
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    return meta if isinstance(meta, dict) else {}

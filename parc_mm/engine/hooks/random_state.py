"""The random number generators' states, saved with a checkpoint and given back on resume
where the train loop fast-forwards instead of replaying.

OpenMMLab's mmengine resumes an iteration-based run by loading (and discarding) the batches
already trained on: the data pipeline's random transforms draw from the same generators as in
an uninterrupted run, so the run continues with the same augmentations. The OneDL fork
fast-forwards the sampler instead (``skip_iter``: no data is loaded, no draw is made), so
after a resume every random transform (flips, crops, rotations) differs from the uninterrupted
run. :class:`ResumeRandomState` puts back the states saved with the checkpoint right before
the first batch after the skip: the resumed run then draws exactly what the uninterrupted
one drew (tested on both stacks). With ``num_workers > 0`` the pipeline draws from the
workers' generators, which no checkpoint holds; in distributed runs each rank has its own
states and only rank 0's are saved: neither case is restored.
"""
from __future__ import annotations

import random
from typing import Any, Dict, Iterator

import numpy as np
import torch

KEY = 'parc_mm_random_state'


def capture() -> Dict[str, Any]:
    """Python's, numpy's and torch's (CPU, and CUDA when initialised) generator states, in
    types ``torch.load(weights_only=True)`` reads."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(python=[version, list(internal), gauss],
                 numpy=[name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                        float(cached)],
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore(state: Dict[str, Any]) -> None:
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state['numpy']
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class ResumeRandomState:
    """Wraps a train loop's dataloader iterator: restores ``state`` right before the first
    batch that is trained on after a fast-forward (``skip_iter``). Replaying loops (which
    draw as the uninterrupted run did) are left alone."""

    def __init__(self, iterator: Iterator, state: Dict[str, Any]) -> None:
        self._iterator = iterator
        self._state = state
        self._fast_forwarded = False

    def skip_iter(self, num_iters: int) -> None:
        self._iterator.skip_iter(num_iters)
        self._fast_forwarded = num_iters > 0

    def __iter__(self):
        return self

    def __next__(self):
        if self._state is not None and self._fast_forwarded:
            restore(self._state)
        self._state = None  # once: the first batch after the skip (or never)
        return next(self._iterator)

    def __getattr__(self, name: str):
        return getattr(self._iterator, name)

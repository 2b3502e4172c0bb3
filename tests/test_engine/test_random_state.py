"""The generators' states saved with a checkpoint, given back where a loop fast-forwards."""
import io
import random

import numpy as np
import torch

from parc_mm.engine.hooks.random_state import ResumeRandomState, capture, restore


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_states_round_trip_through_a_weights_only_checkpoint():
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    _draws()
    buf = io.BytesIO()
    torch.save({'s': capture()}, buf)
    expected = _draws()
    _draws()
    buf.seek(0)
    restore(torch.load(buf)['s'])  # weights_only=True, torch's default
    assert _draws() == expected


class _FastForwarding:
    """A dataloader iterator of a loop that skips without drawing (the OneDL fork's)."""

    def __init__(self):
        self.skipped = 0

    def skip_iter(self, n):
        self.skipped += n

    def __next__(self):
        return _draws()  # a random transform of the pipeline


def test_the_states_come_back_before_the_first_batch_after_a_skip_only():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    state = capture()
    uninterrupted = _draws()
    it = ResumeRandomState(_FastForwarding(), state)
    it.skip_iter(3)
    assert it.skipped == 3  # other attributes reach the wrapped iterator
    assert next(it) == uninterrupted
    assert next(it) != uninterrupted  # once only
    # a replaying loop (no skip_iter call) draws on; nothing is restored
    state = capture()
    first = _draws()
    it = ResumeRandomState(_FastForwarding(), state)
    assert next(it) != first

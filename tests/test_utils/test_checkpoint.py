"""parc_mm.utils.checkpoint: legacy files and refused pickles say what to do."""
import os.path as osp

import pytest
import torch

from tests.harness import ROOT
from tests.harness import run_py as _run


# --- hostile cases: legacy checkpoints and pickles ---
def test_legacy_checkpoints_warn_that_they_cannot_be_verified(tmp_path):
    from parc_mm.utils.checkpoint import verify_checkpoint
    path = str(tmp_path / 'legacy.pth')
    torch.save({'w': torch.zeros(3)}, path, _use_new_zipfile_serialization=False)
    with pytest.warns(UserWarning, match='cannot be detected'):
        verify_checkpoint(path)


def test_refused_pickles_name_flags_the_tools_have(tmp_path):
    import argparse

    from parc_mm.utils.checkpoint import CheckpointError, torch_load
    path = str(tmp_path / 'ns.pth')
    torch.save({'args': argparse.Namespace(a=1), 'state_dict': {}}, path)
    with pytest.raises(CheckpointError, match='tools/train.py, test.py') as e:
        torch_load(path)
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' in str(e.value)
    for tool in ('train.py', 'test.py', 'infer.py'):
        p = _run([osp.join(ROOT, 'tools', tool), '--help'])
        assert '--trust-checkpoint' in p.stdout

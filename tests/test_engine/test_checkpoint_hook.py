"""SafeCheckpointHook: the one-run-per-checkpoint-folder lock lives where the files are."""
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch

from tests.harness import PY
from tests.harness import run_py as _run

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAULT = osp.join(ROOT, 'tests', 'fault_train.py')
ENV = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1'}


def _train(work_dir, iters, *extra):
    return subprocess.run([sys.executable, FAULT, str(work_dir), str(iters), *extra],
                          capture_output=True, text=True, env=ENV, cwd=ROOT)


def test_two_work_dirs_sharing_a_checkpoint_out_dir_are_refused(tmp_path):
    """Different work dirs, one checkpoint ``out_dir`` (mmengine writes to
    ``out_dir/<work dir name>``): the second run is refused while the first writes there."""
    out = tmp_path / 'ckpts'
    first = subprocess.Popen([sys.executable, FAULT, str(tmp_path / 'a' / 'run'), '40',
                              '--out-dir', str(out)], env=ENV, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = out / 'run' / '.parc_mm_checkpoint.lock'
    try:
        t_end = time.time() + 60
        while time.time() < t_end and not lock.exists():
            time.sleep(0.05)
        assert lock.exists()
        p = _train(tmp_path / 'b' / 'run', 2, '--out-dir', str(out))
        assert p.returncode != 0
        assert f'pid {first.pid}' in p.stdout + p.stderr and str(out / 'run') in p.stderr
    finally:
        first.kill()
        first.wait()
    p = _train(tmp_path / 'b' / 'run', 2, '--out-dir', str(out))  # stale once it is gone
    assert p.returncode == 0, p.stderr[-2000:]
    assert (out / 'run' / 'iter_2.pth').is_file()


def test_resume_from_a_folder_takes_its_newest_checkpoint(tmp_path):
    """--resume DIR (with or without the trailing slash) resumes from the newest checkpoint of
    that folder that verifies; a folder without one is refused with the fix."""
    sys.path.insert(0, ROOT)
    import pytest

    from parc_mm.utils.checkpoint import CheckpointError
    from tools import train
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(CheckpointError, match='a folder without a checkpoint that loads'):
        train.main(['configs/demo/shapes_cls_parc-convnext.py', '--work-dir',
                    str(tmp_path / 'wd'), '--resume', str(empty)])
    p = _train(tmp_path / 'run', 2)
    assert p.returncode == 0, p.stderr[-2000:]
    from unittest import mock

    import mmengine.runner

    class Built(Exception):
        pass

    def from_cfg(cfg):
        raise Built(cfg.load_from, cfg.resume)

    with mock.patch('parc_mm.apis.runner.check_datasets'), \
            mock.patch.object(mmengine.runner.Runner, 'from_cfg', from_cfg):
        for folder in (str(tmp_path / 'run'), str(tmp_path / 'run') + '/'):
            with pytest.raises(Built) as e:
                train.main(['configs/demo/shapes_cls_parc-convnext.py', '--work-dir',
                            str(tmp_path / 'wd'), '--resume', folder])
            assert e.value.args[0].endswith('iter_2.pth') and e.value.args[1] is True


# --- hostile cases: the checkpoint hook ---

def _fault(work_dir, iters, *extra, check=True):
    return _run([FAULT, str(work_dir), str(iters), *extra], check=check)


def _loads(path):
    from parc_mm.utils.checkpoint import verify_checkpoint
    verify_checkpoint(str(path))
    return True


@pytest.mark.parametrize('delay', [0.0, 0.01, 0.03])
def test_kill_during_the_best_checkpoint_save_keeps_the_previous_best(tmp_path, delay):
    """mmengine deletes the previous best before writing the new one: a kill then left only a
    truncated best file. Our hook writes it atomically and deletes the old one after."""
    wd = tmp_path / 'wd'
    from tests.fault_train import kill_when
    rc = kill_when(['4', '--best', '--keep', '3'], wd,
                   ('.best_score_iter_3.pth.', 'best_score_iter_3.pth'), delay)
    bests = [n for n in os.listdir(wd) if n.startswith('best_') and n.endswith('.pth')]
    assert bests, (rc, os.listdir(wd))
    for b in bests:
        assert _loads(wd / b)


def test_full_disk_never_worse_than_mmengine(tmpfs):
    """Room for one checkpoint (+ margin) but not two: mmengine's hook finishes; ours used to
    die at the second save and leave a hidden temp file that kept the disk full."""
    disk = tmpfs('disk', '52m')  # a checkpoint here is ~32 MB (weights + SGD momentum)
    _fault(disk / 'mmengine', 3, '--hook', 'CheckpointHook')
    import shutil
    shutil.rmtree(disk / 'mmengine')
    p = _fault(disk / 'ours', 3)
    assert 'deleting' in p.stdout + p.stderr  # the fallback says what it does
    left = os.listdir(disk / 'ours')
    assert 'iter_3.pth' in left and not [n for n in left if n.endswith('.tmp')], left
    assert _loads(disk / 'ours' / 'iter_3.pth')
    p = _fault(disk / 'ours', 4, '--resume')  # and --resume starts
    assert 'iter_4.pth' in os.listdir(disk / 'ours')


def test_stale_temp_files_are_removed_first_and_a_live_runs_are_not(tmp_path):
    wd = tmp_path / 'wd'
    wd.mkdir()
    dead = subprocess.run([PY, '-c', 'import os; print(os.getpid())'], capture_output=True,
                          text=True).stdout.strip()
    stale = wd / f'.iter_9.pth.{dead}.deadbeef.tmp'
    stale.write_bytes(b'x' * 1000)
    old_style = wd / '.iter_8.pth.tmp'
    old_style.write_bytes(b'x')
    live = wd / f'.iter_7.pth.{os.getpid()}.cafe.tmp'  # this test process runs
    live.write_bytes(b'x')
    users = wd / '.my_notes.tmp'  # not a checkpoint temp: never touched
    users.write_text('mine')
    p = _fault(wd, 1)
    assert not stale.exists() and not old_style.exists() and 'removing' in p.stdout + p.stderr
    assert live.exists() and users.read_text() == 'mine'


def test_second_run_in_the_same_work_dir_is_refused_by_pid(tmp_path):
    wd = tmp_path / 'wd'
    # (long enough to still hold its lock on a loaded machine; it is killed below)
    first = subprocess.Popen([PY, FAULT, str(wd), '400'], env=ENV, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t_end = time.time() + 180
        while time.time() < t_end and not (wd / '.parc_mm_checkpoint.lock').exists():
            time.sleep(0.05)
        p = _fault(wd, 2, check=False)
        assert p.returncode != 0 and f'pid {first.pid}' in p.stdout + p.stderr
    finally:
        first.kill()
        first.wait()
    _fault(wd, 2)  # its lock is stale once it is gone


def test_filename_templates_with_folders_and_other_names(tmp_path):
    wd = tmp_path / 'wd'
    _fault(wd, 2, '--tmpl', 'ckpts/iter_{}.pth')
    assert _loads(wd / 'ckpts' / 'iter_2.pth')
    _fault(wd, 3, '--tmpl', 'ckpts/iter_{}.pth', '--resume')
    assert _loads(wd / 'ckpts' / 'iter_3.pth')
    wd2 = tmp_path / 'wd2'
    _fault(wd2, 2, '--tmpl', 'model_{}.pth')
    os.remove(wd2 / 'last_checkpoint')  # resume must find model_2.pth by the template
    p = _fault(wd2, 3, '--tmpl', 'model_{}.pth', '--resume')
    assert 'resumed epoch: 0, iter: 2' in p.stdout + p.stderr
    assert _loads(wd2 / 'model_3.pth')


def test_resume_in_a_copied_work_dir_uses_its_own_checkpoint(tmp_path):
    import shutil
    wd = tmp_path / 'wd'
    _fault(wd, 2)
    copy_ = tmp_path / 'copy'
    shutil.copytree(wd, copy_)
    p = _fault(copy_, 3, '--resume')
    assert 'outside this work dir' in p.stdout + p.stderr
    assert 'iter_3.pth' in os.listdir(copy_) and 'iter_3.pth' not in os.listdir(wd)
    shutil.move(str(copy_), str(tmp_path / 'moved'))  # moved: the original path is gone
    _fault(tmp_path / 'moved', 4, '--resume')
    assert 'iter_4.pth' in os.listdir(tmp_path / 'moved')


def test_resume_of_weights_only_or_of_a_finished_run_says_why(tmp_path):
    wd = tmp_path / 'wd'
    _fault(wd, 2)
    weights = tmp_path / 'weights.pth'
    torch.save({'lin.weight': torch.zeros(1, 8)}, weights)
    p = _run([FAULT, str(tmp_path / 'wd3'), '3', '--resume'], check=False)  # nothing there
    assert p.returncode == 0  # mmengine: nothing to resume, starts anew
    with open(wd / 'last_checkpoint', 'w') as f:
        f.write(str(weights))
    p = _fault(wd, 3, '--resume', check=False)
    assert p.returncode != 0 and 'not a training checkpoint' in p.stdout + p.stderr
    assert 'KeyError' not in p.stderr
    with open(wd / 'last_checkpoint', 'w') as f:
        f.write(str(wd / 'iter_2.pth'))
    p = _fault(wd, 1, '--resume', check=False)  # max_iters below the checkpoint's
    assert p.returncode != 0 and 'past the end of this run (max_iters=1)' in p.stdout + p.stderr

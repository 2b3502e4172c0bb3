"""SafeCheckpointHook: the one-run-per-checkpoint-folder lock lives where the files are."""
import os
import os.path as osp
import subprocess
import sys
import time

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

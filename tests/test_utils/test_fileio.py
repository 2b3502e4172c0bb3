"""The one artefact writer: foreign folders refused, results swapped in whole, a kill at any
moment leaves the previous complete folder or the new one, never a mix."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest

from parc_mm.utils.fileio import (
    MANIFEST,
    ArtefactError,
    artefact_folder,
    expand,
    locked,
    read_manifest,
    verify_folder,
)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _write(stage, files):
    for name, text in files.items():
        os.makedirs(osp.dirname(osp.join(stage, name)) or stage, exist_ok=True)
        with open(osp.join(stage, name), 'w') as f:
            f.write(text)


def test_new_folder_gets_a_manifest_that_verifies(tmp_path):
    out = tmp_path / 'out'
    with artefact_folder(str(out), 'test', record=lambda: {'k': 1}) as stage:
        _write(stage, {'a.txt': 'A', 'sub/b.txt': 'BB'})
    man = verify_folder(str(out))
    assert man['tool'] == 'test' and man['record'] == {'k': 1}
    assert man['files']['sub/b.txt']['size'] == 2
    assert sorted(os.listdir(tmp_path)) == ['out']


def test_a_foreign_folder_or_file_is_refused_and_untouched(tmp_path):
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'mine.txt').write_text('x')
    with pytest.raises(ArtefactError, match='was not written by parc_mm .*--force'):
        with artefact_folder(str(user), 'test') as stage:
            _write(stage, {'a.txt': 'A'})
    assert os.listdir(user) == ['mine.txt']
    (tmp_path / 'f').write_text('file')
    with pytest.raises(ArtefactError, match='is not a folder'):
        with artefact_folder(str(tmp_path / 'f'), 'test'):
            pass
    assert sorted(os.listdir(tmp_path)) == ['f', 'user']


def test_force_moves_a_foreign_folder_aside(tmp_path):
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'mine.txt').write_text('x')
    with artefact_folder(str(user), 'test', force=True) as stage:
        _write(stage, {'a.txt': 'A'})
    assert sorted(os.listdir(user)) == [MANIFEST, 'a.txt']
    aside = [p for p in os.listdir(tmp_path) if p.startswith('user.replaced-')]
    assert len(aside) == 1 and (tmp_path / aside[0] / 'mine.txt').read_text() == 'x'


def test_own_folder_is_replaced_whole_and_an_error_keeps_it(tmp_path):
    out = str(tmp_path / 'out')
    with artefact_folder(out, 'test') as stage:
        _write(stage, {'old.txt': 'old', 'int8.onnx': 'q'})
    with artefact_folder(out, 'test') as stage:
        _write(stage, {'new.txt': 'new'})
    assert sorted(os.listdir(out)) == [MANIFEST, 'new.txt']  # nothing of the old run left
    with pytest.raises(RuntimeError, match='refused'):
        with artefact_folder(out, 'test') as stage:
            _write(stage, {'half.txt': 'half'})
            raise RuntimeError('refused')
    assert sorted(os.listdir(out)) == [MANIFEST, 'new.txt']
    assert sorted(os.listdir(tmp_path)) == ['out']


def test_an_empty_folder_is_used(tmp_path):
    (tmp_path / 'empty').mkdir()
    with artefact_folder(str(tmp_path / 'empty'), 'test') as stage:
        _write(stage, {'a': '1'})
    assert read_manifest(str(tmp_path / 'empty'))['files'].keys() == {'a'}


def test_tilde_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv('HOME', str(tmp_path))
    assert expand('~/x') == str(tmp_path / 'x')


def test_verify_names_the_changed_file(tmp_path):
    out = str(tmp_path / 'out')
    with artefact_folder(out, 'test') as stage:
        _write(stage, {'a.txt': 'A'})
    with open(osp.join(out, 'a.txt'), 'w') as f:
        f.write('B')
    with pytest.raises(ArtefactError, match='a.txt is not the file the tool wrote'):
        verify_folder(out)
    os.remove(osp.join(out, 'a.txt'))
    with pytest.raises(ArtefactError, match='a.txt is missing'):
        verify_folder(out)


_SLOW_WRITER = r'''
import os, sys, time
sys.path.insert(0, sys.argv[3])
from parc_mm.utils.fileio import artefact_folder
with artefact_folder(sys.argv[1], 'test') as stage:
    for i in range(40):
        with open(os.path.join(stage, f'f{i:02d}.txt'), 'w') as f:
            f.write(sys.argv[2] * 1000)
        time.sleep(0.01)
print('done', flush=True)
'''


@pytest.mark.parametrize('kill_after', [0.05, 0.2, 0.45, 0.9])
def test_a_kill_at_any_time_leaves_old_or_new(tmp_path, kill_after):
    """SIGKILL a re-write at several moments: the folder then verifies and is entirely the
    previous result or entirely the new one; the next writer cleans what the kill left."""
    out = str(tmp_path / 'out')
    script = tmp_path / 'w.py'
    script.write_text(_SLOW_WRITER)
    assert subprocess.run([sys.executable, str(script), out, 'o', ROOT]).returncode == 0
    p = subprocess.Popen([sys.executable, str(script), out, 'n', ROOT],
                         stdout=subprocess.PIPE)
    time.sleep(kill_after)
    p.send_signal(signal.SIGKILL)
    p.wait()
    man = verify_folder(out)
    contents = {open(osp.join(out, n)).read()[0] for n in man['files']}
    assert contents in ({'o'}, {'n'}) and len(man['files']) == 40
    with artefact_folder(out, 'test') as stage:  # the next run: stale stages go
        _write(stage, {'x': 'x'})
    assert sorted(os.listdir(tmp_path)) == ['out', 'w.py']


def test_lock_serialises_read_modify_write(tmp_path):
    """Four processes each add 50 keys to one JSON file under the lock: none is lost."""
    target = tmp_path / 'cache.json'
    script = tmp_path / 'add.py'
    script.write_text(r'''
import json, os, sys
sys.path.insert(0, sys.argv[3])
from parc_mm.utils.fileio import atomic_write, locked
path, tag = sys.argv[1], sys.argv[2]
for i in range(50):
    with locked(path):
        d = json.load(open(path)) if os.path.exists(path) else {}
        d[f'{tag}{i}'] = i
        atomic_write(path, lambda f: json.dump(d, f), mode='w')
''')
    procs = [subprocess.Popen([sys.executable, str(script), str(target), t, ROOT])
             for t in 'abcd']
    assert all(p.wait() == 0 for p in procs)
    assert len(json.load(open(target))) == 200


def test_lock_times_out_naming_the_file(tmp_path):
    import fcntl
    path = str(tmp_path / 'c.json')
    fd = os.open(path + '.lock', os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(TimeoutError, match='c.json.lock'):
            with locked(path, timeout=0.2):
                pass
    finally:
        os.close(fd)

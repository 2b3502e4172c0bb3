import os
import sys

# tests import the shared harness as `tests.harness`
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('OMP_NUM_THREADS', '2')

import subprocess  # noqa: E402

import pytest  # noqa: E402


def _mount_tmpfs(path, size, ro=False):
    os.makedirs(path, exist_ok=True)
    opts = f'size={size}' + (',ro' if ro else '')
    p = subprocess.run(['mount', '-t', 'tmpfs', '-o', opts, 'tmpfs', str(path)],
                       capture_output=True, text=True)
    if p.returncode:
        pytest.skip(f'cannot mount a tmpfs here ({p.stderr.strip()[:100]})')
    return path


@pytest.fixture
def tmpfs(tmp_path):
    mounted = []

    def mount(name, size, ro=False):
        path = _mount_tmpfs(tmp_path / name, size, ro)
        mounted.append(path)
        return path

    yield mount
    for path in mounted:
        subprocess.run(['umount', '-l', str(path)], capture_output=True)

"""What runs at interpreter start-up (the installed .pth line) and its off switch."""
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _registered(env_extra):
    # -S: no site processing, so this environment's own .pth line does not run first; its
    # site-packages are added by hand and the line under test runs as site.py would run it
    import sysconfig
    code = (f'import sys; sys.path.append({sysconfig.get_paths()["purelib"]!r}); '
            'import setup_pth; exec(setup_pth.PTH_LINE); '
            'import mmengine.config.utils as u; print("parc_mm" in u.MODULE2PACKAGE)')
    env = {k: v for k, v in os.environ.items() if k != 'PARC_MM_NO_STARTUP'}
    p = subprocess.run([sys.executable, '-S', '-c', code], capture_output=True, text=True, cwd=ROOT,
                       env={**env, 'PYTHONPATH': ROOT, **env_extra})
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout.strip() == 'True'


def test_the_startup_line_registers_parc_mm_and_can_be_turned_off():
    assert _registered({})
    assert not _registered({'PARC_MM_NO_STARTUP': '1'})

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


def _startup_python(code, cwd, extra_env=None):
    """``python -S -c`` with this environment's site-packages appended and the start-up line
    run as site.py runs it, in ``cwd`` (sys.path[0] = ''), without PYTHONPATH."""
    import sysconfig

    import setup_pth
    pre = (f'import sys; sys.path.append({sysconfig.get_paths()["purelib"]!r}); '
           f'exec({setup_pth.PTH_LINE!r}); ')
    env = {k: v for k, v in os.environ.items()
           if k not in ('PARC_MM_NO_STARTUP', 'PYTHONPATH')}
    return subprocess.run([sys.executable, '-S', '-c', pre + code], capture_output=True,
                          text=True, cwd=cwd, env={**env, **(extra_env or {})})


def test_the_startup_line_binds_no_parc_mm_before_sys_path_is_final(tmp_path):
    """A second checkout run from its root gets its own parc_mm (and its patches), not the
    installed one: the line imports nothing of ours until mmengine / torch is imported."""
    import shutil
    other = tmp_path / 'checkout2'
    shutil.copytree(osp.join(ROOT, 'parc_mm'), other / 'parc_mm',
                    ignore=shutil.ignore_patterns('__pycache__', '.mim'))
    p = _startup_python('assert "parc_mm" not in sys.modules; '
                        'import mmengine.config.utils as u; import parc_mm; '
                        'print(parc_mm.__file__); print("parc_mm" in u.MODULE2PACKAGE)',
                        str(other))
    assert p.returncode == 0, p.stderr[-2000:]
    path, registered = p.stdout.split()
    assert path.startswith(str(other)) and registered == 'True'


def test_a_users_own_package_named_parc_mm_is_left_alone(tmp_path):
    pkg = tmp_path / 'parc_mm'
    pkg.mkdir()
    (pkg / '__init__.py').write_text('MINE = True\n')
    p = _startup_python('import mmengine.config.utils; import parc_mm; print(parc_mm.MINE)',
                        str(tmp_path))
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == 'True'

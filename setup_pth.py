"""The start-up ``.pth`` line of an installed parc_mm (used by setup.py for wheels and by
tools/setup_env.sh for editable installs; see parc_mm/compat.py).

The line imports nothing of ours: it puts a small finder in front of ``sys.meta_path`` that
waits for the first import of mmengine, torch or mmdeploy. Only then, when ``sys.path`` is final
(the script's folder, ``-m``'s working folder and PYTHONPATH are in it), does it import
``parc_mm.compat`` (from wherever Python finds ``parc_mm`` now: a second checkout run from its
root gets its own copy) and hand the import over to its patching finder. A broken install
never breaks Python itself, and ``PARC_MM_NO_STARTUP=1`` turns the line off."""
PTH_NAME = 'parc_mm_mmengine.pth'

_HOOK = """
import os, sys
class _ParcMMStartup:
    done = False
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if cls.done or name.split('.')[0] not in ('mmengine', 'torch', 'mmdeploy'):
            return None
        cls.done = True
        try:
            import parc_mm.compat as compat
            compat.install()
            return compat._Finder().find_spec(name, path, target)
        except Exception:
            return None
if os.environ.get('PARC_MM_NO_STARTUP', '').lower() not in ('1', 'true', 'yes', 'on'):
    sys.meta_path.insert(0, _ParcMMStartup)
"""
# one line, as site.py runs .pth lines that start with "import"
PTH_LINE = f'import sys; exec({_HOOK!r})\n'

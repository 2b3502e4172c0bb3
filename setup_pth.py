"""The start-up ``.pth`` line that registers ``parc_mm`` with mmengine (used by setup.py for
wheels and by tools/setup_env.sh for editable installs; see parc_mm/compat.py)."""
PTH_NAME = 'parc_mm_mmengine.pth'
# One line, run by site.py at start-up; a broken install must never break Python itself, and
# PARC_MM_NO_STARTUP=1 skips it before anything is imported.
PTH_LINE = ('import os, sys; exec("try:\\n import parc_mm'
            '\\nexcept Exception: pass") if os.environ.get("PARC_MM_NO_STARTUP", "").lower() '
            'not in ("1", "true", "yes", "on") else None\n')

"""Where parc_mm's own configs live, from a checkout or an installed package."""
from __future__ import annotations

import os.path as osp


def mim_dir() -> str:
    """``<package>/.mim``: the installed copy of ``configs/`` and ``tools/`` (a checkout
    links it to its own folders)."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim')


def resolve_config(path: str) -> str:
    """A config file path for ``path``: an existing file as given; ``parc_mm::family/x.py``
    or ``configs/family/x.py`` from the package's configs (so tools work from any folder).
    Raises FileNotFoundError naming what was tried."""
    if osp.isfile(path):
        return path
    rel = path.split('::', 1)[1] if path.startswith('parc_mm::') else path
    rel = rel[len('configs/'):] if rel.startswith('configs/') else rel
    candidate = osp.join(mim_dir(), 'configs', rel)
    if osp.isfile(candidate):
        return candidate
    raise FileNotFoundError(f'Config file {path} does not exist (also looked for {candidate}, '
                            'the configs shipped with parc_mm).')

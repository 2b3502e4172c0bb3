"""The README's layout section draws the package tree: one line per folder, none missing,
none that no longer exists."""
import os
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _readme_folders():
    text = open(osp.join(ROOT, 'README.md')).read()
    section = text.split('## Layout\n', 1)[1].split('\n## ', 1)[0]
    return [m.group(1) for m in re.finditer(r'^    (\S+/)\s', section, re.M)]


def test_readme_layout_lists_every_package_folder_once():
    listed = _readme_folders()
    assert len(listed) == len(set(listed)), listed
    tree = set()
    for dirpath, dirnames, filenames in os.walk(osp.join(ROOT, 'parc_mm')):
        dirnames[:] = [d for d in dirnames if not d.startswith(('.', '__'))]
        if '__init__.py' in filenames:
            tree.add(osp.relpath(dirpath, ROOT) + '/')
    assert tree - set(listed) == set(), f'folders the README layout omits: {tree - set(listed)}'
    for folder in listed:
        assert osp.isdir(osp.join(ROOT, folder.replace('<family>/', ''))), folder


def test_one_file_per_name_that_matters():
    """One dispatch.py (the operator's implementation choice), one compat module."""
    names = {}
    for dirpath, _, filenames in os.walk(osp.join(ROOT, 'parc_mm')):
        for f in filenames:
            if f.endswith('.py') and f != '__init__.py':
                names.setdefault(f, []).append(osp.relpath(osp.join(dirpath, f), ROOT))
    assert names['dispatch.py'] == ['parc_mm/ops/dispatch.py']
    assert names['compat.py'] == ['parc_mm/compat.py']


def test_every_code_folder_is_a_package():
    """A folder of modules without __init__.py imports from a checkout (a namespace package)
    but is left out of the wheel (setup.cfg finds packages)."""
    for dirpath, dirnames, filenames in os.walk(osp.join(ROOT, 'parc_mm')):
        dirnames[:] = [d for d in dirnames if not d.startswith(('.', '__'))]
        if any(f.endswith('.py') for f in filenames):
            assert '__init__.py' in filenames, dirpath

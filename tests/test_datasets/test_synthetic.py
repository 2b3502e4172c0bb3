"""The synthetic-data generator deletes only what it wrote."""
import os
import os.path as osp
import subprocess
import sys

import pytest

from parc_mm.datasets import synthetic

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KW = dict(num_train=3, num_val=2, cls_per_class=(2, 1))


def test_the_marker_lists_every_file_written(tmp_path):
    root = synthetic.generate(str(tmp_path / 'shapes'), **KW)
    assert synthetic.foreign_files(root) == []


def test_a_user_file_in_a_generated_folder_is_never_deleted(tmp_path):
    root = synthetic.generate(str(tmp_path / 'shapes'), **KW)
    photo = osp.join(root, 'cls', 'train', 'circle', 'my_photo.jpg')
    with open(photo, 'wb') as f:
        f.write(b'jpeg')
    with pytest.raises(synthetic.NotOurFolderError, match='my_photo.jpg'):
        synthetic.ensure(root, **KW)  # the demo's path: it used to "regenerate"
    with pytest.raises(synthetic.NotOurFolderError, match='Move them out'):
        synthetic.generate(root, **KW)
    assert open(photo, 'rb').read() == b'jpeg'
    os.remove(photo)  # once it is gone, the folder is the generator's again
    assert synthetic.ensure(root, **KW) == root


def test_the_command_line_refuses_naming_the_file(tmp_path):
    root = synthetic.generate(str(tmp_path / 'shapes'), **KW)
    notes = osp.join(root, 'notes.txt')
    open(notes, 'w').write('mine')
    p = subprocess.run([sys.executable, '-m', 'parc_mm.datasets.synthetic', root,
                        '--num-train', '3', '--num-val', '2'], capture_output=True, text=True,
                       cwd=ROOT)
    assert p.returncode != 0 and 'notes.txt' in p.stderr
    assert open(notes).read() == 'mine'


def test_tilde_means_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    monkeypatch.chdir(tmp_path)
    root = synthetic.ensure('~/shapes', **KW)
    assert root == str(tmp_path / 'home' / 'shapes') and osp.isdir(root)
    assert not osp.exists(tmp_path / '~')

"""The synthetic-data generator deletes only what it wrote."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from parc_mm.datasets import synthetic
from tests.harness import file_tree as _tree
from tests.harness import run_py as _run

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


# --- hostile cases: the data generator ---

def test_generator_refuses_a_users_folder_file_and_empty_path(tmp_path):
    from parc_mm.datasets import synthetic
    mine = tmp_path / 'my folder'
    (mine / 'sub').mkdir(parents=True)
    (mine / 'thesis.txt').write_text('years of work')
    (mine / 'sub' / 'photo.jpg').write_bytes(b'\xff\xd8 not really')
    before = _tree(mine)
    p = _run(['-m', 'parc_mm.datasets.synthetic', str(mine), '--num-train', '1',
              '--num-val', '1'], check=False)
    assert p.returncode != 0 and 'did not write' in p.stderr and str(mine) in p.stderr
    assert _tree(mine) == before
    f = tmp_path / 'notes.txt'
    f.write_text('keep me')
    with pytest.raises(synthetic.NotOurFolderError, match='is a file'):
        synthetic.generate(str(f), num_train=1, num_val=1, cls_per_class=(1, 1))
    assert f.read_text() == 'keep me'
    with pytest.raises(synthetic.NotOurFolderError, match='empty path'):
        synthetic.generate('', num_train=1, num_val=1, cls_per_class=(1, 1))
    link = tmp_path / 'link'
    link.symlink_to(mine)
    with pytest.raises(synthetic.NotOurFolderError, match='symbolic link'):
        synthetic.generate(str(link), num_train=1, num_val=1, cls_per_class=(1, 1))
    assert _tree(mine) == before


def test_generator_replaces_only_its_own_older_or_same_generation(tmp_path):
    from parc_mm.datasets import synthetic
    kw = dict(num_train=1, num_val=1, cls_per_class=(1, 1))
    empty = tmp_path / 'empty'
    empty.mkdir()
    synthetic.generate(str(empty), **kw)  # an empty folder loses nothing
    root = str(tmp_path / 'shapes')
    synthetic.generate(root, **kw)
    from parc_mm.utils.checkpoint import current_umask
    assert os.stat(root).st_mode & 0o777 == 0o777 & ~current_umask()  # not mkdtemp's 0700
    marker = osp.join(root, synthetic._DONE_FILE)
    spec = json.load(open(marker))
    spec['version'] = synthetic.VERSION - 1  # an older generation: replaced
    json.dump(spec, open(marker, 'w'))
    synthetic.generate(root, **kw)
    assert json.load(open(marker))['version'] == synthetic.VERSION
    spec['version'] = synthetic.VERSION + 1  # a newer parc_mm's: left alone
    json.dump(spec, open(marker, 'w'))
    with pytest.raises(synthetic.NotOurFolderError, match='newer parc_mm'):
        synthetic.generate(root, **kw)
    assert json.load(open(marker))['version'] == synthetic.VERSION + 1


def test_dataset_pointed_at_the_users_data_refuses_and_keeps_it(tmp_path):
    """The demo config with ``data_root`` pointed at the user's own data (the tools' own
    advice, --cfg-options ...data_root=...) used to delete the parent folder."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS

    import parc_mm.datasets.mm  # noqa: F401
    from parc_mm.datasets import synthetic
    data = tmp_path / 'data'
    (data / 'cls' / 'train' / 'cat').mkdir(parents=True)
    (data / 'cls' / 'train' / 'cat' / '1.png').write_bytes(b'png')
    (data / 'README').write_text('my dataset')
    before = _tree(data)
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            pytest.raises(synthetic.NotOurFolderError, match='ShapesClsDataset'):
        DATASETS.build(dict(type='parc_mm.ShapesClsDataset', data_root=str(data / 'cls'),
                            data_prefix='train', pipeline=[]))
    assert _tree(data) == before
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            pytest.raises(synthetic.NotOurFolderError, match='empty path'):
        DATASETS.build(dict(type='parc_mm.ShapesClsDataset', data_root='',
                            data_prefix='train', pipeline=[]))


def test_generator_refuses_a_mount_point(tmpfs):
    from parc_mm.datasets import synthetic
    mnt = tmpfs('mnt', '4m')
    with pytest.raises(synthetic.NotOurFolderError, match='mount point'):
        synthetic.generate(str(mnt), num_train=1, num_val=1, cls_per_class=(1, 1))

"""Nothing lost, nothing silent: kills during checkpoint saves, damaged checkpoints, converters
that would write random weights, partly written or stale data."""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PY = sys.executable
FAULT = osp.join(ROOT, 'tests', 'fault_train.py')
ENV = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1'}
ITERS = 4


def _train(work_dir, resume=False, hook=None, check=True):
    args = [PY, FAULT, work_dir, str(ITERS)] + (['--resume'] if resume else []) + \
        (['--hook', hook] if hook else [])
    p = subprocess.run(args, capture_output=True, text=True, env=ENV, cwd=ROOT)
    if check and p.returncode:
        raise AssertionError(p.stdout[-2000:] + p.stderr[-3000:])
    return p


def _kill_during_save(work_dir, step, delay):
    """Start training, SIGKILL it ``delay`` seconds after the checkpoint of ``step`` starts
    to appear (its temporary file, or the final file for mmengine's own hook)."""
    from tests.fault_train import kill_when
    return kill_when([str(ITERS)], work_dir, (f'.iter_{step}.pth.', f'iter_{step}.pth'), delay)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp('uninterrupted'))
    _train(wd)
    return torch.load(osp.join(wd, 'final_state.pt'))


# (step whose save is hit, delay after its file appears): at the first byte, mid-write,
# around the rename, after last_checkpoint moved on
KILLS = [(2, 0.0), (2, 0.006), (3, 0.03), (3, 0.08)]


@pytest.mark.parametrize('step,delay', KILLS)
def test_sigkill_during_checkpoint_save_then_resume_is_exact(tmp_path, reference, step, delay):
    wd = str(tmp_path)
    rc = _kill_during_save(wd, step, delay)
    assert rc in (-signal.SIGKILL, 0)
    _train(wd, resume=True)  # must always succeed ...
    final = torch.load(osp.join(wd, 'final_state.pt'))
    for k, v in reference.items():  # ... and end where the uninterrupted run ends
        assert torch.equal(final[k], v), k
    assert not [f for f in os.listdir(wd) if f.endswith('.tmp')]


def test_mmengine_own_hook_loses_everything_here(tmp_path):
    """Why the hook exists: the same kill with mmengine's CheckpointHook (max_keep_ckpts=1)
    leaves a partial file, the previous checkpoint deleted and no way to resume."""
    wd = str(tmp_path)
    proc = subprocess.Popen([PY, FAULT, wd, str(ITERS), '--hook', 'CheckpointHook'], env=ENV,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and not (osp.isdir(wd) and 'iter_2.pth' in os.listdir(wd)):
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not osp.exists(osp.join(wd, 'iter_1.pth'))
    p = _train(wd, resume=True, hook='CheckpointHook', check=False)
    assert p.returncode != 0


def test_resume_skips_a_broken_newest_checkpoint(tmp_path, reference):
    wd = str(tmp_path)
    _train(wd)
    # a newer, damaged checkpoint that last_checkpoint points to (e.g. a bad copy)
    with open(osp.join(wd, f'iter_{ITERS}.pth'), 'rb') as f:
        good = f.read()
    bad = osp.join(wd, f'iter_{ITERS + 1}.pth')
    with open(bad, 'wb') as f:
        f.write(good[:len(good) // 2])
    with open(osp.join(wd, 'last_checkpoint'), 'w') as f:
        f.write(bad)
    p = _train(wd, resume=True)
    assert f'skipping broken checkpoint {bad}' in p.stdout + p.stderr


def _flip_middle(path, n=2048):
    with open(path, 'r+b') as f:
        size = f.seek(0, 2)
        f.seek(size // 2)
        chunk = bytearray(f.read(n))
        f.seek(size // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))


def test_damaged_checkpoint_is_refused_everywhere(tmp_path):
    from mmengine.runner import CheckpointLoader

    import parc_mm.models  # noqa: F401  (installs the verified loader)
    from parc_mm.utils.checkpoint import CheckpointError, torch_load, verify_checkpoint
    path = str(tmp_path / 'w.pth')
    torch.save({'state_dict': {'w': torch.randn(64, 1024)}}, path)
    verify_checkpoint(path)
    _flip_middle(path)
    with pytest.raises(CheckpointError, match=r'w\.pth is damaged: record .* CRC32'):
        verify_checkpoint(path)
    with pytest.raises(CheckpointError, match='CRC32'):  # init_cfg / load_from / resume
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(CheckpointError, match='empty'):
        torch_load(str(empty))
    text = tmp_path / 'text.pth'
    text.write_text('version https://git-lfs.github.com/spec/v1\n')
    with pytest.raises(CheckpointError, match='not a PyTorch checkpoint'):
        torch_load(str(text))
    trunc = tmp_path / 'trunc.pth'
    torch.save({'w': torch.randn(1000)}, str(trunc))
    trunc.write_bytes(trunc.read_bytes()[:3000])
    with pytest.raises(CheckpointError, match='truncated or damaged'):
        torch_load(str(trunc))
    with pytest.raises(FileNotFoundError, match='to_parc.py convnext'):
        CheckpointLoader.load_checkpoint('checkpoints/parc-convnext-xt_in1k.pth')


def test_test_tool_refuses_a_damaged_checkpoint(tmp_path):
    from parc_mm.datasets import synthetic
    data = synthetic.generate(str(tmp_path / 'shapes'), num_train=2, num_val=2,
                              cls_per_class=(2, 1))
    from mmengine.config import Config

    from parc_mm.apis.tasks import register_scope
    from tests.harness import build_model
    cfg = Config.fromfile(osp.join(ROOT, 'configs/demo/shapes_cls_parc-convnext.py'))
    register_scope(cfg)
    import importlib
    for m in cfg.custom_imports['imports']:
        importlib.import_module(m)
    model = build_model(cfg, 'mmpretrain')
    ckpt = str(tmp_path / 'm.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    _flip_middle(ckpt)
    p = subprocess.run([PY, 'tools/test.py', 'configs/demo/shapes_cls_parc-convnext.py', ckpt,
                        '--work-dir', str(tmp_path / 'wd'), '--cfg-options',
                        f'test_dataloader.dataset.data_root={data}/cls'],
                       capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert p.returncode != 0
    assert 'CRC32' in p.stderr and 'm.pth' in p.stderr


def _official_resnet_sd():
    from tests.reference import random_state_dict
    return random_state_dict('parc_res50')


def _to_parc(args, capsys):
    from tools.model_converters import to_parc
    rc = to_parc.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize('family,source', [
    ('resnet', 'empty'), ('resnet', 'garbage'), ('resnet', 'convnext'),
    ('mv2', 'garbage'), ('parcnet', 'convnext'), ('convnext', 'empty')])
def test_converter_refuses_a_mostly_random_result(tmp_path, capsys, family, source):
    sds = {'empty': {}, 'garbage': {'foo.weight': torch.zeros(3), 'bar': torch.ones(2)},
           'convnext': {'downsample_layers.0.0.weight': torch.zeros(48, 3, 4, 4),
                        'stages.0.0.dwconv.weight': torch.zeros(48, 1, 7, 7)}}
    src = tmp_path / 'src.pth'
    torch.save(sds[source], str(src))
    dst = tmp_path / 'sub' / 'dst.pth'
    rc, out, err = _to_parc([family, src, dst], capsys)
    assert rc != 0, out
    assert not dst.exists()
    assert any(m in err for m in ('--allow-partial', 'Unrecognised', 'No state_dict'))
    if source != 'empty' and family == 'resnet':
        rc, out, err = _to_parc([family, src, dst, '--allow-partial'], capsys)
        assert rc == 0 and dst.exists(), err


def test_converter_creates_the_folder_and_explains_counts(tmp_path):
    """(as a command: the one converter run in a subprocess)"""
    sd = _official_resnet_sd()
    src = tmp_path / 'official.pth'
    torch.save(sd, str(src))
    dst = tmp_path / 'new' / 'folder' / 'parc-resnet50_in1k.pth'
    p = subprocess.run([PY, osp.join(ROOT, 'tools/model_converters/to_parc.py'), 'resnet',
                        str(src), str(dst)], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert dst.exists()
    assert "from the source (100.0% of the backbone's parameters)" in p.stdout
    assert f'wrote {dst}' in p.stdout


def test_converter_trust_checkpoint_for_pickled_objects(tmp_path, capsys):
    import argparse
    sd = _official_resnet_sd()
    src = tmp_path / 'official_args.pth'
    torch.save({'model': sd, 'args': argparse.Namespace(lr=0.1)}, str(src))
    dst = tmp_path / 'out.pth'
    rc, out, err = _to_parc(['resnet', src, dst], capsys)
    assert rc != 0 and '--trust-checkpoint' in err
    rc, out, err = _to_parc(['resnet', src, dst, '--trust-checkpoint'], capsys)
    assert rc == 0 and dst.exists(), err


def test_generation_is_atomic_and_clears_stale_files(tmp_path):
    from parc_mm.datasets import synthetic
    root = str(tmp_path / 'shapes')
    synthetic.generate(root, num_train=5, num_val=4, cls_per_class=(3, 2))
    synthetic.generate(root, num_train=3, num_val=2, cls_per_class=(2, 1))  # smaller
    assert len(os.listdir(osp.join(root, 'ade', 'images', 'validation'))) == 2
    assert len(os.listdir(osp.join(root, 'cls', 'val', 'circle'))) == 1
    with open(osp.join(root, 'coco', 'annotations', 'instances_val.json')) as f:
        assert len(json.load(f)['images']) == 2
    assert not [d for d in os.listdir(tmp_path) if d.startswith('.')]  # no temp folders


def test_generation_killed_midway_leaves_the_old_data(tmp_path):
    root = str(tmp_path / 'shapes')
    code = ('import sys; from parc_mm.datasets import synthetic; '
            f'synthetic.generate({root!r}, num_train=4000, num_val=10, cls_per_class=(2, 1))')
    from parc_mm.datasets import synthetic
    synthetic.generate(root, num_train=3, num_val=2, cls_per_class=(2, 1))
    proc = subprocess.Popen([PY, '-c', code], env=ENV, cwd=ROOT)
    t_end = time.time() + 60
    while time.time() < t_end and not [d for d in os.listdir(tmp_path)
                                       if '.parc-stage-' in d]:
        time.sleep(0.01)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    spec = json.load(open(osp.join(root, '.parc_mm_synthetic')))
    assert spec['num_train'] == 3 and synthetic.check_files(root, spec) == []


def test_ensure_regenerates_incomplete_data_and_names_empty_files(tmp_path):
    from parc_mm.datasets import synthetic
    root = str(tmp_path / 'shapes')
    kw = dict(num_train=3, num_val=2, cls_per_class=(2, 1))
    synthetic.generate(root, **kw)
    spec = json.load(open(osp.join(root, '.parc_mm_synthetic')))
    victim = osp.join(root, 'cls', 'val', 'ring', '00000.png')
    open(victim, 'wb').close()
    os.remove(osp.join(root, 'ade', 'images', 'validation', 'val_00001.jpg'))
    problems = synthetic.check_files(root, spec)
    assert any(victim in p and 'empty' in p for p in problems)
    assert any('holds 1 files, the marker says 2' in p for p in problems)
    synthetic.ensure(root, **kw)
    assert synthetic.check_files(root, spec) == []


def test_empty_image_is_named(tmp_path):
    from parc_mm.apis.inference import check_image, list_images
    img = tmp_path / 'broken.jpg'
    img.write_bytes(b'')
    assert list_images(str(tmp_path)) == [str(img)]  # listed, then skipped by name
    assert check_image(str(img)) == 'is empty (0 bytes)'


def test_class_names_match_the_folders(tmp_path):
    """Label ids come from the folder order, names from metainfo: both must name the folder
    of every validation image (the demo dataset and the plain CustomDataset of the smoke
    configs)."""
    from mmpretrain.registry import DATASETS

    import parc_mm.datasets.mm  # noqa: F401
    from parc_mm.datasets import synthetic
    from parc_mm.testing import _dataset
    root = synthetic.generate(str(tmp_path / 'shapes'), num_train=1, num_val=1,
                              cls_per_class=(1, 2))
    from mmengine.registry import DefaultScope
    for cfg in (dict(type='parc_mm.ShapesClsDataset', data_root=root + '/cls',
                     data_prefix='val', pipeline=[]),
                _dataset('cls', 'val', root, [], {})):
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            ds = DATASETS.build(cfg)
        assert len(ds) == 2 * len(synthetic.CLASSES)
        for i in range(len(ds)):
            info = ds.get_data_info(i)
            folder = osp.basename(osp.dirname(info['img_path']))
            assert ds.metainfo['classes'][info['gt_label']] == folder

"""Nothing lost, nothing silent, round 2: the cases a hostile user tried (data generator,
converter, checkpoint hook, infer, autotune cache, inference caches, odd dtypes and configs).
Processes are real processes and signals real signals; a full disk is a real (tmpfs) file
system where this machine lets the test mount one."""
import copy
import json
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PY = sys.executable
FAULT = osp.join(ROOT, 'tests', 'fault_train.py')
CONVERT = osp.join(ROOT, 'tools', 'model_converters', 'to_parc.py')
ENV = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1'}


def _run(args, check=True, env=None, **kw):
    p = subprocess.run([PY] + args, capture_output=True, text=True, env=env or ENV, cwd=ROOT,
                       **kw)
    if check and p.returncode:
        raise AssertionError(p.stdout[-2000:] + p.stderr[-3000:])
    return p


def _tree(path):
    """{relative path: bytes} of every file under ``path`` (what must survive)."""
    out = {}
    for d, _, files in os.walk(path):
        for f in files:
            full = osp.join(d, f)
            with open(full, 'rb') as fh:
                out[osp.relpath(full, path)] = fh.read()
    return out


# --- the data generator ---------------------------------------------------------------------

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


def test_generator_refuses_a_mount_point(tmpfs):
    from parc_mm.datasets import synthetic
    mnt = tmpfs('mnt', '4m')
    with pytest.raises(synthetic.NotOurFolderError, match='mount point'):
        synthetic.generate(str(mnt), num_train=1, num_val=1, cls_per_class=(1, 1))


# --- the converter ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def convnext_t_src(tmp_path_factory):
    from mmpretrain.models import ConvNeXt
    torch.manual_seed(0)
    m = ConvNeXt(arch='tiny', out_indices=(0, 1, 2, 3))
    path = str(tmp_path_factory.mktemp('src') / 'convnext_t_upernet.pth')
    sd = {'backbone.' + k: v for k, v in m.state_dict().items()}
    sd['decode_head.conv_seg.weight'] = torch.randn(150, 512, 1, 1)
    torch.save({'state_dict': sd}, path)
    return path


def _convert(capsys, *argv):
    """tools/model_converters/to_parc.py's main() in this process: (exit code, stderr)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('to_parc', CONVERT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    capsys.readouterr()
    rc = tool.main(list(argv))
    return rc, capsys.readouterr().err


def test_converter_never_overwrites_its_source_or_an_existing_file(tmp_path, convnext_t_src,
                                                                    capsys, monkeypatch):
    import shutil
    monkeypatch.chdir(ROOT)
    src = str(tmp_path / 'x' / 'src.pth')
    os.makedirs(osp.dirname(src))
    shutil.copy(convnext_t_src, src)
    data = open(src, 'rb').read()
    link = tmp_path / 'link.pth'
    link.symlink_to(src)
    for dst in (src, osp.join(tmp_path, 'x', '..', 'x', 'src.pth'), './' + osp.relpath(src, ROOT),
                str(link)):
        rc, err = _convert(capsys, 'convnext', src, dst, '--arch', 'tiny')
        assert rc == 2 and 'is the source file itself' in err, err
    assert open(src, 'rb').read() == data
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    rc, err = _convert(capsys, 'convnext', src, str(text), '--arch', 'tiny')
    assert rc == 2 and '--force' in err
    assert text.read_text() == 'not a checkpoint'
    rc, err = _convert(capsys, 'convnext', src, str(tmp_path), '--arch', 'tiny')
    assert rc == 2 and 'is a folder' in err
    out = tmp_path / 'out.pth'
    assert _convert(capsys, 'convnext', src, str(out), '--arch', 'tiny')[0] == 0
    from parc_mm.utils.checkpoint import current_umask
    assert (os.stat(out).st_mode & 0o777) == 0o666 & ~current_umask()  # not mkstemp's 0600
    assert _convert(capsys, 'convnext', src, str(text), '--arch', 'tiny', '--force')[0] == 0
    assert open(text, 'rb').read(2) == b'PK'


def test_converter_on_a_full_or_read_only_file_system_says_so(tmp_path, tmpfs,
                                                                 convnext_t_src):
    full = tmpfs('full', '1m')
    p = _run([CONVERT, 'convnext', convnext_t_src, str(full / 'out.pth'), '--arch', 'tiny'],
             check=False)
    assert p.returncode == 2 and 'no space left' in p.stderr and 'Traceback' not in p.stderr
    assert os.listdir(full) == []  # no hidden temp file keeps the disk full
    ro = tmpfs('ro', '1m', ro=True)
    p = _run([CONVERT, 'convnext', convnext_t_src, str(ro / 'out.pth'), '--arch', 'tiny'],
             check=False)
    assert p.returncode == 2 and 'not writable' in p.stderr and 'Traceback' not in p.stderr


def test_converter_coverage_is_the_backbones_and_a_wrong_arch_is_named(tmp_path,
                                                                       convnext_t_src):
    """A ResNet-50 segmentor given to the ConvNeXt / MV2 converters and a ConvNeXt-T given
    without --arch used to be written with 86-95 % "from the source" (the copied heads)."""
    from mmpretrain.models import ResNet
    torch.manual_seed(0)
    sd = {'backbone.' + k: v for k, v in ResNet(depth=50).state_dict().items()}
    sd['decode_head.bottleneck.conv.weight'] = torch.randn(512, 4096, 3, 3)  # UperNet-sized
    src = str(tmp_path / 'r50_upernet.pth')
    torch.save({'state_dict': sd}, src)
    for family in ('convnext', 'mv2'):
        dst = tmp_path / f'{family}.pth'
        p = _run([CONVERT, family, src, str(dst)], check=False)
        assert p.returncode == 1 and 'backbone parameters' in p.stderr, p.stdout + p.stderr
        assert not dst.exists()
    dst = tmp_path / 'xt.pth'
    p = _run([CONVERT, 'convnext', convnext_t_src, str(dst)], check=False)  # forgot --arch
    assert p.returncode == 1 and 'looks like convnext tiny' in p.stderr and '--arch tiny' in \
        p.stderr, p.stderr
    assert not dst.exists()


# --- the checkpoint hook ------------------------------------------------------------------------

def _fault(work_dir, iters, *extra, check=True):
    return _run([FAULT, str(work_dir), str(iters), *extra], check=check)


def _loads(path):
    from parc_mm.utils.checkpoint import verify_checkpoint
    verify_checkpoint(str(path))
    return True


@pytest.mark.parametrize('delay', [0.0, 0.01, 0.03])
def test_kill_during_the_best_checkpoint_save_keeps_the_previous_best(tmp_path, delay):
    """mmengine deletes the previous best before writing the new one: a kill then left only a
    truncated best file. Our hook writes it atomically and deletes the old one after."""
    wd = tmp_path / 'wd'
    from tests.fault_train import kill_when
    rc = kill_when(['4', '--best', '--keep', '3'], wd,
                   ('.best_score_iter_3.pth.', 'best_score_iter_3.pth'), delay)
    bests = [n for n in os.listdir(wd) if n.startswith('best_') and n.endswith('.pth')]
    assert bests, (rc, os.listdir(wd))
    for b in bests:
        assert _loads(wd / b)


def test_full_disk_never_worse_than_mmengine(tmpfs):
    """Room for one checkpoint (+ margin) but not two: mmengine's hook finishes; ours used to
    die at the second save and leave a hidden temp file that kept the disk full."""
    disk = tmpfs('disk', '52m')  # a checkpoint here is ~32 MB (weights + SGD momentum)
    _fault(disk / 'mmengine', 3, '--hook', 'CheckpointHook')
    import shutil
    shutil.rmtree(disk / 'mmengine')
    p = _fault(disk / 'ours', 3)
    assert 'deleting' in p.stdout + p.stderr  # the fallback says what it does
    left = os.listdir(disk / 'ours')
    assert 'iter_3.pth' in left and not [n for n in left if n.endswith('.tmp')], left
    assert _loads(disk / 'ours' / 'iter_3.pth')
    p = _fault(disk / 'ours', 4, '--resume')  # and --resume starts
    assert 'iter_4.pth' in os.listdir(disk / 'ours')


def test_stale_temp_files_are_removed_first_and_a_live_runs_are_not(tmp_path):
    wd = tmp_path / 'wd'
    wd.mkdir()
    dead = subprocess.run([PY, '-c', 'import os; print(os.getpid())'], capture_output=True,
                          text=True).stdout.strip()
    stale = wd / f'.iter_9.pth.{dead}.deadbeef.tmp'
    stale.write_bytes(b'x' * 1000)
    old_style = wd / '.iter_8.pth.tmp'
    old_style.write_bytes(b'x')
    live = wd / f'.iter_7.pth.{os.getpid()}.cafe.tmp'  # this test process runs
    live.write_bytes(b'x')
    users = wd / '.my_notes.tmp'  # not a checkpoint temp: never touched
    users.write_text('mine')
    p = _fault(wd, 1)
    assert not stale.exists() and not old_style.exists() and 'removing' in p.stdout + p.stderr
    assert live.exists() and users.read_text() == 'mine'


def test_second_run_in_the_same_work_dir_is_refused_by_pid(tmp_path):
    wd = tmp_path / 'wd'
    # (long enough to still hold its lock on a loaded machine; it is killed below)
    first = subprocess.Popen([PY, FAULT, str(wd), '400'], env=ENV, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        t_end = time.time() + 180
        while time.time() < t_end and not (wd / '.parc_mm_checkpoint.lock').exists():
            time.sleep(0.05)
        p = _fault(wd, 2, check=False)
        assert p.returncode != 0 and f'pid {first.pid}' in p.stdout + p.stderr
    finally:
        first.kill()
        first.wait()
    _fault(wd, 2)  # its lock is stale once it is gone


def test_filename_templates_with_folders_and_other_names(tmp_path):
    wd = tmp_path / 'wd'
    _fault(wd, 2, '--tmpl', 'ckpts/iter_{}.pth')
    assert _loads(wd / 'ckpts' / 'iter_2.pth')
    _fault(wd, 3, '--tmpl', 'ckpts/iter_{}.pth', '--resume')
    assert _loads(wd / 'ckpts' / 'iter_3.pth')
    wd2 = tmp_path / 'wd2'
    _fault(wd2, 2, '--tmpl', 'model_{}.pth')
    os.remove(wd2 / 'last_checkpoint')  # resume must find model_2.pth by the template
    p = _fault(wd2, 3, '--tmpl', 'model_{}.pth', '--resume')
    assert 'resumed epoch: 0, iter: 2' in p.stdout + p.stderr
    assert _loads(wd2 / 'model_3.pth')


def test_resume_in_a_copied_work_dir_uses_its_own_checkpoint(tmp_path):
    import shutil
    wd = tmp_path / 'wd'
    _fault(wd, 2)
    copy_ = tmp_path / 'copy'
    shutil.copytree(wd, copy_)
    p = _fault(copy_, 3, '--resume')
    assert 'outside this work dir' in p.stdout + p.stderr
    assert 'iter_3.pth' in os.listdir(copy_) and 'iter_3.pth' not in os.listdir(wd)
    shutil.move(str(copy_), str(tmp_path / 'moved'))  # moved: the original path is gone
    _fault(tmp_path / 'moved', 4, '--resume')
    assert 'iter_4.pth' in os.listdir(tmp_path / 'moved')


def test_resume_of_weights_only_or_of_a_finished_run_says_why(tmp_path):
    wd = tmp_path / 'wd'
    _fault(wd, 2)
    weights = tmp_path / 'weights.pth'
    torch.save({'lin.weight': torch.zeros(1, 8)}, weights)
    p = _run([FAULT, str(tmp_path / 'wd3'), '3', '--resume'], check=False)  # nothing there
    assert p.returncode == 0  # mmengine: nothing to resume, starts anew
    with open(wd / 'last_checkpoint', 'w') as f:
        f.write(str(weights))
    p = _fault(wd, 3, '--resume', check=False)
    assert p.returncode != 0 and 'not a training checkpoint' in p.stdout + p.stderr
    assert 'KeyError' not in p.stderr
    with open(wd / 'last_checkpoint', 'w') as f:
        f.write(str(wd / 'iter_2.pth'))
    p = _fault(wd, 1, '--resume', check=False)  # max_iters below the checkpoint's
    assert p.returncode != 0 and 'past the end of this run (max_iters=1)' in p.stdout + p.stderr


# --- infer ------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def cls_ckpt(tmp_path_factory):
    from tests.test_tools.test_inference import _demo_checkpoint
    return _demo_checkpoint(tmp_path_factory.mktemp('ckpt'), 'configs/demo/shapes_cls_parc-'
                            'convnext.py', 'mmpretrain')


def test_infer_skips_bad_images_keeps_the_rest_and_draws_each(tmp_path, cls_ckpt):
    import shutil
    photos = tmp_path / 'photos'
    photos.mkdir()
    cat = osp.join(ROOT, 'tests', 'data', 'cat.jpg')
    shutil.copy(cat, photos / 'a.jpg')
    import cv2
    cv2.imwrite(str(photos / 'a.png'), cv2.imread(cat))
    (photos / 'b.jpg').write_bytes(b'\xff\xd8\xff garbage')  # unreadable
    (photos / 'c.jpg').write_bytes(b'')
    out = tmp_path / 'out'
    p = _run([osp.join(ROOT, 'tools', 'infer.py'), osp.join(ROOT, 'configs/demo/'
              'shapes_cls_parc-convnext.py'), cls_ckpt, str(photos), '--out-dir', str(out),
              '--device', 'cpu'], check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    preds = json.load(open(out / 'predictions.json'))
    assert sorted(osp.basename(r['image']) for r in preds) == ['a.jpg', 'a.png']
    assert len({r['vis'] for r in preds}) == 2 and all(osp.isfile(r['vis']) for r in preds)
    skipped = json.load(open(out / 'skipped.json'))
    assert sorted(osp.basename(s['image']) for s in skipped) == ['b.jpg', 'c.jpg']
    assert 'b.jpg' in p.stderr and 'c.jpg' in p.stderr


def test_infer_refuses_a_checkpoint_that_fits_nothing(tmp_path):
    toy = tmp_path / 'toy.pth'
    torch.save({'state_dict': {'a': torch.zeros(2), 'b': torch.zeros(3)}}, toy)
    p = _run([osp.join(ROOT, 'tools', 'infer.py'), osp.join(ROOT, 'configs/demo/'
              'shapes_det_parc-convnext_mask-rcnn.py'), str(toy),
              osp.join(ROOT, 'tests', 'data', 'cat.jpg'), '--out-dir', str(tmp_path / 'o'),
              '--device', 'cpu'], check=False)
    assert p.returncode == 2 and 'does not fit the model' in p.stderr, p.stderr[-2000:]


def test_infer_class_names_come_from_the_config_not_coco(tmp_path):
    """A checkpoint without dataset meta: the Inferencer would name COCO classes."""
    from parc_mm.apis.inference import infer
    from parc_mm.datasets import synthetic
    from tests.test_tools.test_inference import _demo_checkpoint
    config = 'configs/demo/shapes_det_parc-convnext_mask-rcnn.py'
    ckpt = _demo_checkpoint(tmp_path, config, 'mmdet')
    sd = torch.load(ckpt)
    torch.save({'state_dict': sd['state_dict']}, ckpt)  # no meta
    preds = infer(osp.join(ROOT, config), ckpt, osp.join(ROOT, 'tests', 'data', 'cat.jpg'),
                  str(tmp_path / 'out'), score_thr=0.0)
    assert preds[0]['classes'] and set(preds[0]['classes']) <= set(synthetic.CLASSES)


def test_infer_skips_images_beyond_the_pixel_limit(tmp_path):
    import cv2
    import numpy as np

    from parc_mm.apis.inference import check_image
    big = tmp_path / 'big.png'
    cv2.imwrite(str(big), np.zeros((1200, 1000, 3), np.uint8))
    assert 'more than the' in check_image(str(big), max_pixels=1_000_000)
    assert check_image(str(big), max_pixels=2_000_000) is None


# --- the autotune cache -------------------------------------------------------------------------

def test_concurrent_autotune_saves_never_corrupt_the_file(tmp_path):
    path = str(tmp_path / 'cache.json')
    code = ('import sys, parc_mm.ops.autotuner as a\n'
            'for r in range(30):\n'
            '    a._CACHE.update({f"cpu|k{sys.argv[1]}-{r}-{i}": "fft" for i in range(40)})\n'
            '    a.save_autotune_cache(sys.argv[2])\n')
    procs = [subprocess.Popen([PY, '-c', code, str(i), path], env=ENV, cwd=ROOT)
             for i in range(4)]
    for p in procs:
        assert p.wait() == 0
    entries = json.load(open(path))  # whole JSON, never a mix of two writes
    # the merge runs under a lock: every choice of every process is kept
    assert len(entries) == 4 * 30 * 40
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]


def test_corrupt_autotune_cache_warns_and_the_switch_is_strict(tmp_path):
    from parc_mm.ops import autotuner
    bad = tmp_path / 'cache.json'
    bad.write_text('{"a": "fft", ')
    with pytest.raises(autotuner.AutotuneCacheError, match=str(bad)):
        autotuner.load_autotune_cache(str(bad))
    from unittest import mock

    from parc_mm.engine.hooks import ParCAutotuneHook
    runner = mock.MagicMock()
    hook = ParCAutotuneHook(cache_file=str(bad))
    try:
        hook.before_run(runner)
        assert 'is not a readable ParC autotune cache' in runner.logger.warning.call_args[0][0]
    finally:
        autotuner.enable_autotune(False)
    for value, on in (('true', True), ('YES', True), ('on', True), ('off', False), ('0', False),
                      ('', False)):
        with mock.patch.dict(os.environ, {'PARC_AUTOTUNE': value}):
            assert autotuner._env_flag('PARC_AUTOTUNE') is on
    p = _run(['-c', 'import parc_mm.ops'], check=False, env={**ENV, 'PARC_AUTOTUNE': 'maybe'})
    assert p.returncode != 0 and "PARC_AUTOTUNE='maybe' is not a switch" in p.stderr


# --- inference caches -----------------------------------------------------------------------

@pytest.mark.parametrize('impl', ['auto', 'fft', 'gemm', 'direct'])
def test_mean_teacher_updates_through_data_are_seen_in_eval(impl):
    """mmdet's MeanTeacherHook keeps the teacher in eval mode forever and updates it with
    ``dst.data.mul_().add_()``: no version counter moves. Every eval forward must see it."""
    from parc_mm.models.layers import ParCHW
    from parc_mm.models.layers.token_mixer import ParCTokenMixer
    torch.manual_seed(0)
    for teacher, student, x, call in (
            (ParCHW(8, 10, impl=impl), ParCHW(8, 10, impl=impl), torch.randn(2, 8, 12, 9),
             lambda m, x: m(x)),
            (ParCTokenMixer(8, (6, 5), impl=impl), ParCTokenMixer(8, (6, 5), impl=impl),
             torch.randn(2, 42, 8), lambda m, x: m(x, (7, 6)))):
        teacher.eval()
        for _ in range(3):
            with torch.no_grad():
                out = call(teacher, x)
            for (_, dst), (_, src) in zip(teacher.named_parameters(),
                                          student.named_parameters()):
                dst.data.mul_(0.5).add_(src.data + 0.1, alpha=0.5)
            with torch.no_grad():
                after = call(teacher, x)
            ref = copy.deepcopy(teacher).eval()
            with torch.no_grad():
                torch.testing.assert_close(after, call(ref, x), rtol=1e-5, atol=1e-5)
            assert not torch.allclose(after, out)


def test_bias_only_update_in_inference_mode_is_seen():
    from parc_mm.models.layers import ParCConv2d
    from parc_mm.ops import inference_mode
    m = inference_mode(ParCConv2d(4, 'H', 8, impl='gemm'))
    x = torch.randn(1, 4, 8, 5)
    with torch.no_grad():
        a = m(x)
        m.bias.add_(1.0)  # in place, as an optimizer step: a version bump
        torch.testing.assert_close(m(x), a + 1.0)


def test_deepcopy_and_save_after_eval_forwards_and_a_training_step(tmp_path):
    import io

    from parc_mm.models.backbones.parc_convnext import ParCConvNeXt
    from parc_mm.ops import inference_mode
    torch.manual_seed(0)
    m = ParCConvNeXt(arch='atto', parc_cfg=dict(blocks='all'))
    x = torch.randn(1, 3, 64, 96)
    empty = io.BytesIO()
    torch.save(m, empty)
    inference_mode(m)
    with torch.no_grad():
        m(x)
    after_eval = io.BytesIO()
    torch.save(m, after_eval)
    assert after_eval.tell() <= empty.tell() * 1.01  # no cache is pickled
    m.train()
    m(x)[-1].sum().backward()
    copy.deepcopy(m)  # EMA / SWA / best-model copies
    inference_mode(m)
    with torch.no_grad():
        m(x)
    twin = copy.deepcopy(m)
    with torch.no_grad():
        torch.testing.assert_close(twin(x)[-1], m(x)[-1])


# --- odd dtypes and configs -----------------------------------------------------------------

@pytest.mark.parametrize('impl', ['fft', 'direct', 'gemm', 'auto'])
def test_impls_agree_or_refuse_outside_real_floats(impl):
    from parc_mm.ops import circular_conv
    w = torch.randn(4, 1, 7, 1)
    for x in (torch.randint(-5, 5, (1, 4, 7, 3)), torch.randn(1, 4, 7, 3, dtype=torch.cfloat)):
        with pytest.raises(TypeError, match='real floating-point input'):
            circular_conv(x, w, None, 'H', 4, impl)
    big = torch.full((1, 4, 7, 3), 3e37)
    ref = circular_conv(big.double(), w.double(), None, 'H', 4, 'direct')
    y = circular_conv(big, w, None, 'H', 4, impl)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=0)


def test_parc_cfg_strings_and_non_dicts_are_refused():
    from parc_mm.models.backbones.parc_convnext import ParCConvNeXt
    from parc_mm.models.backbones.parc_resnet import ParCResNet
    with pytest.raises(ValueError, match="bias must be True or False, got 'False'"):
        ParCConvNeXt(arch='atto', parc_cfg=dict(bias='False'))
    with pytest.raises(ValueError, match='dense must be True or False'):
        ParCResNet(depth=50, parc_cfg=dict(dense='False'))
    with pytest.raises(ValueError, match=r"parc_cfg must be a dict.*blocks='all'"):
        ParCConvNeXt(arch='atto', parc_cfg='all')


def test_legacy_checkpoints_warn_that_they_cannot_be_verified(tmp_path):
    from parc_mm.utils.checkpoint import verify_checkpoint
    path = str(tmp_path / 'legacy.pth')
    torch.save({'w': torch.zeros(3)}, path, _use_new_zipfile_serialization=False)
    with pytest.warns(UserWarning, match='cannot be detected'):
        verify_checkpoint(path)


def test_refused_pickles_name_flags_the_tools_have(tmp_path):
    import argparse

    from parc_mm.utils.checkpoint import CheckpointError, torch_load
    path = str(tmp_path / 'ns.pth')
    torch.save({'args': argparse.Namespace(a=1), 'state_dict': {}}, path)
    with pytest.raises(CheckpointError, match='tools/train.py, test.py') as e:
        torch_load(path)
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' in str(e.value)
    for tool in ('train.py', 'test.py', 'infer.py'):
        p = _run([osp.join(ROOT, 'tools', tool), '--help'])
        assert '--trust-checkpoint' in p.stdout

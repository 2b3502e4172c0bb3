"""tools/train.py, tools/test.py, resume, 2-process distributed training, clear errors."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS = 'configs/demo/shapes_cls_parc-convnext.py'
PY = sys.executable


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    from parc_mm.datasets import synthetic
    root = str(tmp_path_factory.mktemp('shapes'))
    return synthetic.generate(root, num_train=8, num_val=4, cls_per_class=(6, 2))


def _opts(data_root, iters, ckpt_interval=None, extra=()):
    return ['--cfg-options',
            f'train_dataloader.dataset.data_root={data_root}/cls',
            f'val_dataloader.dataset.data_root={data_root}/cls',
            f'test_dataloader.dataset.data_root={data_root}/cls',
            'train_dataloader.batch_size=4', f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters}', 'param_scheduler=[]',
            'default_hooks.logger.interval=1',
            f'default_hooks.checkpoint.interval={ckpt_interval or iters}',
            'randomness.seed=0', 'randomness.deterministic=True', *extra]


def _run(args, cwd=ROOT, check=True, env=None):
    e = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1', **(env or {})}
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=e)
    if check and p.returncode:
        raise AssertionError(f'{args} failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}')
    return p


def _losses(work_dir):
    f = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    out = {}
    for path in f:
        with open(path) as fh:
            for line in fh:
                d = json.loads(line)
                if 'loss' in d:
                    out[d['iter']] = d['loss']
    return out


def test_train_then_test(data_root, tmp_path):
    wd = str(tmp_path / 'wd')
    _run([PY, 'tools/train.py', CLS, '--work-dir', wd] + _opts(data_root, 2))
    ckpt = osp.join(wd, 'iter_2.pth')
    assert osp.exists(ckpt)
    out = str(tmp_path / 'metrics.json')
    _run([PY, 'tools/test.py', CLS, ckpt, '--work-dir', wd, '--out', out] +
         _opts(data_root, 2))
    with open(out) as f:
        metrics = json.load(f)
    # 12 validation images (2 per class): every image counted, none twice or skipped
    correct = metrics['accuracy/top1'] * 12 / 100
    assert abs(correct - round(correct)) < 1e-4 and 0 <= round(correct) <= 12, metrics


def test_resume_gives_the_same_losses(data_root, tmp_path):
    full, part = str(tmp_path / 'full'), str(tmp_path / 'part')
    _run([PY, 'tools/train.py', CLS, '--work-dir', full] + _opts(data_root, 6))
    _run([PY, 'tools/train.py', CLS, '--work-dir', part] + _opts(data_root, 3, 3))
    _run([PY, 'tools/train.py', CLS, '--work-dir', part, '--resume'] +
         _opts(data_root, 6, 3))
    a, b = _losses(full), _losses(part)
    assert sorted(a) == list(range(1, 7)) and sorted(b) == list(range(1, 7)), (a, b)
    for it in range(1, 7):
        assert a[it] == pytest.approx(b[it], rel=1e-6, abs=1e-7), (it, a, b)


def test_two_process_distributed_training_ranks_agree(data_root, tmp_path):
    wd = str(tmp_path / 'dist')
    cfg = tmp_path / 'dist_cfg.py'
    cfg.write_text(f"_base_ = ['{osp.join(ROOT, CLS)}']\n"
                   "custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models', "
                   "'parc_mm.datasets.mm', 'parc_mm.engine.hooks'], allow_failed_imports=False)\n"
                   "custom_hooks = [dict(type='parc_mm.ParamChecksumHook')]\n")
    _run(['bash', 'tools/dist_train.sh', str(cfg), '2', '--work-dir', wd] +
         _opts(data_root, 2), env={'PYTHON': PY, 'PORT': '29533'})
    sums = []
    for r in (0, 1):
        with open(osp.join(wd, f'param_checksum_rank{r}.json')) as f:
            sums.append(json.load(f))
    assert sums[0]['iter'] == sums[1]['iter'] == 2
    assert sums[0]['sha256'] == sums[1]['sha256'], sums


def test_missing_dataset_error_names_the_fix(tmp_path):
    cfg = 'configs/parc_convnext/mask-rcnn_parc-convnext-t_fpn_1x_coco.py'
    p = _run([PY, 'tools/train.py', cfg, '--work-dir', str(tmp_path), '--cfg-options',
              f'train_dataloader.dataset.data_root={tmp_path}/nowhere/'], check=False)
    assert p.returncode != 0
    assert 'does not exist' in p.stderr and 'parc_mm.datasets.synthetic' in p.stderr


def test_unknown_model_name_error(data_root, tmp_path):
    p = _run([PY, 'tools/train.py', CLS, '--work-dir', str(tmp_path)] +
             _opts(data_root, 1, extra=['model.backbone.type=parc_mm.ParCNoSuchNet']),
             check=False)
    assert p.returncode != 0 and 'ParCNoSuchNet is not in the' in p.stderr


def test_checkpoint_that_does_not_fit_is_refused(data_root, tmp_path):
    import torch
    bad = str(tmp_path / 'bad.pth')
    torch.save({'state_dict': {'backbone.downsample_layers.0.0.weight': torch.zeros(7, 3, 4, 4),
                               'head.fc.weight': torch.zeros(6, 256)}}, bad)
    p = _run([PY, 'tools/test.py', CLS, bad, '--work-dir', str(tmp_path)] +
             _opts(data_root, 1), check=False)
    assert p.returncode != 0
    assert 'does not fit the model' in p.stderr and 'model_converters' in p.stderr


def test_amp_on_cpu_is_a_clear_error(data_root, tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('has a GPU')
    p = _run([PY, 'tools/train.py', CLS, '--amp', '--work-dir', str(tmp_path)] +
             _opts(data_root, 1), check=False)
    assert p.returncode != 0 and '--amp needs a CUDA GPU' in p.stderr

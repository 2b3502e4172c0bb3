"""parc_mm as users install it: a built wheel in a fresh environment (no checkout on the
path), downstream configs that inherit ours run with mmdet's / mmseg's / mmpretrain's own
train and test scripts and with mim."""
import glob
import os
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PY = sys.executable
STACK_SITE = sysconfig.get_paths()['purelib']


def _run(args, cwd, env, check=True, timeout=600):
    p = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise AssertionError(f'{args} failed ({p.returncode}):\n{p.stdout[-3000:]}\n'
                             f'{p.stderr[-4000:]}')
    return p


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel built from a copy of the checkout (the checkout itself stays untouched)."""
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp / 'src'
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        '.venv', '.venv-*', '.git', 'data', 'work_dirs', 'build', '*.egg-info', '__pycache__',
        '.pytest_cache'))
    _run([PY, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w',
          str(tmp / 'dist'), str(src)], cwd=str(tmp), env=os.environ.copy())
    return glob.glob(str(tmp / 'dist' / 'parc_mm-*.whl'))[0]


@pytest.fixture(scope='module')
def env(wheel, tmp_path_factory):
    """A fresh venv holding only the wheel; the OpenMMLab stack comes from the test
    environment's site-packages as a plain path entry, so none of its .pth files (the
    checkout's editable install among them) run: parc_mm and its start-up hook come from
    the wheel alone."""
    tmp = tmp_path_factory.mktemp('venv')
    venv = tmp / 'venv'
    _run([PY, '-m', 'venv', '--without-pip', str(venv)], cwd=str(tmp), env=os.environ.copy())
    py = str(venv / 'bin' / 'python')
    site = _run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                cwd=str(tmp), env=os.environ.copy()).stdout.strip()
    _run([PY, '-m', 'pip', 'install', '--no-deps', '-q', '--target', site, wheel],
         cwd=str(tmp), env=os.environ.copy())
    with open(osp.join(site, 'zz_parc_mm_test_stack.pth'), 'w') as f:
        f.write(STACK_SITE + '\n')
    e = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    e.update(OMP_NUM_THREADS='1', COLUMNS='250', PYTHONWARNINGS='ignore',
             TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD='0')
    user = tmp / 'user_project'
    user.mkdir()
    from parc_mm.datasets import synthetic
    data = synthetic.generate(str(tmp / 'shapes'), num_train=4, num_val=2,
                              cls_per_class=(4, 1))
    return dict(py=py, site=site, env=e, cwd=str(user), data=data)


def test_wheel_carries_configs_tools_model_index_and_hook(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert 'parc_mm_mmengine.pth' in names
    assert 'parc_mm/.mim/model-index.yml' in names
    assert 'parc_mm/.mim/tools/train.py' in names and 'parc_mm/.mim/tools/infer.py' in names
    configs = {n for n in names if n.startswith('parc_mm/.mim/configs/') and n.endswith('.py')}
    shipped = {osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs/**/*.py'),
                                                       recursive=True)}
    assert {'parc_mm/.mim/' + p for p in shipped} == configs
    assert any(n.endswith('parc_convnext/metafile.yml') for n in names)


def test_installed_package_is_the_wheel(env):
    p = _run([env['py'], '-c', 'import parc_mm, mmengine.config.utils as u; '
              'print(parc_mm.__file__); print(u.MODULE2PACKAGE.get("parc_mm"))'],
             cwd=env['cwd'], env=env['env'])
    path, registered = p.stdout.split()
    assert path.startswith(env['site']) and registered == 'parc_mm'


def _write(env, name, text):
    path = osp.join(env['cwd'], name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def _det_cfg(env):
    root = env['data'] + '/coco'
    return _write(env, 'my_mask_rcnn.py', f"""
_base_ = ['parc_mm::demo/shapes_det_parc-convnext_mask-rcnn.py']
# a user's variant: thinner RPN head, own data, one iteration
model = dict(rpn_head=dict(feat_channels=64))
data_root = '{root}'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root, indices=1))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + '/annotations/instances_val.json')
test_evaluator = val_evaluator
train_cfg = dict(max_iters=1, val_begin=2)
""")


def _upstream_tool(lib, name):
    return osp.join(STACK_SITE, lib, '.mim', 'tools', name)


def test_mmdet_own_train_and_test_scripts(env):
    cfg = _det_cfg(env)
    wd = osp.join(env['cwd'], 'work_dirs', 'det')
    _run([env['py'], _upstream_tool('mmdet', 'train.py'), cfg, '--work-dir', wd],
         cwd=env['cwd'], env=env['env'])
    ckpt = osp.join(wd, 'iter_1.pth')
    assert osp.isfile(ckpt)
    with open(osp.join(wd, 'last_checkpoint')) as f:
        assert f.read().strip() == ckpt  # written by parc_mm.SafeCheckpointHook
    p = _run([env['py'], _upstream_tool('mmdet', 'test.py'), cfg, ckpt, '--work-dir', wd],
             cwd=env['cwd'], env=env['env'])
    assert 'coco/bbox_mAP' in p.stdout + p.stderr


def test_mim_train_search(env):
    root = env['data'] + '/cls'
    cfg = _write(env, 'my_cls.py', f"""
_base_ = ['parc_mm::demo/shapes_cls_parc-convnext.py']
model = dict(backbone=dict(drop_path_rate=0.05))
train_dataloader = dict(batch_size=4, dataset=dict(data_root='{root}'))
val_dataloader = dict(dataset=dict(data_root='{root}'))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=1)
""")
    wd = osp.join(env['cwd'], 'work_dirs', 'mim_cls')
    _run([env['py'], '-m', 'mim', 'train', 'parc_mm', cfg, '--work-dir', wd],
         cwd=env['cwd'], env=env['env'])
    assert osp.isfile(osp.join(wd, 'iter_1.pth'))
    p = _run([env['py'], '-m', 'mim', 'test', 'parc_mm', cfg, '--checkpoint',
              osp.join(wd, 'iter_1.pth'), '--work-dir', wd], cwd=env['cwd'], env=env['env'])
    assert 'accuracy/top1' in p.stdout + p.stderr
    p = _run([env['py'], '-m', 'mim', 'search', 'parc_mm'], cwd=env['cwd'], env=env['env'])
    for name in ('parc-convnext-xt_32xb128_in1k', 'parc-resnet50_8xb256-rsb-a2-300e_in1k',
                 'parc-net-s_8xb128-ms-300e_in1k'):
        assert name in p.stdout, p.stdout[-2000:]
    # and mmpretrain's own train script takes the same downstream config
    wd2 = osp.join(env['cwd'], 'work_dirs', 'mmpretrain_cls')
    _run([env['py'], _upstream_tool('mmpretrain', 'train.py'), cfg, '--work-dir', wd2],
         cwd=env['cwd'], env=env['env'])
    assert osp.isfile(osp.join(wd2, 'iter_1.pth'))


def test_mmseg_own_train_script(env):
    root = env['data'] + '/ade'
    cfg = _write(env, 'my_upernet.py', f"""
_base_ = ['parc_mm::demo/shapes_seg_parc-convnext_upernet.py']
train_dataloader = dict(batch_size=2, dataset=dict(data_root='{root}'))
val_dataloader = dict(dataset=dict(data_root='{root}', indices=1))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=1, val_begin=2)
""")
    wd = osp.join(env['cwd'], 'work_dirs', 'seg')
    _run([env['py'], _upstream_tool('mmseg', 'train.py'), cfg, '--work-dir', wd],
         cwd=env['cwd'], env=env['env'])
    assert osp.isfile(osp.join(wd, 'iter_1.pth'))


def test_our_tools_from_the_installed_package(env):
    """Our train tool (installed under parc_mm/.mim/tools) and paper_tables from any folder."""
    cfg = _det_cfg(env)
    tools = osp.join(env['site'], 'parc_mm', '.mim', 'tools')
    wd = osp.join(env['cwd'], 'work_dirs', 'ours')
    _run([env['py'], osp.join(tools, 'train.py'), cfg, '--work-dir', wd], cwd=env['cwd'],
         env=env['env'])
    assert osp.isfile(osp.join(wd, 'iter_1.pth'))
    p = _run([env['py'], osp.join(tools, 'analysis', 'get_flops.py'),
              'configs/parc_convnext/parc-convnext-xt_32xb128_in1k.py', '--shape', '64', '64'],
             cwd=env['cwd'], env=env['env'])
    assert '7.41' in p.stdout or '7,412,824' in p.stdout, p.stdout

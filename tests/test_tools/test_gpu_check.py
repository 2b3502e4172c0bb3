"""The device run rehearsed on CPU: the wheelhouse fits the carry limit and holds every import
the GPU image lacks (checked by importing the stack from the image's packages + the wheelhouse
alone, in a clean venv), and ``tools/gpu/check.sh --dry-run`` runs end to end with its CUDA
steps skipped."""
import json
import os
import os.path as osp
import re
import subprocess
import sys
import venv

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GPU = osp.join(ROOT, 'tools', 'gpu')
PYV = f'{sys.version_info[0]}.{sys.version_info[1]}'


def _norm(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def _image_packages():
    words = []
    for line in open(osp.join(GPU, 'image_packages.txt')):
        if not line.startswith('#'):
            words += line.split()
    return {_norm(w) for w in words}


@pytest.fixture(scope='module')
def wheelhouse(tmp_path_factory):
    d = str(tmp_path_factory.mktemp('whl'))
    p = subprocess.run(['bash', osp.join(GPU, 'make_wheelhouse.sh'), d, PYV],
                       capture_output=True, text=True,
                       env={**os.environ, 'PARC_PYTHON_FOR_PIP': sys.executable})
    if p.returncode and ('Could not find' in p.stderr or 'connection' in p.stderr.lower()):
        pytest.skip(f'no package index here: {p.stderr[-300:]}')
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return d


def test_wheelhouse_fits_and_carries_nothing_the_image_has(wheelhouse):
    files = os.listdir(wheelhouse)
    size = sum(osp.getsize(osp.join(wheelhouse, f)) for f in files)
    assert size <= 60 * 2**20, size
    image = _image_packages() - {'setuptools'}  # carried only for pkg_resources, see check.sh
    dists = {_norm(f.split('-')[0]) for f in files}
    assert not dists & image, dists & image
    assert 'mmcv-2.1.0.tar.gz' in files
    for needed in ('mmengine', 'mmdet', 'mmsegmentation', 'mmpretrain', 'model-index',
                   'importlib-metadata', 'mat4py', 'ordered-set', 'addict', 'yapf', 'termcolor',
                   'terminaltables', 'pycocotools', 'shapely', 'ftfy'):
        assert needed in dists, needed


def _image_view(dest):
    """The GPU image emulated from this venv: links to the distributions the image holds
    (and mmcv, which check.sh builds there), nothing else."""
    import sysconfig
    from importlib import metadata
    site = sysconfig.get_paths()['purelib']
    image = _image_packages() | {'mmcv', 'opencv-python'}  # opencv: -headless there
    os.makedirs(dest)
    for dist in metadata.distributions(path=[site]):
        if _norm(dist.metadata['Name']) not in image:
            continue
        tops = {str(f).split('/')[0] for f in (dist.files or []) if not str(f).startswith('..')}
        for top in tops:
            src = osp.join(site, top)
            if osp.exists(src) and not osp.lexists(osp.join(dest, top)) and top != 'bin':
                os.symlink(src, osp.join(dest, top))


def test_the_stack_imports_from_the_image_and_the_wheelhouse_alone(tmp_path, wheelhouse):
    env_dir = str(tmp_path / 'clean')
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = osp.join(env_dir, 'bin', 'python')
    site = subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True).stdout.strip()
    image, carried = str(tmp_path / 'image'), str(tmp_path / 'carried')
    _image_view(image)
    wheels = [osp.join(wheelhouse, f) for f in os.listdir(wheelhouse)
              if f.endswith('.whl') and not f.startswith('setuptools-')]
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-index', '--no-deps',
                    '--target', carried] + wheels, check=True)
    with open(osp.join(site, 'gpu_image.pth'), 'w') as f:
        f.write(f'{carried}\n{image}\n')
    code = ('import mmengine, mmcv, mmdet.models, mmseg.models, mmpretrain.models, '
            'parc_mm.models, parc_mm.engine.hooks, modelindex, pycocotools.coco, shapely, ftfy; '
            'from mmengine.config import Config; '
            'Config.fromfile("configs/demo/shapes_det_parc-convnext_mask-rcnn.py"); '
            'print("stack ok")')
    p = subprocess.run([py, '-c', code], capture_output=True, text=True, cwd=ROOT,
                       env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': ROOT, 'HOME': str(tmp_path)})
    assert p.returncode == 0 and 'stack ok' in p.stdout, p.stderr[-3000:]


def test_device_check_dry_run_end_to_end(tmp_path, wheelhouse):
    out = tmp_path / 'out'
    p = subprocess.run(['bash', osp.join(GPU, 'check.sh'), '--dry-run', wheelhouse, str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=900,
                       env={**os.environ, 'PARC_GPU_PYTHON': sys.executable,
                            'PARC_GPU_SITE': str(tmp_path / 'site'), 'OMP_NUM_THREADS': '2'})
    summary = (out / 'summary.txt').read_text()
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    for line in ('models fp32: done', 'models bf16: done', 'stages: done', 'gpu checks: written',
                 'skipped: mmcv CUDA build', 'skipped: Mask R-CNN GPU step', 'done'):
        assert line in summary, summary
    assert 'FAIL' not in summary, summary
    assert len(os.listdir(out)) <= 8  # the device tool returns 8 files
    checks = json.load(open(out / 'gpu_checks.json'))
    assert checks['deterministic'] == {'direct': 'pass', 'fft': 'pass', 'gemm': 'pass'}
    assert checks['graph_capture'].startswith('skipped') and \
        checks['sync_free_eval'].startswith('skipped')
    assert all(v == 'pass' for v in checks['amp'].values()), checks['amp']
    rows = json.load(open(out / 'models_fp32.json'))['rows']
    assert {r['variant'] for r in rows} >= {'baseline', 'auto', 'direct', 'fft', 'gemm'}


def test_a_failed_step_fails_the_run_and_nothing_outside_its_temp_folder_is_touched(tmp_path):
    """An unusable wheelhouse: exit 1 with the failed step named; the run's scratch is a fresh
    mktemp folder (removed at exit): a folder of the same name as the old fixed one is left."""
    tmp = tmp_path / 'tmp'
    (tmp / 'mmcv').mkdir(parents=True)
    (tmp / 'mmcv' / 'mine.txt').write_text('keep')
    empty = tmp_path / 'whl'
    empty.mkdir()
    p = subprocess.run(['bash', osp.join(GPU, 'check.sh'), '--dry-run', str(empty),
                        str(tmp_path / 'out')], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, 'TMPDIR': str(tmp)})
    assert p.returncode == 1
    summary = (tmp_path / 'out' / 'summary.txt').read_text()
    assert 'failed: installing the wheelhouse' in summary
    assert (tmp / 'mmcv' / 'mine.txt').read_text() == 'keep'
    assert sorted(os.listdir(tmp)) == ['mmcv']  # its own scratch folder is gone

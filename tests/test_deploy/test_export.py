"""tools/deploy/export_onnx.py: a config's model exported at one size, checked against PyTorch
in ONNX Runtime, with what a deployment needs to feed it (parc_export.json) and a manifest
that tools/infer.py verifies."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

pytest.importorskip('onnxruntime')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'deploy', 'export_onnx.py')


def _export(*args):
    p = subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, cwd=ROOT,
                       env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '2',
                            'HOME': '/tmp'})
    return p


def test_classifier_exports_with_its_checkpoint_and_classes(tmp_path):
    from parc_mm.datasets import synthetic
    from tests.harness import demo_checkpoint
    config = 'configs/demo/shapes_cls_parc-convnext.py'
    ckpt = demo_checkpoint(tmp_path, config, 'mmpretrain')
    p = _export(config, ckpt, '--out', str(tmp_path / 'cls'), '--shape', '64', '96')
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.load(open(tmp_path / 'cls' / 'parc_export.json'))
    assert rec['task'] == 'cls' and rec['input']['shape'] == [1, 3, 64, 96]
    assert rec['outputs'] == {'logits': [1, len(synthetic.CLASSES)]}
    assert rec['classes'] == list(synthetic.CLASSES)
    assert rec['max_abs_diff_vs_pytorch'] < 1e-4 and rec['non_portable'] == []
    assert len(rec['input']['mean']) == 3 and 'DFT' not in rec['ops']


@pytest.mark.parametrize('config,args,kind', [
    ('configs/demo/shapes_det_parc-convnext_mask-rcnn.py', [], 'backbone + neck features'),
    ('configs/demo/shapes_seg_parc-convnext_upernet.py', ['--dynamo'], 'logits')])
def test_detector_features_and_segmentor_logits_export(tmp_path, config, args, kind):
    if args:
        pytest.importorskip('onnxscript')
    p = _export(config, '--out', str(tmp_path / 'x'), '--shape', '96', '128', *args)
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.load(open(tmp_path / 'x' / 'parc_export.json'))
    assert rec['exported'] == kind and rec['max_abs_diff_vs_pytorch'] < 1e-4


def test_a_mismatched_checkpoint_is_refused(tmp_path):
    toy = tmp_path / 'toy.pth'
    torch.save({'state_dict': {'a': torch.zeros(1)}}, toy)
    p = _export('configs/demo/shapes_cls_parc-convnext.py', str(toy), '--out',
                str(tmp_path / 'o'))
    assert p.returncode == 2 and 'does not fit the model' in p.stderr


def test_the_op_report_sees_the_guard_and_weight_resizes(tmp_path):
    import torch.nn as nn
    import torch.nn.functional as F

    from parc_mm.deploy.report import onnx_op_report

    class Guarded(nn.Module):
        def forward(self, x):
            return torch.where(torch.isfinite(x), x, torch.zeros_like(x))

    class ResizedKernel(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 1, 5, 1))

        def forward(self, x):
            w = F.interpolate(self.w, size=(x.shape[2], 1), mode='bilinear', align_corners=True)
            return x * w.sum()

    for m, expect in ((Guarded(), {'IsInf', 'Where on a non-finite test'}),
                      (ResizedKernel(), {'Resize of a weight'})):
        path = str(tmp_path / 'm.onnx')
        torch.onnx.export(m, (torch.randn(1, 4, 8, 3), ), path, opset_version=17, dynamo=False)
        assert expect <= set(onnx_op_report(path)['non_portable'])


def _infer(*args):
    p = subprocess.run([sys.executable, osp.join(ROOT, 'tools', 'infer.py'), *args,
                        '--device', 'cpu'], capture_output=True, text=True, cwd=ROOT,
                       env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '2',
                            'HOME': '/tmp'})
    return p


def test_an_exported_classifier_infers_like_its_checkpoint(tmp_path):
    """Same top-5 and scores from model.onnx in ONNX Runtime as from the checkpoint, on the
    real photo (exported at its pipeline size) and on the demo's validation images."""
    import glob

    from parc_mm.datasets import synthetic
    from tests.harness import demo_checkpoint
    config = 'configs/demo/shapes_cls_parc-convnext.py'
    ckpt = demo_checkpoint(tmp_path, config, 'mmpretrain')
    root = str(tmp_path / 'data')
    synthetic.ensure(root)
    cat = osp.join(ROOT, 'tests', 'data', 'cat.jpg')
    vals = sorted(glob.glob(osp.join(root, 'cls', 'val', '*', '0000[01].png')))
    for images, shape in (([cat], ['213', '320']), (vals, ['64', '64'])):
        out = tmp_path / f'export_{shape[0]}'
        assert _export(config, ckpt, '--out', str(out), '--shape', *shape).returncode == 0
        runs = {}
        for kind, model in (('pth', ckpt), ('onnx', str(out))):
            p = _infer(config, model, *images, '--out-dir', str(tmp_path / f'{kind}{shape[0]}'))
            assert p.returncode == 0, p.stderr[-3000:]
            runs[kind] = json.load(open(tmp_path / f'{kind}{shape[0]}' / 'predictions.json'))
        assert len(runs['onnx']) == len(images)
        for a, b in zip(runs['pth'], runs['onnx']):
            assert [t['label'] for t in a['top5']] == [t['label'] for t in b['top5']]
            assert max(abs(x['score'] - y['score']) for x, y in zip(a['top5'], b['top5'])) < 1e-4
            assert osp.isfile(b['vis'])
    # another size than the export's: refused per image with the fix, not a wrong answer
    p = _infer(config, str(tmp_path / 'export_64'), cat, '--out-dir', str(tmp_path / 'bad'))
    assert p.returncode == 1 and 'export at that size' in p.stderr and '--shape 213 320' in p.stderr


def test_an_exported_segmentor_infers_like_its_checkpoint(tmp_path):
    import glob

    import cv2
    import numpy as np

    from parc_mm.datasets import synthetic
    from tests.harness import demo_checkpoint
    config = 'configs/demo/shapes_seg_parc-convnext_upernet.py'
    ckpt = demo_checkpoint(tmp_path, config, 'mmseg')
    root = str(tmp_path / 'data')
    synthetic.ensure(root)
    images = sorted(glob.glob(osp.join(root, 'ade', 'images', 'validation', '*.jpg')))[:3]
    h, w = cv2.imread(images[0]).shape[:2]
    assert _export(config, ckpt, '--out', str(tmp_path / 'x'), '--shape', str(h), str(w),
                   '--dynamo').returncode == 0
    maps = {}
    for kind, model in (('pth', ckpt), ('onnx', str(tmp_path / 'x'))):
        p = _infer(config, model, *images, '--out-dir', str(tmp_path / kind))
        assert p.returncode == 0, p.stderr[-3000:]
        preds = json.load(open(tmp_path / kind / 'predictions.json'))
        maps[kind] = [cv2.imread(r['pred_png'], cv2.IMREAD_UNCHANGED) for r in preds]
    for a, b in zip(maps['pth'], maps['onnx']):
        assert a.shape == (h, w) and np.mean(a == b) > 0.995


def test_an_exported_detector_is_refused_with_the_reason(tmp_path):
    config = 'configs/demo/shapes_det_parc-convnext_mask-rcnn.py'
    assert _export(config, '--out', str(tmp_path / 'd'), '--shape', '96', '128').returncode == 0
    p = _infer(config, str(tmp_path / 'd'), osp.join(ROOT, 'tests', 'data', 'cat.jpg'),
               '--out-dir', str(tmp_path / 'o'), '--allow-random-weights')
    assert p.returncode == 2 and 'mmdeploy' in p.stderr and 'backbone + neck' in p.stderr


def test_the_op_report_compares_each_family_with_its_baseline(tmp_path):
    """tools/deploy/op_report.py: the ParC-DeiT-S graph holds no attention / FFT / guard op
    while DeiT-S's Softmax is flagged; the traced token mixer is 2 circular convs per block
    (one along H, one along W, for all channels), not 4."""
    sys.path.insert(0, ROOT)
    from tools.deploy import op_report
    rep = op_report.report(['deit'], 224, 'direct')['ParC-DeiT-S']
    parc, base = rep['parc'], rep['baseline']
    assert parc['non_portable'] == [] and 'Softmax' in base['non_portable']
    assert not {'DFT', 'Softmax', 'IsNaN', 'IsInf'} & set(parc['ops'])
    assert parc['ops']['Conv'] == 1 + 2 * 12  # the patch embedding + 2 per block
    assert op_report.main(['--pairs', 'deit', '--impl', 'gemm',
                           '--json', str(tmp_path / 'r.json')]) == 0
    gemm = json.load(open(tmp_path / 'r.json'))['pairs']['ParC-DeiT-S']['parc']
    assert gemm['ops']['Conv'] == 1 and gemm['non_portable'] == []


@pytest.mark.parametrize('config,shape,args', [
    ('configs/parcnetv2/parcnetv2-xt_32xb128_in1k.py', ['64', '96'], []),
    ('configs/parcnetv2/fpn_parcnetv2-t_8xb4-40k_ade20k-512x512.py', ['64', '96'], []),
    ('configs/parcnetv2/mask-rcnn_parcnetv2-t_fpn_ms-crop-3x_coco.py', ['96', '128'], []),
    # (UperNet's 6x6 pooling of a 2x3 map: only the dynamo exporter writes it)
    ('configs/parcnetv2/upernet_parcnetv2-t_8xb2-160k_ade20k-512x512.py', ['64', '96'],
     ['--dynamo'])])
def test_parcnetv2_exports_with_defaults(tmp_path, config, shape, args):
    """A shipped ParCNetV2 config exported with the default impl (auto: the Toeplitz GEMM on
    maps up to 64, padded convs beyond) by either exporter: ONNX Runtime equals PyTorch, the
    graph holds no FFT, attention or guard."""
    if args:
        pytest.importorskip('onnxscript')
    p = _export(config, '--out', str(tmp_path / 'x'), '--shape', *shape, *args)
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.load(open(tmp_path / 'x' / 'parc_export.json'))
    assert rec['max_abs_diff_vs_pytorch'] < 1e-4 and rec['non_portable'] == []
    assert 'DFT' not in rec['ops'] and 'MatMul' in rec['ops']


def test_the_op_report_of_parcnetv2_against_its_official_form():
    """Exported as GEMMs, every oversized conv (2 per block) is one MatMul with a constant
    Toeplitz matrix where the official form has a Conv; nothing non-portable in either."""
    sys.path.insert(0, ROOT)
    from tools.deploy import op_report
    rep = op_report.report(['parcnetv2'], 64, 'gemm')['ParCNetV2-XT (vs official direct)']
    parc, base = rep['parc'], rep['baseline']
    assert parc['non_portable'] == [] and base['non_portable'] == []
    blocks = 3 + 3 + 9 + 2
    assert parc['ops']['MatMul'] - base['ops']['MatMul'] == 2 * blocks
    assert base['ops']['Conv'] - parc['ops']['Conv'] == 2 * blocks
    assert not {'DFT', 'Softmax', 'IsNaN', 'IsInf'} & set(parc['ops'])


# --- exports that prove what they hold (the folder's manifest and record) ------------------
@pytest.fixture(scope='module')
def cls_export(tmp_path_factory):
    """The demo classifier exported with its (random-init) checkpoint at 64x64."""
    from tests.harness import demo_checkpoint
    tmp = tmp_path_factory.mktemp('export')
    config = 'configs/demo/shapes_cls_parc-convnext.py'
    ckpt = demo_checkpoint(tmp, config, 'mmpretrain')
    out = tmp / 'exp'
    assert _export(config, ckpt, '--out', str(out), '--shape', '64', '64').returncode == 0
    return config, ckpt, out


def _copy(src, dst):
    import shutil
    shutil.copytree(src, dst)
    return dst


def test_the_record_proves_what_the_export_holds(cls_export):
    from parc_mm.utils.fileio import MANIFEST, sha256_file
    config, ckpt, out = cls_export
    rec = json.load(open(out / 'parc_export.json'))
    assert rec['checkpoint_sha256'] == sha256_file(ckpt)
    assert rec['traced_input_shape'] == [1, 3, 64, 64] == rec['input']['shape']
    man = json.load(open(out / MANIFEST))
    assert man['tool'] == 'export'
    assert man['files']['model.onnx']['sha256'] == sha256_file(str(out / 'model.onnx'))
    assert set(man['files']) == {'model.onnx', 'parc_export.json'}


def test_infer_refuses_a_swapped_or_damaged_graph(cls_export, tmp_path):
    config, ckpt, out = cls_export
    cat = osp.join(ROOT, 'tests', 'data', 'cat.jpg')
    bad = _copy(out, tmp_path / 'swapped')
    with open(bad / 'model.onnx', 'ab') as f:
        f.write(b'\0')
    p = _infer(config, str(bad), cat, '--out-dir', str(tmp_path / 'o1'))
    assert p.returncode == 2 and 'model.onnx is not the file the tool wrote' in p.stderr
    p = _infer(config, str(bad / 'model.onnx'), cat, '--out-dir', str(tmp_path / 'o2'))
    assert p.returncode == 2 and 'not the file the tool wrote' in p.stderr


def test_infer_refuses_a_graph_no_export_wrote_unless_asked(cls_export, tmp_path):
    import shutil
    config, ckpt, out = cls_export
    loose = tmp_path / 'loose'
    loose.mkdir()
    shutil.copy(out / 'model.onnx', loose / 'model.onnx')
    cat = osp.join(ROOT, 'tests', 'data', 'cat.jpg')
    p = _infer(config, str(loose / 'model.onnx'), cat, '--out-dir', str(tmp_path / 'o'))
    assert p.returncode == 2 and 'was not written by tools/deploy/export_onnx.py' in p.stderr
    assert '--allow-unverified' in p.stderr
    p = _infer(config, str(loose), cat, '--out-dir', str(tmp_path / 'o'))
    assert p.returncode == 2 and 'is a folder but not one tools/deploy/export' in p.stderr


def test_infer_refuses_random_weights_and_a_class_mismatch(tmp_path):
    config = 'configs/demo/shapes_cls_parc-convnext.py'
    cat = osp.join(ROOT, 'tests', 'data', 'cat.jpg')
    assert _export(config, '--out', str(tmp_path / 'r'), '--shape', '64', '64').returncode == 0
    p = _infer(config, str(tmp_path / 'r'), cat, '--out-dir', str(tmp_path / 'o'))
    assert p.returncode == 2 and 'random weights' in p.stderr
    assert '--allow-random-weights' in p.stderr
    # a 10-class config over the 6-class graph
    ten = tmp_path / 'ten.py'
    ten.write_text(f"_base_ = ['{ROOT}/{config}']\n"
                   "model = dict(head=dict(num_classes=10))\n")
    p = _infer(str(ten), str(tmp_path / 'r'), cat, '--out-dir', str(tmp_path / 'o'),
               '--allow-random-weights')
    assert p.returncode == 2 and "outputs 6 classes; the config's head has 10" in p.stderr


def test_export_refuses_a_foreign_folder_and_replaces_its_own_whole(cls_export, tmp_path):
    config, ckpt, out = cls_export
    user = tmp_path / 'user'
    user.mkdir()
    (user / 'model.onnx').write_text('my own file')
    (user / 'notes.txt').write_text('keep me')
    p = _export(config, ckpt, '--out', str(user), '--shape', '64', '64')
    assert p.returncode == 2 and 'was not written by parc_mm' in p.stderr and '--force' in p.stderr
    assert (user / 'model.onnx').read_text() == 'my own file'
    assert sorted(x.name for x in tmp_path.iterdir()) == ['user']  # no stage left behind
    # --force: replaced, the user's files moved aside (not deleted)
    assert _export(config, ckpt, '--out', str(user), '--shape', '64', '64',
                   '--force').returncode == 0
    aside = [x for x in tmp_path.iterdir() if x.name.startswith('user.replaced-')]
    assert len(aside) == 1 and (aside[0] / 'notes.txt').read_text() == 'keep me'
    # its own folder is replaced whole: an extra file from before does not survive
    mine = _copy(out, tmp_path / 'mine')
    p = _export(config, ckpt, '--out', str(mine), '--shape', '64', '96')
    assert p.returncode == 0
    assert json.load(open(mine / 'parc_export.json'))['input']['shape'] == [1, 3, 64, 96]


def test_a_failed_export_leaves_the_previous_one(cls_export, tmp_path):
    config, ckpt, out = cls_export
    mine = _copy(out, tmp_path / 'mine')
    before = (mine / 'model.onnx').read_bytes()
    toy = tmp_path / 'toy.pth'
    torch.save({'state_dict': {'a': torch.zeros(1)}}, toy)
    p = _export(config, str(toy), '--out', str(mine), '--shape', '64', '96')
    assert p.returncode == 2
    assert (mine / 'model.onnx').read_bytes() == before
    assert json.load(open(mine / 'parc_export.json'))['input']['shape'] == [1, 3, 64, 64]
    assert sorted(x.name for x in tmp_path.iterdir()) == ['mine', 'toy.pth']


def test_a_checkpoint_pickling_python_objects_exports_with_trust(tmp_path):
    """An official-style checkpoint holding an argparse.Namespace: refused by the safe loader
    with the flag to pass, exported with --trust-checkpoint."""
    import argparse

    from tests.harness import demo_checkpoint
    config = 'configs/demo/shapes_cls_parc-convnext.py'
    ckpt = demo_checkpoint(tmp_path, config, 'mmpretrain')
    obj = torch.load(ckpt)
    obj['args'] = argparse.Namespace(lr=0.1)
    torch.save(obj, tmp_path / 'ns.pth')
    p = _export(config, str(tmp_path / 'ns.pth'), '--out', str(tmp_path / 'a'), '--shape', '64',
                '64')
    assert p.returncode == 2 and '--trust-checkpoint' in p.stderr
    assert not (tmp_path / 'a').exists()
    p = _export(config, str(tmp_path / 'ns.pth'), '--out', str(tmp_path / 'a'), '--shape', '64',
                '64', '--trust-checkpoint')
    assert p.returncode == 0, p.stderr[-3000:]

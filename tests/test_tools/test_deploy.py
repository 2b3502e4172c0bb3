"""tools/deploy/export_onnx.py: a config's model exported at one size, checked against PyTorch
in ONNX Runtime, with what a deployment needs to feed it (deploy.json)."""
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
    from tests.test_tools.test_inference import _demo_checkpoint
    config = 'configs/demo/shapes_cls_parc-convnext.py'
    ckpt = _demo_checkpoint(tmp_path, config, 'mmpretrain')
    p = _export(config, ckpt, '--out', str(tmp_path / 'cls'), '--shape', '64', '96')
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.load(open(tmp_path / 'cls' / 'deploy.json'))
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
    rec = json.load(open(tmp_path / 'x' / 'deploy.json'))
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

    from parc_mm.ops.export import onnx_op_report

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

    for m, expect in ((Guarded(), {'IsInf', 'Where on the input'}),
                      (ResizedKernel(), {'Resize of a weight'})):
        path = str(tmp_path / 'm.onnx')
        torch.onnx.export(m, (torch.randn(1, 4, 8, 3), ), path, opset_version=17, dynamo=False)
        assert expect <= set(onnx_op_report(path)['non_portable'])

"""Stack check: versions plus a functional check of everything parc_mm relies on.

    python -m parc_mm.apis.collect_env            # full check
    python -m parc_mm.apis.collect_env --quick    # skip the Runner checkpoint round trip

Exits non-zero naming the first broken piece and how to fix it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from typing import Callable, List, Tuple


def _versions() -> List[Tuple[str, str]]:
    from parc_mm.compat import stack
    rows = [('python', sys.version.split()[0]), ('stack', stack())]
    for name in ('torch', 'torchvision', 'numpy', 'mmengine', 'mmcv', 'mmdet', 'mmseg',
                 'mmpretrain', 'pycocotools', 'cv2', 'onnx', 'onnxruntime', 'mmdeploy',
                 'setuptools', 'parc_mm'):
        try:
            mod = importlib.import_module(name)
            rows.append((name, str(getattr(mod, '__version__', '?'))))
        except Exception as e:  # noqa: BLE001 - report, do not crash the listing
            rows.append((name, f'NOT AVAILABLE ({type(e).__name__}: {e})'))
    import torch
    rows.append(('torch.cuda', f'{torch.version.cuda} (available: {torch.cuda.is_available()})'))
    rows.append(('threads', str(torch.get_num_threads())))
    import mmengine.config  # noqa: F401  (the targets of the config patches)
    import mmengine.logging  # noqa: F401
    import mmengine.runner.checkpoint  # noqa: F401

    from parc_mm.compat import applied
    rows.append(('patches', ', '.join(k for k, v in applied().items() if v) or 'none'))
    return rows


def check_mmcv_ops(device: str = 'cpu') -> str:
    import torch
    from mmcv.ops import RoIAlign, nms
    if device == 'cuda' and not torch.cuda.is_available():
        return 'no GPU here: CUDA ops not checked'
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [50., 50., 60., 60.]],
                         device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2], keep
    feat = torch.arange(64, dtype=torch.float32, device=device).view(1, 1, 8, 8)
    rois = torch.tensor([[0., 0., 0., 7., 7.]], device=device)
    out = RoIAlign((2, 2), spatial_scale=1.0, sampling_ratio=2, aligned=True)(feat, rois)
    assert out.shape == (1, 1, 2, 2) and torch.isfinite(out).all()
    return f'nms + RoIAlign ran on {device}'


def check_imports() -> str:
    import mmdet.models  # noqa: F401
    import mmpretrain.models  # noqa: F401
    import mmseg.models  # noqa: F401

    import parc_mm.models  # noqa: F401
    return 'mmdet.models, mmseg.models, mmpretrain.models, parc_mm.models imported'


def check_runner_checkpoint() -> str:
    """Train 2 iterations with an mmengine Runner, save, then resume from the file."""
    import torch
    import torch.nn as nn
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    from parc_mm import compat
    compat.ensure('mmengine-checkpoints-weights-only')

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode='loss'):
            out = self.fc(inputs)
            if mode == 'loss':
                return {'loss': ((out.squeeze(1) - labels)**2).mean()}
            return out

    data = [dict(inputs=torch.randn(2), labels=torch.tensor(1.0)) for _ in range(4)]
    with tempfile.TemporaryDirectory() as tmp:
        def build(resume):
            return Runner(
                model=Toy(), work_dir=tmp,
                train_dataloader=dict(dataset=data, batch_size=2,
                                      sampler=dict(type='DefaultSampler', shuffle=False),
                                      collate_fn=dict(type='default_collate')),
                optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
                train_cfg=dict(by_epoch=False, max_iters=2),
                default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1,
                                                   by_epoch=False),
                                   logger=dict(type='LoggerHook', interval=1)),
                resume=resume, log_level='ERROR', default_scope='mmengine')
        build(False).train()
        r = build(True)
        r.train()  # resumes from iter_2.pth (loads the message hub: HistoryBuffer)
        assert r.iter == 2, r.iter
        ck = torch.load(f'{tmp}/iter_2.pth', map_location='cpu')  # weights_only default
        assert 'message_hub' in ck
    return 'Runner checkpoint saved and resumed (torch.load weights_only)'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='skip the Runner round trip')
    args = parser.parse_args(argv)
    width = 12
    for k, v in _versions():
        print(f'{k:<{width}} {v}')
    checks: List[Tuple[str, Callable[[], str], str]] = [
        ('mmcv.ops', check_mmcv_ops,
         'mmcv was installed without compiled ops: rerun tools/setup_env.sh (MMCV_WITH_OPS=1)'),
        ('mmcv.ops[cuda]', lambda: check_mmcv_ops('cuda'),
         'mmcv was built without CUDA ops: rerun tools/setup_env.sh on this GPU machine with '
         'nvcc of torch\'s CUDA version (CUDA_HOME=/usr/local/cuda-<ver> MMCV_CUDA=1)'),
        ('imports', check_imports, 'rerun tools/setup_env.sh; see the traceback above'),
    ]
    if not args.quick:
        checks.append(('checkpoint', check_runner_checkpoint,
                       'torch.load(weights_only) rejected an mmengine checkpoint'))
    ok = True
    for name, fn, fix in checks:
        try:
            print(f'[ok]   {name}: {fn()}')
        except Exception as e:  # noqa: BLE001 - the point is to report
            import traceback
            traceback.print_exc()
            print(f'[FAIL] {name}: {type(e).__name__}: {e}\n       fix: {fix}')
            ok = False
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

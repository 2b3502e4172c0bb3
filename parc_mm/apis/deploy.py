"""ONNX export of a config's model, checked against PyTorch (``tools/deploy/export_onnx.py``).

What is exported per task: a classifier's logits (mmpretrain, ``mode='tensor'``), a
segmentor's logits (mmseg, ``mode='tensor'``), a detector's backbone + neck features (mmdet:
whole detectors need mmdeploy's rewriters for their box coder and NMS, which this release does
not ship). The graph holds no preprocessing: ``parc_export.json`` next to it records the input
size actually traced, mean / std / channel order, the outputs and their sizes, the classes, the
checkpoint's sha256 (or ``random init``) and the op report; the folder's manifest
(:mod:`parc_mm.utils.fileio`) lists every file with its size and sha256, and
``tools/infer.py`` checks all of it before running the graph.

The folder is written whole (:func:`parc_mm.utils.fileio.artefact_folder`): a folder parc_mm
did not write is refused (``force``: its content is moved aside), an export that fails or is
refused leaves the previous one untouched, and a kill leaves the old folder or the new one.

ParC graphs are valid for the size they were traced at (the kernels are as long as the
feature maps): one export per input size; dynamic height / width are not supported.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn

from parc_mm.apis.tasks import TASKS

RECORD = 'parc_export.json'  # (mmdeploy writes deploy.json: another tool's file, another name)
RANDOM_INIT = 'random init'


class _Exported(nn.Module):
    """The part of a task model that is exported, as a plain ``forward(x)``."""

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, x: torch.Tensor):
        if TASKS[self.task].exports == 'features':  # (a detector's heads need data samples)
            return tuple(self.model.extract_feat(x))
        return self.model(x, mode='tensor')


def _preprocessing(model: nn.Module) -> dict:
    pre = getattr(model, 'data_preprocessor', None)
    out = {}
    for name in ('mean', 'std'):
        t = getattr(pre, name, None)
        if torch.is_tensor(t):
            out[name] = [float(v) for v in t.flatten()]
    for flag in ('_channel_conversion', 'bgr_to_rgb', 'to_rgb'):
        if hasattr(pre, flag):
            out['bgr_to_rgb'] = bool(getattr(pre, flag))
            break
    return out


def export_onnx(config: str, checkpoint: Optional[str], out_dir: str,
                shape: Optional[Sequence[int]] = None, dynamo: bool = False,
                opset: int = 17, allow_partial: bool = False, atol: float = 1e-4,
                force: bool = False) -> dict:
    """Export the config's model to ``out_dir/model.onnx`` at ``shape`` (H, W; default: the
    task's test size), compare ONNX Runtime with PyTorch on a random input, and write
    ``out_dir/parc_export.json``. Returns that record; raises (and writes nothing) when the
    outputs differ by more than ``atol`` or the graph holds non-portable ops."""
    from parc_mm.utils.fileio import artefact_folder
    # (the writer refuses a folder it did not make on entry, before anything is built)
    with artefact_folder(out_dir, 'export', force) as stage:
        record = _export(config, checkpoint, stage, shape, dynamo, opset, allow_partial, atol)
    return record


def _export(config, checkpoint, out_dir, shape, dynamo, opset, allow_partial, atol) -> dict:
    from parc_mm.apis.runner import check_checkpoint_fits
    from parc_mm.apis.tasks import build_model, load_config, task_of
    from parc_mm.ops import inference_mode
    from parc_mm.ops.export import onnx_op_report
    cfg = load_config(config)
    task = task_of(cfg)
    h, w = tuple(shape) if shape else TASKS[task].test_size
    model = build_model(cfg)
    meta = {}
    if checkpoint is not None:
        from mmengine.runner import load_checkpoint

        from parc_mm.utils.checkpoint import verify_checkpoint
        verify_checkpoint(checkpoint)
        check_checkpoint_fits(model, checkpoint, allow_partial)
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=not allow_partial)
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    wrapper = _Exported(model, task)
    inference_mode(wrapper)
    torch.manual_seed(0)
    x = torch.randn(1, 3, h, w)
    with torch.no_grad():
        ref = wrapper(x)
    refs: Tuple[torch.Tensor, ...] = tuple(ref) if isinstance(ref, (tuple, list)) else (ref, )
    path = osp.join(out_dir, 'model.onnx')
    features = TASKS[task].exports == 'features'
    names = [f'out{i}' for i in range(len(refs))] if features else ['logits']
    with torch.no_grad():
        torch.onnx.export(wrapper, (x, ), path, input_names=['input'], output_names=names,
                          opset_version=opset, dynamo=dynamo)
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outs = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    diff = max(float((torch.from_numpy(o) - r).abs().max()) for o, r in zip(outs, refs))
    report = onnx_op_report(path)
    from parc_mm.ops.export import onnx_input
    from parc_mm.utils.fileio import sha256_file
    graph_in = onnx_input(path)[1]
    record = dict(
        task=task, config=config, checkpoint=checkpoint, onnx='model.onnx',
        checkpoint_sha256=sha256_file(checkpoint) if checkpoint else RANDOM_INIT,
        traced_input_shape=graph_in,
        input=dict(name='input', shape=[1, 3, h, w], **_preprocessing(model)),
        outputs={n: list(r.shape) for n, r in zip(names, refs)},
        exported='backbone + neck features' if features else 'logits',
        classes=list((meta.get('dataset_meta') or {}).get('classes', [])),
        exporter='dynamo' if dynamo else 'torchscript', opset=opset,
        max_abs_diff_vs_pytorch=diff, ops=report['ops'], non_portable=report['non_portable'],
        torch=torch.__version__, onnxruntime=ort.__version__)
    if graph_in != [1, 3, h, w]:
        raise RuntimeError(f'{path} was traced with input {graph_in}, not [1, 3, {h}, {w}]')
    if report['non_portable']:
        raise RuntimeError(f'{path} holds non-portable ops {report["non_portable"]}')
    if diff > atol:
        raise RuntimeError(f'{path}: ONNX Runtime differs from PyTorch by {diff:.2e} '
                           f'(> {atol:.0e})')
    with open(osp.join(out_dir, RECORD), 'w') as f:  # only for an export that passed
        json.dump(record, f, indent=1)
    return record

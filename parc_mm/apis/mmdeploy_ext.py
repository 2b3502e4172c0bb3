"""mmdeploy for ParC models: what a deploy config imports, the deploy / evaluate / quantize
steps of ``tools/deploy/deploy.py``, and the backend model behind ``tools/infer.py``.

A deploy config imports this module (``custom_imports = dict(imports=
['parc_mm.apis.mmdeploy_ext'])``, as the shipped ones in ``configs/deploy/`` do), so
mmdeploy's own tools work with it too. Importing it

- imports ``parc_mm``, whose :mod:`parc_mm.compat` patches apply to mmdeploy 1.3.1 on this
  torch (the TorchScript exporter inside mmdeploy's ``export``, RoIAlign's ``_cast_Long``) and
  refuses dynamic height / width for ParC graphs;
- registers an exact ``adaptive_avg_pool2d`` for the ONNX Runtime backend: mmdeploy's default
  rewrite is an ``avg_pool2d`` with kernel = stride = floor(size / output), which is wrong
  whenever the output does not divide the input (UperNet's pyramid pooling: 16x16 -> 6x6 at
  512, 4x5 -> 6x6 in the demo, where it fails outright). Here it is one constant averaging
  matrix per axis (two MatMuls), or the ``avg_pool2d`` when it is exact.

- prepares ParC models for mmdeploy's export: before tracing, every ParC layer's kernels and
  position embeddings are fixed to the export size (:func:`parc_mm.ops.export.
  fix_input_size`), so each is a constant of the graph.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmdeploy.core import FUNCTION_REWRITER
from torch.nn.modules.utils import _pair

import parc_mm  # noqa: F401  (installs the compat patches mmdeploy needs)

# the ONNX file mmdeploy writes, and the int8 one next to it
FP32_FILE, INT8_FILE = 'end2end.onnx', 'end2end_int8.onnx'
RECORD_FILE = 'parc_deploy.json'


def adaptive_pool_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix of PyTorch's adaptive average pooling along one axis: row i
    averages ``[floor(i n_in / n_out), ceil((i + 1) n_in / n_out))``."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


@FUNCTION_REWRITER.register_rewriter(
    func_name='torch.nn.functional.adaptive_avg_pool2d', backend='onnxruntime')
def adaptive_avg_pool2d__exact(input, output_size):
    """Exact adaptive average pooling for static shapes (see the module docstring)."""
    ctx = FUNCTION_REWRITER.get_context()
    h, w = (int(s) for s in input.shape[-2:])
    oh, ow = (s if s is not None else d for s, d in zip(_pair(output_size), (h, w)))
    if oh == ow == 1:
        return ctx.origin_func(input, output_size)
    if h % oh == 0 and w % ow == 0:
        return F.avg_pool2d(input, kernel_size=(h // oh, w // ow), stride=(h // oh, w // ow))
    ph = torch.from_numpy(adaptive_pool_matrix(h, oh)).to(input)
    pw = torch.from_numpy(adaptive_pool_matrix(w, ow).T.copy()).to(input)
    return torch.matmul(torch.matmul(ph, input), pw)


def _prepare_parc(model: torch.nn.Module, args) -> None:
    """Fix every ParC layer's kernels and position embeddings to the export size and put it
    on the direct (Concat + Conv) form: the graph then holds each kernel as a constant of
    the traced size instead of computing it from the stored one (a MatMul per layer, which
    int8 quantization would treat as an activation)."""
    from parc_mm.ops.export import fix_input_size, parc_layers
    if next(parc_layers(model), None) is None:
        return
    x = args[0] if isinstance(args, (tuple, list)) else args
    fix_input_size(model, tuple(int(s) for s in x.shape[-2:]), inputs=x[:1])


def _wrap_mmdeploy_export() -> None:
    import mmdeploy.apis.onnx as onnx_api
    orig = onnx_api.export
    if getattr(orig, '_parc_prepare', False):
        return

    def export(model, args, *a, **kw):
        _prepare_parc(model, args)
        return orig(model, args, *a, **kw)

    export._parc_prepare = True  # type: ignore[attr-defined]
    export.__doc__ = orig.__doc__
    onnx_api.export = export


# mmdeploy's torch2onnx imports ``export`` from mmdeploy.apis.onnx at each call
_wrap_mmdeploy_export()


# --------------------------------------------------------------------------------------
# deploy: ONNX + mmdeploy's SDK files, checked against PyTorch
# --------------------------------------------------------------------------------------
def _configs(deploy_cfg, model_cfg):
    from mmdeploy.utils import load_config
    return load_config(deploy_cfg, model_cfg)


def task_of_deploy(deploy_cfg) -> str:
    """'cls' / 'seg' / 'det' from the deploy config's codebase."""
    codebase = deploy_cfg.codebase_config.type
    return {'mmpretrain': 'cls', 'mmseg': 'seg', 'mmdet': 'det'}.get(codebase, codebase)


def check_static(deploy_cfg, model) -> None:
    """Refuse a deploy config with a dynamic input height / width for a model holding ParC
    layers (its graph would be valid only at the traced size)."""
    from mmdeploy.utils import get_input_shape, is_dynamic_shape

    from parc_mm.ops.export import parc_layers
    if next(parc_layers(model), None) is None:
        return
    if get_input_shape(deploy_cfg) is None or is_dynamic_shape(deploy_cfg):
        raise ValueError(
            'this model holds ParC layers, whose kernels are as long as the feature map: its '
            'graph is valid only at one input size, but the deploy config is dynamic (or has '
            'no onnx_config.input_shape). Use a static deploy config per size, e.g. '
            'configs/deploy/classification_onnxruntime_static-224x224.py')


class Deployed:
    """A deploy folder's models, run the mmdeploy way: ``task_processor`` builds the PyTorch
    model and the ONNX Runtime one (same data pipeline and post-processing)."""

    def __init__(self, deploy_cfg, model_cfg, device: str = 'cpu') -> None:
        from mmdeploy.apis.utils import build_task_processor
        self.deploy_cfg, self.model_cfg = _configs(deploy_cfg, model_cfg)
        self.task = task_of_deploy(self.deploy_cfg)
        self.processor = build_task_processor(self.model_cfg, self.deploy_cfg, device)
        self.device = device

    def backend_model(self, onnx_file: str):
        return self.processor.build_backend_model(
            [onnx_file], data_preprocessor_updater=self.processor.update_data_preprocessor)

    def pytorch_model(self, checkpoint: Optional[str]):
        return self.processor.build_pytorch_model(checkpoint)

    def inputs(self, img: str) -> dict:
        from mmdeploy.utils import get_input_shape
        data, _ = self.processor.create_input(img, get_input_shape(self.deploy_cfg))
        return data

    def predict(self, model, img: str):
        with torch.no_grad():
            return model.test_step(self.inputs(img))[0]

    def processed_model_cfg(self, imgs: Sequence[str] = ('', )):
        """The model config with the test pipeline mmdeploy feeds a static graph (its
        Resize set to the export size)."""
        import importlib

        from mmdeploy.utils import get_input_shape
        mod = importlib.import_module(type(self.processor).__module__)
        return mod.process_model_config(self.model_cfg, list(imgs),
                                        get_input_shape(self.deploy_cfg))


def _box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda t: (t[:, 2:] - t[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter).clamp(min=1e-9)


def compare_predictions(task: str, ref, got, score_thr: float = 0.3) -> dict:
    """How closely a backend's prediction (a data sample) matches the PyTorch one."""
    if task == 'cls':
        k = min(5, ref.pred_score.numel())
        top_ref = ref.pred_score.topk(k).indices.tolist()
        top_got = got.pred_score.topk(k).indices.tolist()
        return dict(top5_equal=top_ref == top_got, top1_equal=top_ref[0] == top_got[0],
                    max_score_diff=float((ref.pred_score - got.pred_score).abs().max()))
    if task == 'seg':
        a, b = ref.pred_sem_seg.data, got.pred_sem_seg.data
        return dict(pixel_agreement=float((a == b).float().mean()))
    pr, pg = ref.pred_instances, got.pred_instances
    keep_r, keep_g = pr.scores >= score_thr, pg.scores >= score_thr
    br, bg = pr.bboxes[keep_r], pg.bboxes[keep_g]
    out = dict(boxes_pytorch=int(keep_r.sum()), boxes_backend=int(keep_g.sum()),
               score_thr=score_thr)
    if len(br) and len(bg):
        iou = _box_iou(br, bg)
        same_label = pr.labels[keep_r][:, None] == pg.labels[keep_g][None]
        best, idx = (iou * same_label).max(1)
        out.update(matched=int((best > 0.99).sum()), min_matched_iou=float(best.min()))
        if 'masks' in pr and 'masks' in pg:
            mr, mg = pr.masks[keep_r].bool(), pg.masks[keep_g][idx].bool()
            inter = (mr & mg).flatten(1).sum(1).float()
            union = (mr | mg).flatten(1).sum(1).clamp(min=1).float()
            out['min_mask_iou'] = float((inter / union)[best > 0.99].min()) \
                if bool((best > 0.99).any()) else 0.0
    else:
        out.update(matched=0)
    return out


def _onnx_report(path: str) -> dict:
    from parc_mm.ops.export import onnx_op_report
    return onnx_op_report(path)


def deploy(deploy_cfg: str, model_cfg: str, checkpoint: Optional[str], img: str,
           work_dir: str, test_imgs: Sequence[str] = (), device: str = 'cpu') -> dict:
    """mmdeploy's ``tools/deploy.py`` for one backend (ONNX Runtime), in this process:
    ``work_dir/end2end.onnx`` + ``deploy.json`` / ``pipeline.json`` / ``detail.json`` (the
    SDK's files), then PyTorch and ONNX Runtime on ``img`` (and ``test_imgs``) compared;
    ``work_dir/parc_deploy.json`` records both and the graph's op report."""
    from mmdeploy.apis import torch2onnx
    from mmdeploy.backend.sdk.export_info import export2SDK
    from mmdeploy.utils import get_input_shape, get_ir_config

    from parc_mm.apis.tasks import build_model
    dcfg, mcfg = _configs(deploy_cfg, model_cfg)
    model = build_model(mcfg.copy())
    check_static(dcfg, model)
    if checkpoint is not None:
        from parc_mm.apis.runner import check_checkpoint_fits
        from parc_mm.utils.checkpoint import verify_checkpoint
        verify_checkpoint(checkpoint)
        check_checkpoint_fits(model, checkpoint, False)
    del model
    os.makedirs(work_dir, exist_ok=True)
    save_file = get_ir_config(dcfg).get('save_file', FP32_FILE)
    torch2onnx(img, work_dir, save_file, deploy_cfg, model_cfg, checkpoint, device=device)
    export2SDK(dcfg, mcfg, work_dir, pth=checkpoint, device=device)
    onnx_file = osp.join(work_dir, save_file)
    run = Deployed(deploy_cfg, model_cfg, device)
    torch_model = run.pytorch_model(checkpoint)
    backend = run.backend_model(onnx_file)
    checks = {}
    for im in [img, *test_imgs]:
        checks[im] = compare_predictions(run.task, run.predict(torch_model, im),
                                         run.predict(backend, im))
    report = _onnx_report(onnx_file)
    record = dict(task=run.task, deploy_config=deploy_cfg, model_config=model_cfg,
                  checkpoint=checkpoint, onnx=save_file,
                  input_shape_wh=list(get_input_shape(dcfg) or []),
                  backend='onnxruntime', vs_pytorch=checks, ops=report['ops'],
                  non_portable=report['non_portable'], torch=torch.__version__)
    _write_record(work_dir, record)
    return record


def _write_record(work_dir: str, record: dict) -> None:
    path = osp.join(work_dir, RECORD_FILE)
    old = {}
    if osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
    old.update(record)
    with open(path, 'w') as f:
        json.dump(old, f, indent=1)


def read_record(work_dir: str) -> dict:
    path = osp.join(work_dir, RECORD_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{work_dir} has no {RECORD_FILE}: deploy with '
                                'tools/deploy/deploy.py first')
    with open(path) as f:
        return json.load(f)


def is_deploy_dir(path: Optional[str]) -> bool:
    """Whether ``path`` is a folder tools/deploy/deploy.py (or mmdeploy) wrote."""
    return bool(path) and osp.isdir(path) and osp.isfile(osp.join(path, 'detail.json')) \
        and osp.isfile(osp.join(path, 'pipeline.json'))


def deploy_cfg_of(work_dir: str):
    """The deploy config a deploy folder was made with (mmdeploy's ``detail.json``)."""
    from mmengine.config import Config
    with open(osp.join(work_dir, 'detail.json')) as f:
        d = json.load(f)
    return Config(dict(onnx_config=d['onnx_config'], backend_config=d['backend_config'],
                       codebase_config=d['codebase_config']))


# --------------------------------------------------------------------------------------
# accuracy on the test set, PyTorch vs ONNX Runtime (fp32 / int8)
# --------------------------------------------------------------------------------------
def evaluate(deploy_cfg, model_cfg, model_file: str, work_dir: str,
             device: str = 'cpu') -> Dict[str, float]:
    """The config's test metrics for ``model_file`` (a checkpoint, or an ONNX file run in
    ONNX Runtime), with the test pipeline mmdeploy feeds the static graph."""
    run = Deployed(deploy_cfg, model_cfg, device)
    model = run.backend_model(model_file) if model_file.endswith('.onnx') else \
        run.pytorch_model(model_file)
    mcfg = run.processed_model_cfg()
    loader = mcfg.test_dataloader
    loader.batch_size = 1  # the static graphs have batch 1 (as mmdeploy's tools/test.py)
    runner = run.processor.build_test_runner(model, work_dir, dataloader=loader)
    return {k: float(v) for k, v in runner.test().items()}


# --------------------------------------------------------------------------------------
# int8: ONNX Runtime's static quantization (QDQ), calibrated on a folder of images
# --------------------------------------------------------------------------------------
class _Calibration:
    """ONNX Runtime's CalibrationDataReader over images, preprocessed as at inference."""

    def __init__(self, run: Deployed, model, images: List[str], input_name: str) -> None:
        self.run, self.model, self.images, self.name = run, model, list(images), input_name

    def get_next(self):
        if not self.images:
            return None
        data = self.run.inputs(self.images.pop(0))
        batch = self.model.data_preprocessor(data, False)['inputs']
        return {self.name: batch.float().numpy()}

    def rewind(self):  # (older ONNX Runtime releases)
        pass


def quantize_int8(work_dir: str, calib_images: List[str], deploy_cfg, model_cfg,
                  device: str = 'cpu') -> dict:
    """``work_dir/end2end_int8.onnx``: static int8 (QDQ, per-channel weights, the
    network's Conv / MatMul / Gemm), calibrated on ``calib_images``; returns the graph check
    (how many Conv / MatMul nodes got quantized inputs, ParC's global depthwise convs among
    them)."""
    if not calib_images:
        raise ValueError('int8 needs calibration images: --int8 CALIB_DIR (a folder of '
                         'images like the ones the model will see, ~20-200)')
    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    run = Deployed(deploy_cfg, model_cfg, device)
    fp32 = osp.join(work_dir, FP32_FILE)
    pre = osp.join(work_dir, 'end2end_preprocessed.onnx')
    quant_pre_process(fp32, pre, skip_symbolic_shape=True)
    graph = onnx.load(pre)
    input_name = graph.graph.input[0].name
    backend = run.backend_model(fp32)
    out = osp.join(work_dir, INT8_FILE)
    quantize_static(
        pre, out, _Calibration(run, backend, calib_images, input_name),
        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8, op_types_to_quantize=['Conv', 'MatMul', 'Gemm'],
        calibrate_method=CalibrationMethod.MinMax,
        extra_options=dict(ActivationSymmetric=True))
    os.remove(pre)
    check = int8_graph_check(out)
    _write_record(work_dir, dict(int8=dict(onnx=INT8_FILE, calibration_images=len(calib_images),
                                           **check)))
    return check


def _consts(model) -> Dict[str, np.ndarray]:
    from onnx import numpy_helper
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def int8_graph_check(path: str) -> dict:
    """Which Conv / MatMul nodes of a QDQ graph take quantized (DequantizeLinear) inputs,
    and how many of them are ParC's global depthwise convs (groups = channels, a kernel
    longer than 3 along one axis only); ``float_parc`` lists ParC convs left in float."""
    import onnx
    model = onnx.load(path)
    producers = {o: n for n in model.graph.node for o in n.output}
    consts = _consts(model)

    def dequantized(name: str) -> bool:
        n = producers.get(name)
        return n is not None and n.op_type == 'DequantizeLinear'

    def weight_shape(name: str):
        n = producers.get(name)
        if n is not None and n.op_type == 'DequantizeLinear':
            name = n.input[0]
        return consts[name].shape if name in consts else None

    counts = dict(conv=0, conv_int8=0, matmul=0, matmul_int8=0, parc=0, parc_int8=0)
    float_parc = []
    for n in model.graph.node:
        if n.op_type not in ('Conv', 'MatMul', 'Gemm'):
            continue
        key = 'conv' if n.op_type == 'Conv' else 'matmul'
        q = all(dequantized(i) for i in n.input[:2])
        counts[key] += 1
        counts[key + '_int8'] += int(q)
        if n.op_type == 'Conv':
            groups = next((a.i for a in n.attribute if a.name == 'group'), 1)
            ws = weight_shape(n.input[1])
            if ws is not None and len(ws) == 4 and groups > 1 and ws[1] == 1 and \
                    max(ws[2], ws[3]) > 3 and min(ws[2], ws[3]) == 1:
                counts['parc'] += 1
                counts['parc_int8'] += int(q)
                if not q:
                    float_parc.append(n.name)
    return dict(counts, float_parc=float_parc)


__all__ = ['Deployed', 'adaptive_avg_pool2d__exact', 'adaptive_pool_matrix', 'check_static',
           'compare_predictions', 'deploy', 'deploy_cfg_of', 'evaluate', 'int8_graph_check',
           'is_deploy_dir', 'quantize_int8', 'read_record']

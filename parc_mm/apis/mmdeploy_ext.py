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
  matrix per axis (two MatMuls), or the ``avg_pool2d`` when it is exact;
- registers mmdet's own RPN proposal selection for the ONNX Runtime backend (NMS per level
  with no score threshold, as mmdet; mmdeploy's runs one NMS across levels) and R-CNN box
  selection (each class with its own box; mmdeploy's gives a RoI's every class the box of
  its best one), so a deployed two-stage detector gives the PyTorch model's boxes.

ParC layers need no preparation: in an ONNX export by tracing (mmdeploy's) their kernels and
position embeddings, resized to the traced size, enter the graph as constants, and ``auto``
takes its export form (:func:`parc_mm.ops.config.export_impl`); the model mmdeploy traces is
not modified.
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


@FUNCTION_REWRITER.register_rewriter(
    func_name='mmdet.models.dense_heads.rpn_head.RPNHead.predict_by_feat',
    backend='onnxruntime')
def rpn_head__predict_by_feat__per_level(self, cls_scores, bbox_preds, score_factors=None,
                                         batch_img_metas=None, cfg=None, rescale=False,
                                         with_nms=True, **kwargs):
    """mmdet's RPN proposals for static shapes: the top ``nms_pre`` anchors of each level,
    NMS within each level (mmdet's ``batched_nms`` by level: boxes shifted apart per level,
    one NMS), no score threshold, the best ``max_per_img`` kept, boxes narrower than
    ``min_bbox_size`` dropped. mmdeploy's default rewrite runs one NMS across the levels with
    the deploy config's score threshold: other proposals, and so other boxes and masks
    than the PyTorch model's."""
    from mmdeploy.utils import is_dynamic_shape
    ctx = FUNCTION_REWRITER.get_context()
    cfg = self.test_cfg if cfg is None else cfg
    if not with_nms or is_dynamic_shape(ctx.cfg):
        return ctx.origin_func(self, cls_scores, bbox_preds, score_factors, batch_img_metas,
                               cfg, rescale, with_nms, **kwargs)
    n = cls_scores[0].shape[0]
    anchors = self.anchor_generator.grid_anchors([c.shape[-2:] for c in cls_scores],
                                                 device=cls_scores[0].device)
    nms_pre = cfg.get('nms_pre', -1)
    dim = self.bbox_coder.encode_size
    all_deltas, all_scores, all_anchors, all_levels = [], [], [], []
    for level, (score, delta, anchor) in enumerate(zip(cls_scores, bbox_preds, anchors)):
        score = score.permute(0, 2, 3, 1)
        score = score.reshape(n, -1).sigmoid() if self.use_sigmoid_cls else \
            score.reshape(n, -1, 2).softmax(-1)[..., 0]
        delta = delta.permute(0, 2, 3, 1).reshape(n, -1, dim)
        anchor = anchor.data.unsqueeze(0).expand(n, -1, -1)
        if 0 < nms_pre < score.shape[1]:
            score, idx = score.topk(nms_pre, dim=1)
            delta = delta.gather(1, idx.unsqueeze(-1).expand(-1, -1, dim))
            anchor = anchor.gather(1, idx.unsqueeze(-1).expand(-1, -1, anchor.shape[-1]))
        all_deltas.append(delta)
        all_scores.append(score)
        all_anchors.append(anchor)
        all_levels.append(torch.full((score.shape[1], ), level, dtype=torch.float32))
    h, w = batch_img_metas[0]['img_shape'][:2]
    boxes = self.bbox_coder.decode(torch.cat(all_anchors, 1), torch.cat(all_deltas, 1),
                                   max_shape=(h, w))
    scores = torch.cat(all_scores, 1)
    min_size = cfg.get('min_bbox_size', -1)
    if min_size >= 0:
        wh = boxes[..., 2:4] - boxes[..., 0:2]
        valid = (wh[..., 0] > min_size) & (wh[..., 1] > min_size)
        scores = scores * valid.to(scores.dtype) - (~valid).to(scores.dtype)
    dets, _ = _grouped_nms(boxes, scores, torch.cat(all_levels), (h, w), cfg.nms, 0.0,
                           cfg.max_per_img)
    return dets, torch.zeros(dets.shape[:2], dtype=torch.long)


def _grouped_nms(boxes, scores, groups, img_shape, nms_cfg, score_thr: float, keep: int):
    """mmdet's ``batched_nms`` for static shapes: NMS within each group (level, class) only,
    as one NMS over the boxes shifted apart by group (``step`` > the image size, so boxes of
    different groups never overlap); the best ``keep`` after it, unshifted, and their
    groups. ``boxes`` (N, B, 4), ``scores`` (N, B), ``groups`` (B, )."""
    from mmdeploy.mmcv.ops import multiclass_nms
    step = float(max(int(img_shape[0]), int(img_shape[1])) + 1)
    offsets = (groups.to(boxes) * step).view(1, -1, 1)
    dets, _ = multiclass_nms(
        boxes + offsets, scores.unsqueeze(-1), keep, nms_type=nms_cfg.get('type'),
        iou_threshold=nms_cfg.iou_threshold, score_threshold=score_thr, pre_top_k=-1,
        keep_top_k=keep)
    group = torch.floor(dets[..., 0:1] / step)
    return torch.cat([dets[..., :4] - group * step, dets[..., 4:]], -1), \
        group.squeeze(-1).long()


@FUNCTION_REWRITER.register_rewriter(
    func_name='mmdet.models.roi_heads.bbox_heads.bbox_head.BBoxHead.predict_by_feat',
    backend='onnxruntime')
def bbox_head__predict_by_feat__per_class(self, rois, cls_scores, bbox_preds,
                                          batch_img_metas, rcnn_test_cfg=None,
                                          rescale=False):
    """mmdet's R-CNN boxes for static shapes: each class keeps its own regressed box and NMS
    runs within each class (mmdet's ``multiclass_nms``). mmdeploy's default rewrite gives
    every class of a RoI the box of its best class (ONNX's NonMaxSuppression shares boxes
    across classes), so a RoI's second class gets a wrong box."""
    from mmdeploy.utils import is_dynamic_shape
    from mmdet.structures.bbox import get_box_tensor
    ctx = FUNCTION_REWRITER.get_context()
    if is_dynamic_shape(ctx.cfg) or bbox_preds is None or rcnn_test_cfg is None or \
            rcnn_test_cfg.get('nms') is None:
        return ctx.origin_func(self, rois, cls_scores, bbox_preds, batch_img_metas,
                               rcnn_test_cfg, rescale)
    img_shape = batch_img_metas[0]['img_shape']
    scores = self.loss_cls.get_activation(cls_scores) if self.custom_cls_channels else \
        F.softmax(cls_scores, dim=-1)
    c = self.num_classes
    scores = scores[..., :c]
    n, r = scores.shape[:2]
    boxes = get_box_tensor(self.bbox_coder.decode(rois[..., 1:], bbox_preds,
                                                  max_shape=img_shape))
    size = self.bbox_coder.encode_size
    boxes = boxes.reshape(n, r, -1, size).expand(n, r, c, size).reshape(n, r * c, size)
    labels = torch.arange(c, dtype=torch.float32).repeat(r)
    return _grouped_nms(boxes, scores.reshape(n, r * c), labels, img_shape,
                        rcnn_test_cfg.nms, rcnn_test_cfg.score_thr, rcnn_test_cfg.max_per_img)


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

    def __init__(self, deploy_cfg, model_cfg, device: str = 'cpu',
                 info: Optional[dict] = None) -> None:
        from mmdeploy.apis.utils import build_task_processor
        self.deploy_cfg, self.model_cfg = _configs(deploy_cfg, model_cfg)
        self.task = task_of_deploy(self.deploy_cfg)
        self.processor = build_task_processor(self.model_cfg, self.deploy_cfg, device)
        self.device = device
        self.info = info or {}  # a deploy folder's detail.json (from_folder)

    @classmethod
    def from_folder(cls, folder: str, model_cfg, device: str = 'cpu') -> 'Deployed':
        """The deploy config a folder was made with (mmdeploy's ``detail.json``)."""
        from mmengine.config import Config
        with open(osp.join(folder, 'detail.json')) as f:
            d = json.load(f)
        cfg = Config(dict(onnx_config=d['onnx_config'], backend_config=d['backend_config'],
                          codebase_config=d['codebase_config']))
        return cls(cfg, model_cfg, device, info=d)

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
        from mmengine.config import Config
        mod = importlib.import_module(type(self.processor).__module__)
        cfg = mod.process_model_config(self.model_cfg, list(imgs),
                                       get_input_shape(self.deploy_cfg))
        if not isinstance(cfg, Config):  # (mmpretrain's returns a ConfigDict)
            cfg = Config(cfg.to_dict(), filename=self.model_cfg.filename)
        return cfg


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
            union = (mr | mg).flatten(1).sum(1).float()
            # two empty masks agree exactly (an untrained head's masks may all be empty)
            miou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
            out['min_mask_iou'] = float(miou[best > 0.99].min()) \
                if bool((best > 0.99).any()) else 0.0
    else:
        out.update(matched=0)
    return out


def _onnx_report(path: str) -> dict:
    from parc_mm.ops.export import onnx_op_report
    return onnx_op_report(path)


def deploy(deploy_cfg: str, model_cfg: str, checkpoint: Optional[str], img: str,
           work_dir: str, test_imgs: Sequence[str] = (), device: str = 'cpu',
           score_thr: float = 0.3) -> dict:
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
    onnx_file = osp.join(work_dir, save_file)
    _check_traced_size(onnx_file, dcfg, img)
    export2SDK(dcfg, _sdk_model_cfg(dcfg, mcfg), work_dir, pth=checkpoint, device=device)
    run = Deployed(deploy_cfg, model_cfg, device)
    torch_model = run.pytorch_model(checkpoint)
    backend = run.backend_model(onnx_file)
    checks = {}
    for im in [img, *test_imgs]:
        checks[im] = compare_predictions(run.task, run.predict(torch_model, im),
                                         run.predict(backend, im), score_thr)
    report = _onnx_report(onnx_file)
    from parc_mm.apis.deploy import RANDOM_INIT
    from parc_mm.utils.fileio import sha256_file
    record = dict(task=run.task, deploy_config=deploy_cfg, model_config=model_cfg,
                  checkpoint=checkpoint, onnx=save_file,
                  checkpoint_sha256=sha256_file(checkpoint) if checkpoint else RANDOM_INIT,
                  input_shape_wh=list(get_input_shape(dcfg) or []),
                  backend='onnxruntime', vs_pytorch=checks, ops=report['ops'],
                  non_portable=report['non_portable'], torch=torch.__version__)
    _write_record(work_dir, record, fresh=True)
    return record


def _check_traced_size(onnx_file: str, dcfg, img: str) -> None:
    """The graph mmdeploy traced must have the deploy config's static input size: a test
    pipeline that does not resize passes the trace image's own size through."""
    from mmdeploy.utils import get_input_shape

    from parc_mm.ops.export import onnx_input
    shape = get_input_shape(dcfg)
    if not shape:
        return
    got = onnx_input(onnx_file)[1]
    want = [int(shape[1]), int(shape[0])]  # (W, H) in the deploy config
    if got[-2:] != want:
        raise ValueError(
            f'the graph was traced at {got[-2]}x{got[-1]} (the size {img} reaches the network '
            f'with the model config\'s test pipeline), but the deploy config is static at '
            f'{want[0]}x{want[1]}: trace with an image of that size, give the model config a test '
            'pipeline that resizes to it, or use a deploy config of the traced size. Nothing '
            'was written.')


def _sdk_model_cfg(deploy_cfg, model_cfg):
    """The model config mmdeploy's SDK files describe. mmdeploy's segmentation SDK export
    requires a ``Resize`` right after the image loading; a test pipeline without one (images
    already at the network's size, as the demo's) gets the static input size written as
    that step: what the graph needs anyway."""
    from mmdeploy.utils import get_input_shape
    pipeline = model_cfg.get('test_pipeline') or []
    shape = get_input_shape(deploy_cfg)
    if task_of_deploy(deploy_cfg) != 'seg' or shape is None or len(pipeline) < 2 or \
            any(t.get('type') == 'Resize' for t in pipeline):
        return model_cfg
    cfg = model_cfg.copy()
    cfg.test_pipeline = [pipeline[0], dict(type='Resize', scale=tuple(shape),
                                           keep_ratio=False), *pipeline[1:]]
    return cfg


def _write_record(work_dir: str, record: dict, fresh: bool = False) -> None:
    """Add to (``fresh``: start) the folder's ``parc_deploy.json``."""
    path = osp.join(work_dir, RECORD_FILE)
    old = {}
    if osp.isfile(path) and not fresh:
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
def quantize_int8(work_dir: str, calib_images: List[str], deploy_cfg, model_cfg,
                  device: str = 'cpu') -> dict:
    """``work_dir/end2end_int8.onnx``: static int8 (:func:`parc_mm.apis.onnx_runtime.
    quantize_qdq`), calibrated on ``calib_images`` preprocessed as at inference; returns the
    graph check (how many Conv / MatMul nodes got quantized inputs, ParC's layers among
    them)."""
    if not calib_images:
        raise ValueError('int8 needs calibration images: --int8 CALIB_DIR (a folder of '
                         'images like the ones the model will see, ~20-200)')
    from parc_mm.apis.onnx_runtime import quantize_qdq
    from parc_mm.ops.export import onnx_input
    run = Deployed(deploy_cfg, model_cfg, device)
    fp32 = osp.join(work_dir, FP32_FILE)
    input_name, want = onnx_input(fp32)
    # the backend model's preprocessor: the one inference feeds the graph with (calibrated on
    # mmdeploy's build_data_preprocessor() instead, the demo classifier scored 20.42 in int8:
    # it preprocesses differently)
    preprocessor = run.backend_model(fp32).data_preprocessor

    from parc_mm.apis.images import check_image
    used, skipped = [], []
    for img in calib_images:  # every image checked before calibration starts
        problem = check_image(img)
        if problem is None:
            try:
                batch = preprocessor(run.inputs(img), False)['inputs']
            except Exception as e:  # noqa: BLE001 - one bad image must not stop the rest
                problem = f'cannot be preprocessed ({type(e).__name__}: {e})'
            else:
                if list(batch.shape) != want:
                    problem = (f'gives a {list(batch.shape)} input, the graph takes {want} '
                               "(the test pipeline does not resize it to the deploy size)")
        if problem is None:
            used.append(batch.float().numpy())
        else:
            skipped.append(dict(image=img, reason=problem))
    for s in skipped:
        from mmengine.logging import print_log
        print_log(f'int8 calibration: skipping {s["image"]}: it {s["reason"]}',
                  logger='current', level=30)
    if not used:
        raise ValueError(f'int8: none of the {len(calib_images)} calibration images can be used '
                         f'(e.g. {skipped[0]["image"]}: it {skipped[0]["reason"]})')
    out = quantize_qdq(fp32, osp.join(work_dir, INT8_FILE),
                       ({input_name: b} for b in used))
    check = int8_graph_check(out)
    _write_record(work_dir, dict(int8=dict(onnx=INT8_FILE, calibration_images=len(used),
                                           skipped_images=skipped, **check)))
    return check


def _consts(model) -> Dict[str, np.ndarray]:
    from onnx import numpy_helper
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def int8_graph_check(path: str) -> dict:
    """Which Conv / MatMul nodes of a QDQ graph take quantized (DequantizeLinear) inputs,
    and how many of them are ParC's global depthwise convs (a Conv with groups = channels
    and a kernel longer than 3 along one axis only, or a MatMul with a constant (C, n, n)
    circulant matrix); ``float_parc`` lists ParC layers left in float."""
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
            parc = ws is not None and len(ws) == 4 and groups > 1 and ws[1] == 1 and \
                max(ws[2], ws[3]) > 3 and min(ws[2], ws[3]) == 1
        else:  # the circulant GEMM form: a (C, n, n) constant on either side
            shapes = [weight_shape(i) for i in n.input[:2]]
            parc = any(ws is not None and len(ws) == 3 and ws[1] == ws[2] > 1 and ws[0] > 1
                       for ws in shapes)
        if parc:
            counts['parc'] += 1
            counts['parc_int8'] += int(q)
            if not q:
                float_parc.append(n.name)
    return dict(counts, float_parc=float_parc)


__all__ = ['Deployed', 'adaptive_avg_pool2d__exact', 'adaptive_pool_matrix', 'check_static',
           'compare_predictions', 'deploy', 'evaluate', 'int8_graph_check',
           'quantize_int8', 'read_record']

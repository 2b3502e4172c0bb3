"""mmdeploy rewriters for ParC models' networks, registered per backend.

- an exact ``adaptive_avg_pool2d``: mmdeploy's default rewrite is an ``avg_pool2d`` with kernel
  = stride = floor(size / output), wrong whenever the output does not divide the input
  (UperNet's pyramid pooling); here one constant averaging matrix per axis (two MatMuls), or
  the ``avg_pool2d`` when it is exact;
- mmdet's own RPN proposal selection (NMS per level with no score threshold; mmdeploy's runs
  one NMS across levels) and R-CNN box selection (each class with its own box; mmdeploy's
  gives a RoI's every class the box of its best one), so a deployed two-stage detector gives
  the PyTorch model's boxes.

:data:`BACKENDS` lists the backends they are registered for (the ONNX export they rewrite is
the same for every backend that starts from ONNX): a new backend is one more entry.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from mmdeploy.core import FUNCTION_REWRITER
from torch.nn.modules.utils import _pair

BACKENDS = ('onnxruntime', )


def adaptive_pool_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` matrix of PyTorch's adaptive average pooling along one axis: row i
    averages ``[floor(i n_in / n_out), ceil((i + 1) n_in / n_out))``."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


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


# (function, the upstream function it rewrites), registered for every backend above
_REWRITES = (
    (adaptive_avg_pool2d__exact, 'torch.nn.functional.adaptive_avg_pool2d'),
    (rpn_head__predict_by_feat__per_level,
     'mmdet.models.dense_heads.rpn_head.RPNHead.predict_by_feat'),
    (bbox_head__predict_by_feat__per_class,
     'mmdet.models.roi_heads.bbox_heads.bbox_head.BBoxHead.predict_by_feat'),
)
for _fn, _name in _REWRITES:
    for _backend in BACKENDS:
        FUNCTION_REWRITER.register_rewriter(func_name=_name, backend=_backend)(_fn)

__all__ = ['BACKENDS', 'adaptive_avg_pool2d__exact', 'adaptive_pool_matrix',
           'bbox_head__predict_by_feat__per_class', 'rpn_head__predict_by_feat__per_level']

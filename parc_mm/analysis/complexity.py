"""Params / FLOPs (mmengine's FlopAnalyzer, ParC-aware) and effective receptive fields.

FLOPs follow mmengine's convention (one multiply-add = 1); fused attention
(``scaled_dot_product_attention``, mmpretrain's ViT) is counted as its two matrix products.
ParC costs what its implementation computes: ``direct`` a conv with an n-tap kernel
(counted by mmengine), ``gemm`` the circulant matmul (counted by mmengine), ``fft`` rfft /
irfft and the complex spectrum product, which mmengine does not know: we count a real FFT
of length n as ``n/2 * log2(n)`` complex multiply-adds = ``2 n log2 n`` real ones, and a
complex product as 4 multiply-adds per element.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn


def _shape(v) -> List[int]:
    t = v.type()
    return list(t.sizes()) if hasattr(t, 'sizes') and t.sizes() is not None else []


def _fft_handle(inputs: List[Any], outputs: List[Any]) -> int:
    # aten::fft_rfft(self, n, dim, norm) / aten::fft_irfft(self, n, dim, norm)
    in_shape = _shape(inputs[0])
    out_shape = _shape(outputs[0])
    dim = inputs[2].toIValue()
    n_val = inputs[1].toIValue()
    # the signal length is the real side: the input of rfft, the output of irfft
    n = int(n_val) if n_val is not None else max(in_shape[dim], out_shape[dim])
    full = max(in_shape, out_shape, key=lambda s: int(np.prod(s)) if s else 0)
    signals = int(np.prod(full)) // max(full[dim], 1) if full else 0
    return int(signals * 2 * n * max(math.log2(max(n, 2)), 1))


def _complex_mul_handle(inputs: List[Any], outputs: List[Any]) -> int:
    t = outputs[0].type()
    if 'Complex' not in str(getattr(t, 'scalarType', lambda: '')()):
        return 0  # real element-wise products are ignored, as mmengine does
    return 4 * int(np.prod(_shape(outputs[0])))


def _free(inputs: List[Any], outputs: List[Any]) -> int:
    return 0


def _sdpa_handle(inputs: List[Any], outputs: List[Any]) -> int:
    # aten::scaled_dot_product_attention(q (..., L, E), k (..., S, E), v (..., S, Ev)):
    # QK^T and the weighted sum of V, which mmengine does not count (attention would look
    # free next to the ParC mixer that replaces it)
    q, k, v = (_shape(i) for i in inputs[:3])
    if not (q and k and v):
        return 0
    batch = int(np.prod(q[:-2]))
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


PARC_HANDLES = {
    'aten::scaled_dot_product_attention': _sdpa_handle,
    'aten::_conj': _free,  # a lazy conjugation flag, no arithmetic
    'aten::fft_rfft': _fft_handle,
    'aten::fft_irfft': _fft_handle,
    'aten::mul': _complex_mul_handle,
}


class _TensorForward(nn.Module):
    """Wrap a library model so that ``forward(x)`` is its tensor-mode forward."""

    def __init__(self, model: nn.Module, task: str, hw: Tuple[int, int]):
        super().__init__()
        self.model = model
        self.task = task
        self.hw = hw

    def forward(self, x):
        if self.task == 'det':
            from mmdet.structures import DetDataSample
            h, w = self.hw
            ds = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w), batch_input_shape=(h, w),
                                             scale_factor=(1.0, 1.0)))
            return self.model._forward(x, [ds])
        return self.model(x, mode='tensor')


def complexity(model: nn.Module, shape: Tuple[int, int, int], task: str = 'cls'
               ) -> Dict[str, float]:
    """Params and FLOPs (ParC-aware) of a library model (or a plain module) at C x H x W."""
    from mmengine.analysis import FlopAnalyzer, parameter_count
    model = model.eval()
    wrapped = _TensorForward(model, task, shape[1:]) if task in ('det', 'seg', 'cls') and \
        hasattr(model, 'data_preprocessor') else model
    x = torch.zeros(1, *shape)
    fa = FlopAnalyzer(wrapped, (x, ))
    fa.set_op_handle(**PARC_HANDLES)
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    with torch.no_grad():
        flops = fa.total()
        by_module = fa.by_module()
    from parc_mm.models.layers import ParCConv2d
    prefix = 'model.' if wrapped is not model else ''
    parc = sum(by_module.get(prefix + n, 0) for n, m in model.named_modules()
               if isinstance(m, ParCConv2d))
    return dict(params=float(parameter_count(model)['']), flops=float(flops),
                parc_flops=float(parc))


def build_from_config(cfg_path: str, cfg_options: Optional[dict] = None):
    """(model, task, cfg) from a config of any of the three libraries (no pretrained
    downloads, SyncBN -> BN)."""
    from parc_mm.apis.tasks import build_model, load_config, task_of
    cfg = load_config(cfg_path, cfg_options)
    return build_model(cfg), task_of(cfg), cfg


# --- effective receptive field ---------------------------------------------------------

def erf_map(backbone: nn.Module, images: Sequence[torch.Tensor], stage: int = -1
            ) -> np.ndarray:
    """Mean |d (centre of stage output, rectified and summed over channels) / d input| over
    ``images`` (RepLKNet's ERF), summed over input channels: an (H, W) array. The ReLU is
    RepLKNet's and matters: a plain channel sum of a channel-normalised output (ConvNeXt's
    LayerNorm at every ``out_indices`` stage) is constant, so its gradient is zero."""
    backbone.eval()
    acc = None
    for img in images:
        x = img.unsqueeze(0).clone().requires_grad_(True)
        outs = backbone(x)
        out = outs[stage] if isinstance(outs, (list, tuple)) else outs
        if out.dim() != 4:
            raise ValueError(f'ERF needs a spatial (B, C, H, W) output, got {tuple(out.shape)} '
                             f'from output {stage}: the backbone pools it (e.g. '
                             'gap_before_final_norm=True); choose another --stage or keep '
                             'the map')
        h, w = out.shape[-2:]
        torch.relu(out[:, :, h // 2, w // 2]).sum().backward()
        g = x.grad.detach().abs().sum(1)[0].numpy()
        acc = g if acc is None else acc + g
    return acc / len(images)


def erf_areas(m: np.ndarray, ratios=(0.2, 0.5, 0.99)) -> Dict[float, float]:
    """For each ratio t: the area fraction of the smallest centred square holding t of the
    total contribution (RepLKNet's 'high-contribution area ratio')."""
    h, w = m.shape
    cy, cx = h // 2, w // 2
    total = m.sum()
    out = {}
    for t in ratios:
        for r in range(0, max(h, w)):
            y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, h), max(cx - r, 0), min(cx + r + 1, w)
            if m[y0:y1, x0:x1].sum() >= t * total:
                out[t] = (y1 - y0) * (x1 - x0) / (h * w)
                break
        else:
            out[t] = 1.0
    return out

"""Rank-4 forms for runtimes whose tensors are at most 4-D (ncnn).

* :func:`rank4_unfold`: the patch merging of Swin-like models (``nn.Unfold`` with kernel =
  stride) exports as Gathers on 6-D tensors, which pnnx cannot map to ncnn layers. The same
  data movement through 4-D reshapes and transposes; exact. The exporter applies it to every
  model it exports for such a runtime (ParC-Swin runs in ncnn through it).
* :func:`rank4_attention`: mmpretrain's ``MultiheadAttention`` and Swin's ``WindowMSA`` split
  q, k and v through a 5-D tensor (``reshape(B, N, 3, heads, dim).permute(2, 0, 3, 1, 4)``),
  Swin adds its shift mask through a 5-D view and partitions windows through 6-D ones: the
  attention baselines of the deployment claim (DeiT-S, MobileViT-S, Swin-T) would not run in
  ncnn, and ParC could not be compared with them there. The same computations through 4-D
  tensors (q, k, v sliced from the projection; the mask broadcast over a merged window x head
  axis; windows cut by two 4-D reshapes). The deployment benchmark applies it to the
  baselines it exports for such a runtime; ParC models have no such attention.
"""
from __future__ import annotations

import types

import torch
import torch.nn as nn


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _forward(self, x: torch.Tensor) -> torch.Tensor:
    b, n, _ = x.shape
    c, heads = self.embed_dims, self.num_heads
    qkv = self.qkv(x)  # (B, N, 3C): q, k, v in this order, each (heads, dims) head-major
    q, k, v = (qkv[:, :, i * c:(i + 1) * c].reshape(b, n, heads, self.head_dims)
               .transpose(1, 2) for i in range(3))  # (B, heads, N, dims)
    x = self.scaled_dot_product_attention(q, k, v, dropout_p=0.)
    x = x.transpose(1, 2).reshape(b, n, c)
    x = self.proj(x)
    return self.out_drop(self.gamma1(self.proj_drop(x)))


class Rank4Unfold(nn.Module):
    """``nn.Unfold(kernel_size=k, stride=k)`` (no padding, no dilation) through tensors of
    rank 4 at most; the same output ``(B, C*kh*kw, oh*ow)`` in the same channel order
    (``c*kh*kw + i*kw + j``). Keeps the Unfold's attributes, which patch merging reads."""

    def __init__(self, unfold: nn.Unfold):
        super().__init__()
        self.kernel_size, self.stride = _pair(unfold.kernel_size), _pair(unfold.stride)
        self.padding, self.dilation = _pair(unfold.padding), _pair(unfold.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        kh, kw = self.kernel_size
        oh, ow = h // kh, w // kw
        x = x[:, :, :oh * kh, :ow * kw]  # (what Unfold leaves out of a partial window)
        x = x.reshape(b * c * oh, kh, ow, kw).permute(0, 1, 3, 2)  # (bc*oh, kh, kw, ow)
        x = x.reshape(b * c, oh, kh * kw, ow).permute(0, 2, 1, 3)  # (bc, kh*kw, oh, ow)
        return x.reshape(b, c * kh * kw, oh * ow)


def _window_forward(self, x: torch.Tensor, mask=None) -> torch.Tensor:
    b, n, c = x.shape
    heads = self.num_heads
    qkv = self.qkv(x)
    q, k, v = (qkv[:, :, i * c:(i + 1) * c].reshape(b, n, heads, c // heads).transpose(1, 2)
               for i in range(3))  # (B*nW, heads, N, dims)
    attn = (q * self.scale) @ k.transpose(-2, -1)
    bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(
        n, n, -1).permute(2, 0, 1)  # (heads, N, N): parameters only, a constant of the graph
    attn = attn + bias.unsqueeze(0)
    if mask is not None:  # (nW, N, N), the same for every head: one merged (nW*heads) axis
        nw = mask.shape[0]
        mask = mask.unsqueeze(1).expand(nw, heads, n, n).reshape(1, nw * heads, n, n)
        attn = (attn.reshape(b // nw, nw * heads, n, n) + mask).reshape(b, heads, n, n)
    attn = self.softmax(attn)
    x = (attn @ v).transpose(1, 2).reshape(b, n, c)
    return self.proj_drop(self.proj(x))


def _window_partition(x: torch.Tensor, window_size: int) -> torch.Tensor:
    b, h, w, c = x.shape
    ws = window_size
    x = x.reshape(b * h // ws, ws, w // ws, ws * c).permute(0, 2, 1, 3)
    return x.reshape(-1, ws, ws, c)


def _window_reverse(windows: torch.Tensor, h: int, w: int, window_size: int) -> torch.Tensor:
    ws, c = window_size, windows.shape[-1]
    b = windows.shape[0] // ((h // ws) * (w // ws))
    x = windows.reshape(b * h // ws, w // ws, ws, ws * c).permute(0, 2, 1, 3)
    return x.reshape(b, h, w, c)


def _attn_mask(hw_shape, window_size: int, shift_size: int, device=None):
    """Swin's shift mask, built outside an ONNX trace: a constant of the graph (traced, its
    slice assignments become ScatterND over 5-D indices)."""
    import contextlib

    from mmpretrain.models.utils.attention import ShiftWindowMSA

    from parc_mm.ops.tracing import tracing_onnx, untraced
    with untraced() if tracing_onnx() else contextlib.nullcontext():
        return ShiftWindowMSA.get_attn_mask(hw_shape, window_size, shift_size, device)


def rank4_unfold(model: nn.Module) -> int:
    """Replace every ``nn.Unfold`` of ``model`` whose kernel equals its stride (no padding,
    no dilation: patch merging) by :class:`Rank4Unfold`; returns how many. Others are left
    as they are (and their export is refused by ncnn's converter, naming the op)."""
    swaps = [(parent, name, child) for parent in model.modules()
             for name, child in parent.named_children()
             if type(child) is nn.Unfold and _pair(child.kernel_size) == _pair(child.stride)
             and _pair(child.padding) == (0, 0) and _pair(child.dilation) == (1, 1)]
    for parent, name, child in swaps:
        setattr(parent, name, Rank4Unfold(child))
    return len(swaps)


def rank4_attention(model: nn.Module) -> int:
    """Give every mmpretrain ``MultiheadAttention``, ``WindowMSA`` and ``ShiftWindowMSA`` of
    ``model`` (an eval-mode model to be exported) the rank-4 form; returns how many layers.
    Refused for layers it does not cover (``v_shortcut``) and in training mode."""
    from mmpretrain.models.utils.attention import MultiheadAttention, ShiftWindowMSA, WindowMSA
    count = 0
    for name, m in model.named_modules():
        if type(m) not in (MultiheadAttention, WindowMSA, ShiftWindowMSA):
            continue
        if m.training:
            raise ValueError(f'{name}: the rank-4 attention is an inference form: call '
                             'model.eval() first')
        if type(m) is MultiheadAttention:
            if m.v_shortcut:
                raise ValueError(f'{name}: the rank-4 attention covers plain multi-head '
                                 'self-attention (no v_shortcut)')
            m.forward = types.MethodType(_forward, m)
        elif type(m) is WindowMSA:
            m.forward = types.MethodType(_window_forward, m)
        else:  # (static methods: plain functions as instance attributes)
            m.window_partition, m.window_reverse = _window_partition, _window_reverse
            m.get_attn_mask = _attn_mask
        count += 1
    return count


__all__ = ['Rank4Unfold', 'rank4_attention', 'rank4_unfold']

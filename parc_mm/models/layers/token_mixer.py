"""The ParC token mixer that replaces attention in ViT-family blocks (ParC-DeiT, ParC-Swin)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from parc_mm.ops.dispatch import mixer_conv_impl, mixer_plan
from parc_mm.ops.functional import autocast_out_dtype, circular_conv
from parc_mm.ops.resize import resize_to
from parc_mm.ops.separable import (
    separable_circular_conv2d,
    separable_dtype,
    separable_spectrum,
)
from parc_mm.ops.tracing import tracing_onnx, untraced

from .parc import InferencePlanMixin, ParCConv2d, halves


class ParCTokenMixer(InferencePlanMixin, nn.Module):
    """Global ParC mixing of the tokens of a 2-D grid, a drop-in for a block's attention.

    ``(B, N, C)`` tokens on an ``(H, W)`` grid -> channels split in half: the first half runs
    ParC-H then ParC-W, the second ParC-W then ParC-H (each conv with its position embedding
    when ``use_pe``) -> concatenated -> ``proj`` (Linear C->C) -> dropout, layer scale and
    stochastic depth of the attention it replaces. Returns the residual branch (the block adds
    it to its input), as the attention did.

    Why this block: it is what ParC-Net-S does to MobileViT's transformer, where ParC takes the
    place of multi-head self-attention and the block keeps its norms and FFN. Each half runs
    the two directions one after the other (ParC-Net's ``H->W`` / ``W->H`` branches), so every
    output token sees every input token in one block, as attention does; ParC-ConvNeXt's
    parallel split (a channel sees only its row or column) needs two blocks for that, which a
    ConvNeXt with 7x7 convs around it can afford and a ViT, whose mixer is its only spatial
    operation, cannot. ``proj`` keeps the output projection of attention: the ParC convs are
    depthwise, and the projection mixes the two halves' channels before the residual as it
    mixed the heads. ParC-Net-S's BatchNorm inside the branch is not kept: the block's
    LayerNorm already normalises the mixer's input. Position embeddings follow ParC-Net-S:
    each ParC conv of a layer built with ``use_pe`` adds one (a backbone's ``pe='first'``
    gives them to the first mixer of each stage only, ParC-Net-S's choice).

    Args:
        embed_dims: token channels C (even).
        base_size: kernel / position-embedding length (int or (h, w)): the token grid at
            the training resolution; resized to the grid of every input.
        use_pe: position embeddings on the ParC convs.
        bias: a learned bias in each ParC conv.
        impl: ParC implementation (``'auto'``, ``'direct'``, ``'fft'``, ``'gemm'``).
        proj_drop: dropout after ``proj``.
        drop_path: the stochastic-depth module of the replaced attention (default: none).
        layer_scale: its layer-scale module (default: none).
    """

    def __init__(self,
                 embed_dims: int,
                 base_size: Union[int, Sequence[int]],
                 use_pe: bool = True,
                 bias: bool = True,
                 impl: str = 'auto',
                 proj_drop: float = 0.,
                 drop_path: Optional[nn.Module] = None,
                 layer_scale: Optional[nn.Module] = None) -> None:
        super().__init__()
        if embed_dims % 2:
            raise ValueError(f'ParCTokenMixer splits channels in half: embed_dims must be even, '
                             f'got {embed_dims}')
        bh, bw = (base_size, base_size) if isinstance(base_size, int) else tuple(base_size)
        half = embed_dims // 2
        self.embed_dims = embed_dims

        def conv(direction):
            return ParCConv2d(half, direction, bh if direction == 'H' else bw, use_pe=use_pe,
                              bias=bias, impl=impl)

        self.branch_hw = nn.Sequential(conv('H'), conv('W'))
        self.branch_wh = nn.Sequential(conv('W'), conv('H'))
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.layer_scale = layer_scale if layer_scale is not None else nn.Identity()
        self.drop_path = drop_path if drop_path is not None else nn.Identity()

    @classmethod
    def replacing(cls, attn: nn.Module, embed_dims: int, base_size, **kwargs
                  ) -> 'ParCTokenMixer':
        """A mixer that takes over ``attn``'s dropout, layer scale and stochastic depth
        (mmpretrain's ``MultiheadAttention`` and Swin's ``ShiftWindowMSA``)."""
        inner = getattr(attn, 'w_msa', attn)  # ShiftWindowMSA wraps a WindowMSA
        proj_drop = getattr(getattr(inner, 'proj_drop', None), 'p', 0.)
        drop_path = getattr(attn, 'out_drop', None) or getattr(attn, 'drop', None)
        layer_scale = getattr(attn, 'gamma1', None)
        if isinstance(layer_scale, nn.Identity):
            layer_scale = None
        return cls(embed_dims, base_size, proj_drop=proj_drop, drop_path=drop_path,
                   layer_scale=layer_scale, **kwargs)

    def forward(self, x: torch.Tensor, hw_shape: Tuple[int, int]) -> torch.Tensor:
        b, n, c = x.shape
        h, w = hw_shape
        if c != self.embed_dims or n != h * w:
            raise ValueError(f'ParCTokenMixer built for (B, H*W, {self.embed_dims}) tokens got '
                             f'{tuple(x.shape)} with grid {tuple(hw_shape)}')
        grid = x.transpose(1, 2).reshape(b, c, h, w)  # a view: no copy
        plan = self._plan(grid)
        if plan == 'traced':
            y = self._traced(grid)
        elif plan == 'fused':
            y = self._fused_fft(grid)
        else:
            a, z = halves(grid)
            (ha, wa), (wb, hb) = self.branch_hw, self.branch_wh
            y = torch.cat([wa(ha(a, plan), plan), hb(wb(z, plan), plan)], dim=1)
        y = self.proj(y.flatten(2).transpose(1, 2))
        return self.drop_path(self.layer_scale(self.proj_drop(y)))

    def _plan(self, grid: torch.Tensor) -> Optional[str]:
        """See :func:`parc_mm.ops.dispatch.mixer_plan`."""
        return mixer_plan(self.branch_hw[0].impl, grid.shape[2] * grid.shape[3], grid.device,
                          grid.dtype, tracing_onnx())

    def _traced(self, x: torch.Tensor) -> torch.Tensor:
        """The mixer as the exported graph holds it: one circular conv of all channels
        along H, one along W (the two branches' convs act on different axes and commute),
        plus one constant map (the position embeddings and biases pushed through the convs:
        the ``fused(0)`` of :meth:`_fused_fft`) - 2 convs and an add instead of 4 convs, 4
        embedding adds, the splits and the concat. Kernels and constant are derived from
        the parameters with tracing suspended, so they enter the graph as constants of the
        traced size (the traced graph has constant weights anyway)."""
        h, w = x.shape[2:]
        c = self.embed_dims
        with untraced():
            kh, kw = self._kernels(h, w)
            const = self._fused_fft_fresh(torch.zeros((1, c, h, w), dtype=x.dtype,
                                                      device=x.device))
            kh, kw, const = (t.detach().to(x.dtype) for t in (kh, kw, const))
        impl = self.branch_hw[0].impl
        y = circular_conv(x, kh.view(c, 1, h, 1), None, 'H', c,
                          mixer_conv_impl(impl, x.device, x.dtype, h))
        y = circular_conv(y, kw.view(c, 1, 1, w), None, 'W', c,
                          mixer_conv_impl(impl, x.device, x.dtype, w))
        return y + const

    def _fused_fft(self, x: torch.Tensor) -> torch.Tensor:
        """Both branches in one 2-D FFT (:func:`separable_circular_conv2d`): each branch is
        ``second(first(x + pe1) + b1 + pe2) + b2`` = ``second(first(x + pe1))`` (one
        separable 2-D correlation; the H and W kernels of all channels side by side) plus
        ``second(b1 + pe2) + b2``, a constant row / column per channel.

        In inference mode (:func:`parc_mm.ops.inference_mode`) the map is affine, ``S(x) +
        fused(0)``: the kernels' spectrum and that constant are kept per grid size, so a call
        is one ``rfft2`` / ``irfft2`` pair and one add."""
        cache = self._eval_cache(x)
        if cache is None:
            return self._fused_fft_fresh(x)
        cdt = separable_dtype(x, cache['kh'])
        key = (cdt, autocast_out_dtype(x, cache['kh']))
        if key not in cache:
            spec = separable_spectrum(cache['kh'], cache['kw'], cdt)
            cache[key] = spec, self._fused_fft_fresh(x.new_zeros((1, ) + x.shape[1:]))
        spec, const = cache[key]
        y = separable_circular_conv2d(x, cache['kh'], cache['kw'], spectrum=spec)
        return y.add_(const.to(y.dtype))

    def _eval_cache(self, x: torch.Tensor) -> Optional[dict]:
        """The fused path's kernels for this grid, kept in inference mode (None: off,
        training, autograd or tracing)."""
        h, w = x.shape[2:]
        params = [p for layer in (*self.branch_hw, *self.branch_wh)
                  for p in (layer.weight, layer.pe, layer.bias)]
        return self._inference_plan((h, w, x.dtype, x.device), params,
                                    lambda: dict(zip(('kh', 'kw'), self._kernels(h, w))))

    def _kernels(self, h: int, w: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(C, h)`` H kernels and ``(C, w)`` W kernels of all channels, resized: the first
        half's from ``branch_hw``, the second's from ``branch_wh``."""
        half = self.embed_dims // 2
        (ha, wa), (wb, hb) = self.branch_hw, self.branch_wh

        def kernel(layer, n):
            return resize_to(layer.weight, n, layer.direction).reshape(half, n)

        return (torch.cat([kernel(ha, h), kernel(hb, h)]),
                torch.cat([kernel(wa, w), kernel(wb, w)]))

    def _fused_fft_fresh(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        half = self.embed_dims // 2
        (ha, wa), (wb, hb) = self.branch_hw, self.branch_wh

        def expand(t):
            return t.expand(t.shape[0], half, h, w)

        kh, kw = self._kernels(h, w)
        if ha.pe is not None:
            pe = torch.cat([expand(resize_to(ha.pe, h, 'H')), expand(resize_to(wb.pe, w, 'W'))], 1)
            x = x + pe.to(x.dtype)
        y = separable_circular_conv2d(x, kh, kw)

        def constant(first, second):  # what the second conv makes of b1 + pe2
            n = h if second.direction == 'H' else w
            t = y.new_zeros((1, half) + ((n, 1) if second.direction == 'H' else (1, n)))
            if first.bias is not None:
                t = t + first.bias.view(1, half, 1, 1).to(t.dtype)
            if second.pe is not None:
                t = t + resize_to(second.pe, n, second.direction).to(t.dtype)
            return expand(circular_conv(t, resize_to(second.weight, n, second.direction),
                                        second.bias, second.direction, half, 'direct'))

        return y + torch.cat([constant(ha, wa), constant(wb, hb)], 1).to(y.dtype)

    def extra_repr(self) -> str:
        return f'{self.embed_dims}'


__all__ = ['ParCTokenMixer']

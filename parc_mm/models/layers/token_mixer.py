"""The ParC token mixer that replaces attention in ViT-family blocks (ParC-DeiT, ParC-Swin)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .parc import ParCConv2d


class ParCTokenMixer(nn.Module):
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
        a, z = torch.chunk(grid, 2, dim=1)
        y = torch.cat([self.branch_hw(a), self.branch_wh(z)], dim=1)
        y = self.proj(y.flatten(2).transpose(1, 2))
        return self.drop_path(self.layer_scale(self.proj_drop(y)))

    def extra_repr(self) -> str:
        return f'{self.embed_dims}'


def replace_attention(owner: str, stages: Sequence[Sequence[nn.Module]], dims: Sequence[int],
                      settings: dict, strides: Sequence[int]):
    """The one token-mixer swap of ParC-DeiT and ParC-Swin: the ``attn`` of each chosen block
    (``settings['blocks']``; ``'paper'`` and ``'all'``: every block) becomes a
    :class:`ParCTokenMixer` taking over its dropout, layer scale and stochastic depth.

    ``stages``: the blocks per stage (each with ``attn``), ``dims``: their widths,
    ``strides``: their token-grid strides (base sizes derive from ``img_size`` rounded up,
    as the padding patch embedding / merging do). Returns ``place_parc``'s (blocks, sizes).
    """
    from ..placement import place_parc

    def swap(i, j, block, base_size, use_pe):
        block.attn = ParCTokenMixer.replacing(block.attn, dims[i], base_size, use_pe=use_pe,
                                              bias=settings['bias'], impl=settings['impl'])

    every = [list(range(len(s))) for s in stages]
    blocks, sizes = place_parc(stages, settings, every, swap, strides, ceil=True)
    if not any(blocks):
        raise ValueError(f"{owner} with parc_cfg blocks={settings['blocks']!r} has no ParC "
                         "mixer; for the attention baseline build mmpretrain's own backbone")
    return blocks, sizes


__all__ = ['ParCTokenMixer', 'replace_attention']

"""Where ParC goes in a backbone: one declarative ``parc_cfg`` shared by every ParC backbone.

``parc_cfg`` keys (all optional)::

    blocks      'paper' (the official placement), 'all' (every block that keeps its
                resolution), 'none' (the plain baseline), or one list of block indices per
                stage (negative indices allowed)
    base_sizes  kernel / position-embedding length stored per stage: an int (square) or
                (h, w); default: the stage's feature size at ``img_size``
    img_size    the training resolution the default base sizes derive from, int or (h, w)
    pe          position embeddings: 'all' (every ParC layer), 'first' (the first ParC block
                of each stage), 'none'; True / False mean the backbone's default / 'none'
    bias        a learned bias in each ParC conv
    impl        'auto' | 'direct' | 'fft' | 'gemm'
    dense       dense (groups=1) kernels on each half instead of depthwise (ParC-ResNet50)

:func:`parc_settings` merges ``parc_cfg`` with the backbone's defaults; :func:`place_parc`
resolves the blocks, checks that each keeps its resolution and swaps the mixers;
:class:`ParCBackbone` is the template every ParC backbone built on an upstream one follows
(the family gives its stages, official placement, strides and the swap; settings, placement,
validation and re-freezing happen here once).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch.nn as nn

Size = Union[int, Tuple[int, int]]
Placement = Union[str, Sequence[Sequence[int]]]

PE_MODES = ('all', 'first', 'none')


def parc_settings(owner: str, parc_cfg: Optional[dict], defaults: dict) -> dict:
    """The complete ParC settings of a backbone (or neck).

    Args:
        owner: the class name (for messages).
        parc_cfg: the user's ``parc_cfg`` (None = defaults).
        defaults: the defaults, including every key it supports.
    """
    if parc_cfg is not None and not isinstance(parc_cfg, dict):
        raise ValueError(f'{owner} parc_cfg must be a dict of {sorted(defaults)} (e.g. '
                        f"parc_cfg=dict(blocks={parc_cfg!r})), got {type(parc_cfg).__name__} "
                        f'{parc_cfg!r}')
    cfg = dict(parc_cfg or {})
    unknown = set(cfg) - set(defaults)
    if unknown:
        raise ValueError(f'{owner} parc_cfg: unknown keys {sorted(unknown)}; it takes '
                         f'{sorted(defaults)}')
    out = {**defaults, **cfg}
    if isinstance(out.get('pe'), bool):
        out['pe'] = defaults['pe'] if out['pe'] else 'none'
    if 'pe' in out and out['pe'] not in PE_MODES:
        raise ValueError(f"{owner} parc_cfg pe must be one of {PE_MODES} (or True / False), "
                         f"got {out['pe']!r}")
    for key in ('bias', 'dense'):
        if key in out and not isinstance(out[key], bool):
            raise ValueError(f'{owner} parc_cfg {key} must be True or False, got '
                            f'{out[key]!r} ({type(out[key]).__name__}; a string such as '
                            "'False' is not a bool)")
    if 'impl' in out:
        from parc_mm.ops.dispatch import check_impl
        check_impl(out['impl'])
    if 'img_size' in out:
        check_img_size(out['img_size'])
    return out


def check_img_size(img_size: Size) -> Tuple[int, int]:
    """``img_size`` as (h, w), or a ValueError saying what it must be."""
    sizes = img_size if isinstance(img_size, (tuple, list)) else (img_size, img_size)
    if len(sizes) != 2 or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes):
        raise ValueError(f'img_size must be a positive int or (h, w) (the training resolution '
                         f'the ParC kernel lengths derive from, e.g. 224), got {img_size!r}')
    return tuple(sizes)


def _square(h: int, w: int) -> Size:
    return h if h == w else (h, w)


def derive_base_sizes(img_size: Size, strides: Sequence[int], ceil: bool = False
                      ) -> List[Size]:
    """The feature size of each stage (of the given strides) at ``img_size``: the kernel
    lengths the official code uses (224 and strides 4..32 -> [56, 28, 14, 7]). ``ceil``:
    round up, as the maps of a padded detection input do (FPN levels)."""
    h, w = check_img_size(img_size)

    def div(a, s):
        return max(1, -(-a // s) if ceil else a // s)

    return [_square(div(h, s), div(w, s)) for s in strides]


def check_base_sizes(sizes, count: int) -> List[Size]:
    """``count`` kernel lengths (int or (h, w), positive), or a ValueError."""
    def ok(v):
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (list, tuple)) or \
            len(sizes) != count or not all(
                ok(v) or (isinstance(v, (list, tuple)) and len(v) == 2 and all(map(ok, v)))
                for v in sizes):
        raise ValueError(f'parc_cfg base_sizes needs {count} positive ints (or (h, w) pairs), '
                         f'one per stage, got {sizes!r}')
    return [tuple(v) if isinstance(v, (list, tuple)) else v for v in sizes]


def resolve_blocks(spec: Placement, depths: Sequence[int],
                   paper: Sequence[Sequence[int]],
                   replaceable: Optional[Sequence[Sequence[bool]]] = None) -> List[List[int]]:
    """Block indices per stage from a placement spec (see the module docstring).

    ``replaceable[i][j]``: whether block j of stage i keeps its resolution (ParC replaces
    only those); 'all' picks exactly those, explicit indices of other blocks are refused.
    """
    n = len(depths)
    usage = (f"parc_cfg blocks must be 'paper', 'all', 'none' or a list of {n} lists of "
             f"block indices (one list per stage, e.g. {[[] for _ in range(n - 1)] + [[0]]})")
    if isinstance(spec, str):
        if spec == 'paper':
            out = [list(p) for p in paper]
        elif spec == 'all':
            out = [[j for j in range(d) if replaceable is None or replaceable[i][j]]
                   for i, d in enumerate(depths)]
        elif spec == 'none':
            out = [[] for _ in depths]
        else:
            raise ValueError(f'Unknown parc_cfg blocks {spec!r}: {usage}')
        return out
    if not isinstance(spec, (list, tuple)) or not all(
            isinstance(s, (list, tuple)) and all(
                isinstance(b, int) and not isinstance(b, bool) for b in s) for s in spec):
        raise ValueError(f'{usage}; got {spec!r}')
    if len(spec) != n:
        raise ValueError(f'parc_cfg blocks needs one list per stage ({n}), got {len(spec)}')
    out = []
    for i, (blocks, d) in enumerate(zip(spec, depths)):
        idx = []
        for b in blocks:
            if not -d <= b < d:
                raise ValueError(f'parc_cfg blocks: stage {i} has {d} blocks, index {b} is out of '
                                 'range')
            if replaceable is not None and not replaceable[i][b % d]:
                raise ValueError(f'parc_cfg blocks: stage {i} block {b % d} downsamples (or is '
                                 'dilated); ParC replaces only blocks that keep their '
                                 'resolution')
            idx.append(b % d)
        out.append(sorted(set(idx)))
    return out


def place_parc(stages: Sequence[Sequence[nn.Module]], settings: dict,
               paper: Sequence[Sequence[int]],
               swap: Callable[[int, int, nn.Module, Size, bool], None],
               strides: Optional[Sequence[int]] = None,
               replaceable: Optional[Callable[[nn.Module], bool]] = None,
               ceil: bool = False) -> Tuple[List[List[int]], List[Size]]:
    """Resolve ``settings`` (from :func:`parc_settings`) on ``stages`` and call
    ``swap(stage, block, module, base_size, use_pe)`` for every chosen block.

    Base sizes come from ``settings['base_sizes']`` or, when None, from ``img_size`` and the
    stages' ``strides`` (``ceil``: rounded up, for stems that pad, as patch embeddings do).
    Returns (blocks per stage, base size per stage). The caller
    re-freezes its frozen stages afterwards (the swapped modules are new).
    """
    depths = [len(s) for s in stages]
    rep = None if replaceable is None else [[replaceable(b) for b in s] for s in stages]
    blocks = resolve_blocks(settings['blocks'], depths, paper, rep)
    sizes = settings['base_sizes']
    if sizes is None:
        h, w = check_img_size(settings['img_size'])
        small = [i for i, chosen in enumerate(blocks) if chosen and min(h, w) < strides[i]]
        if small:
            i = small[0]
            raise ValueError(
                f'img_size {settings["img_size"]} is smaller than the stride {strides[i]} of '
                f'stage {i + 1}, where ParC blocks are: its kernels would have one tap (a '
                'per-channel scale, not a global convolution). img_size is the training '
                'resolution the kernel lengths derive from (e.g. 224); for a small input give '
                'parc_cfg base_sizes explicitly.')
        sizes = derive_base_sizes(settings['img_size'], strides, ceil=ceil)
    sizes = check_base_sizes(sizes, len(stages))
    for i, chosen in enumerate(blocks):
        for n, j in enumerate(chosen):
            use_pe = settings['pe'] == 'all' or (settings['pe'] == 'first' and n == 0)
            swap(i, j, stages[i][j], sizes[i], use_pe)
    return blocks, sizes


class ParCBackbone:
    """The template of a ParC backbone built on an upstream one (ConvNeXt, ResNet,
    MobileNetV2, ViT, Swin): the family's ``__init__`` checks its own arguments, calls
    :meth:`parc_configure` before building the upstream backbone and :meth:`parc_build`
    after it. The family supplies:

    * ``parc_defaults``: its ``parc_cfg`` keys and defaults (``img_size`` comes from the
      constructor);
    * :meth:`parc_stages`: the blocks per stage where ParC may go;
    * :meth:`parc_paper`: the official placement (default: every block);
    * :meth:`parc_strides`: each stage's stride (the default kernel lengths are the feature
      sizes at ``img_size``);
    * :meth:`parc_swap`: put ParC into one block;
    * optionally :meth:`parc_replaceable` (default: every block keeps its resolution),
      ``parc_ceil`` (round base sizes up, for stems that pad) and ``out_indices_type`` (the
      sequence type the upstream backbone wants for ``out_indices``).
    """
    parc_defaults: dict = {}
    parc_ceil: bool = False
    out_indices_type: Optional[type] = None

    def parc_configure(self, parc_cfg: Optional[dict], img_size: Size, kwargs: dict) -> None:
        """Validate and store ``parc_cfg`` (before the upstream ``__init__``)."""
        flat = sorted(k for k in kwargs if k.startswith('parc_'))
        if flat:  # the upstream backbone would only say "unexpected keyword argument"
            keys = ', '.join(f'{k[len("parc_"):]}=...' for k in flat)
            raise TypeError(f'{type(self).__name__} got {flat}: ParC settings go in one dict, '
                            f'parc_cfg=dict({keys}) (keys: {sorted(self.parc_defaults)})')
        self.parc_cfg = parc_settings(type(self).__name__, parc_cfg,
                                      {**self.parc_defaults, 'img_size': img_size})
        out = kwargs.get('out_indices')
        if self.out_indices_type is not None and isinstance(out, (list, tuple)):
            kwargs['out_indices'] = self.out_indices_type(out)

    def parc_build(self) -> None:
        """Swap ParC into the chosen blocks and re-freeze (after the upstream ``__init__``)."""
        stages = self.parc_stages()
        self.parc_blocks, self.parc_base_sizes = place_parc(
            stages, self.parc_cfg, self.parc_paper([len(s) for s in stages]), self.parc_swap,
            self.parc_strides(), replaceable=self.parc_replaceable, ceil=self.parc_ceil)
        self.parc_refreeze()

    def parc_stages(self) -> List[Sequence[nn.Module]]:
        raise NotImplementedError

    def parc_paper(self, depths: Sequence[int]) -> List[List[int]]:
        return [list(range(d)) for d in depths]

    def parc_strides(self) -> List[int]:
        raise NotImplementedError

    def parc_swap(self, stage: int, index: int, block: nn.Module, base_size: Size,
                  use_pe: bool) -> None:
        raise NotImplementedError

    def parc_replaceable(self, block: nn.Module) -> bool:
        return True

    def parc_refreeze(self) -> None:
        # the swapped modules are new: they may belong to frozen stages
        self._freeze_stages()

    def train(self, mode: bool = True):
        # mmpretrain's ConvNeXt / ResNet return None from train(); nn.Module returns self
        super().train(mode)
        return self


class AttentionToParC(ParCBackbone):
    """The template for transformers turned into ConvNets (ParC-ViT, ParC-Swin): the ``attn``
    of each chosen block (``'paper'`` and ``'all'``: every block) becomes a
    :class:`~parc_mm.models.layers.ParCTokenMixer` taking over its dropout, layer scale and
    stochastic depth; base sizes round up, as the padding patch embedding / merging do. The
    family supplies :meth:`parc_stages`, :meth:`parc_strides` and :meth:`parc_dims`."""
    parc_ceil = True
    parc_defaults = dict(blocks='all', base_sizes=None, pe='first', bias=True, impl='auto')

    def parc_dims(self) -> List[int]:
        raise NotImplementedError

    def parc_swap(self, stage, index, block, base_size, use_pe):
        from .layers.token_mixer import ParCTokenMixer
        block.attn = ParCTokenMixer.replacing(
            block.attn, self.parc_dims()[stage], base_size, use_pe=use_pe,
            bias=self.parc_cfg['bias'], impl=self.parc_cfg['impl'])

    def parc_build(self) -> None:
        super().parc_build()
        if not any(self.parc_blocks):
            raise ValueError(f"{type(self).__name__} with parc_cfg blocks="
                             f"{self.parc_cfg['blocks']!r} has no ParC mixer; for the attention "
                             "baseline build mmpretrain's own backbone")

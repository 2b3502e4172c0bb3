"""ParC-Swin: a Swin Transformer whose (shifted) window attention is the global ParC mixer."""
from __future__ import annotations

from typing import Optional, Union

from mmpretrain.models.backbones.swin_transformer import SwinTransformer

from parc_mm.registry import MODELS

from ..placement import AttentionToParC, Size


@MODELS.register_module()
class ParCSwin(AttentionToParC, SwinTransformer):
    """ParC-Swin: mmpretrain's :class:`SwinTransformer` with every (shifted) window attention
    replaced by :class:`~parc_mm.models.layers.ParCTokenMixer`, a pure ConvNet.

    No windows, no shifts, no relative-position tables and no padding to window multiples:
    each mixer is global over its stage's token grid, whatever the input size. The rest is
    mmpretrain's Swin: hierarchical outputs (``out_indices``, ``norm<i>``) for FPN / UperNet,
    parameter names (``stages.<i>.blocks.<j>.norm1/ffn/norm2``, ``stages.<i>.downsample``),
    ``get_layer_depth``, ``frozen_stages``, ``norm_eval``, ``with_cp``, ``init_cfg``. The
    mixer sits under ``stages.<i>.blocks.<j>.attn``.

    Args:
        arch: ``'tiny'`` (default), ``'small'``, ``'base'``, ``'large'`` or a dict with
            ``embed_dims``, ``depths``, ``num_heads``.
        img_size: training resolution; kernels are stored at each stage's grid (224 ->
            56, 28, 14, 7) unless ``parc_cfg.base_sizes`` gives one entry per stage.
        parc_cfg: ``blocks`` (``'all'`` = ``'paper'``: every block; or one list per stage
            for a hybrid keeping window attention elsewhere), ``base_sizes``, ``pe``
            (``'first'`` default: the first mixer of each stage, as ParC-Net-S; ``'all'``;
            ``'none'``), ``bias``, ``impl``.
        **kwargs: everything else :class:`mmpretrain.models.SwinTransformer` takes
            (``window_size`` only matters to blocks that keep attention).
    """

    def __init__(self,
                 arch: Union[str, dict] = 'tiny',
                 img_size: Size = 224,
                 patch_size: int = 4,
                 parc_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        if isinstance(arch, str) and arch.lower() not in self.arch_zoo:
            raise ValueError(f'Unknown ParCSwin arch {arch!r}; choose one of '
                             f'{sorted(self.arch_zoo)} or pass a dict with embed_dims, depths, '
                             'num_heads')
        if not isinstance(patch_size, int):
            raise ValueError(f'ParCSwin patch_size must be an int, got {patch_size!r}')
        self.parc_configure(parc_cfg, img_size, kwargs)
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size, **kwargs)
        self.parc_build()

    def parc_stages(self):
        return [stage.blocks for stage in self.stages]

    def parc_strides(self):
        patch = self.patch_embed.projection.stride[0]
        return [patch * 2**i for i in range(self.num_layers)]

    def parc_dims(self):
        return [stage.embed_dims for stage in self.stages]

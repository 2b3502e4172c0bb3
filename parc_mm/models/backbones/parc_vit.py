"""ParC-ViT (ParC-DeiT): a plain ViT turned into a pure ConvNet by the ParC token mixer."""
from __future__ import annotations

from typing import Optional, Union

from mmpretrain.models.backbones.vision_transformer import VisionTransformer

from parc_mm.registry import MODELS

from ..layers.token_mixer import ParCTokenMixer
from ..placement import AttentionToParC, Size


@MODELS.register_module()
class ParCViT(AttentionToParC, VisionTransformer):
    """ParC-ViT / ParC-DeiT: mmpretrain's :class:`VisionTransformer` with every attention
    replaced by :class:`~parc_mm.models.layers.ParCTokenMixer`, a pure ConvNet.

    No class token (the image feature is the average of the patch tokens, ``out_type
    'avg_featmap'``) and no absolute position-embedding table: the ParC position
    embeddings, resized with the kernels, carry position, so any input size runs without
    interpolating a table. Everything else is mmpretrain's ViT: parameter names
    (``patch_embed``, ``layers.<i>.ln1/ffn/ln2``, ``ln1`` / ``ln2``), ``get_layer_depth``
    (layer-wise lr decay), ``frozen_stages``, ``out_indices`` with ``out_type='featmap'``
    for dense heads, ``init_cfg``. The mixer sits under ``layers.<i>.attn``.

    Args:
        arch: ``'deit-tiny'``, ``'deit-small'`` (default), ``'deit-base'``, ``'base'``
            (ViT-B/16), any mmpretrain ViT arch or a dict (``embed_dims`` even).
        img_size: training resolution; the kernels are stored at its token grid
            (224 / 16 -> 14) unless ``parc_cfg.base_sizes`` says otherwise.
        parc_cfg: ``blocks`` (``'all'`` = ``'paper'``: every layer; or ``[[indices]]``
            for a hybrid that keeps attention in the others), ``base_sizes`` (one entry),
            ``pe`` (``'first'`` default: position embeddings in the first mixer, taking the
            place of ViT's single table; ``'all'``; ``'none'``), ``bias``, ``impl``.
        out_type: ``'avg_featmap'`` (default), ``'featmap'`` or ``'raw'``; ``'cls_token'``
            does not exist here.
        **kwargs: everything else :class:`mmpretrain.models.VisionTransformer` takes.
    """
    out_indices_type = list  # ViT edits it in place

    def __init__(self,
                 arch: Union[str, dict] = 'deit-small',
                 img_size: Size = 224,
                 patch_size: int = 16,
                 parc_cfg: Optional[dict] = None,
                 out_type: str = 'avg_featmap',
                 **kwargs) -> None:
        if isinstance(arch, str) and arch.lower() not in self.arch_zoo:
            raise ValueError(f'Unknown ParCViT arch {arch!r}; choose one of '
                             f'{sorted(self.arch_zoo)} or pass a dict with embed_dims, '
                             'num_layers, num_heads, feedforward_channels')
        if out_type == 'cls_token' or kwargs.pop('with_cls_token', False):
            raise ValueError("ParCViT has no class token (a ConvNet averages its tokens): use "
                             "out_type='avg_featmap' (classification) or 'featmap'")
        if not isinstance(patch_size, int):
            raise ValueError(f'ParCViT patch_size must be an int, got {patch_size!r}')
        self.parc_configure(parc_cfg, img_size, kwargs)
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size,
                         out_type=out_type, with_cls_token=False, **kwargs)
        # no table to interpolate: the ParC position embeddings take its place
        del self.pos_embed
        self.pos_embed = None
        self.parc_build()

    def parc_stages(self):
        return [self.layers]

    def parc_strides(self):
        return [self.patch_embed.projection.stride[0]]

    def parc_dims(self):
        return [self.embed_dims]

    def parc_refreeze(self):
        if self.frozen_stages > 0:  # ViT freezes only when asked (frozen_stages=0: nothing)
            self._freeze_stages()

    def _prepare_pos_embed(self, state_dict, prefix, *args, **kwargs):
        # a ViT checkpoint's table stays in the state dict, so the load reports it as unused
        return

    def forward(self, x):
        x, hw_shape = self.patch_embed(x)
        x = self.pre_norm(self.drop_after_pos(x))
        outs = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer.attn, ParCTokenMixer):  # the encoder layer, given the grid
                x = x + layer.attn(layer.ln1(x), hw_shape)
                x = layer.ffn(layer.ln2(x), identity=x)
            else:  # a hybrid's attention layer
                x = layer(x)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, hw_shape))
        return tuple(outs)

# Baseline: ConvNeXt-XT UperNet, ADE20K 512x512 160k, same recipe.
_base_ = ['mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py']

checkpoint_file = 'checkpoints/convnext-xt_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ConvNeXt',
        arch=dict(depths=[3, 3, 9, 3], channels=[48, 96, 192, 384]),
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')),
    decode_head=dict(in_channels=[48, 96, 192, 384]),
    auxiliary_head=dict(in_channels=192))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
custom_imports = dict(imports=['parc_mm.hooks'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# ParC-ConvNeXt-T UperNet, ADE20K 512x512 160k.
# Baseline: mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py
_base_ = ['mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
checkpoint_file = 'checkpoints/parc-convnext-t_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCConvNeXt',
        arch='tiny',
        parc_cfg=dict(blocks='paper'),
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# Baseline of the ParC-ConvNeXt-XT detection row: ConvNeXt-XT, same recipe.
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py']

checkpoint_file = 'checkpoints/convnext-xt_in1k.pth'  # trained with convnext-xt_32xb128_in1k.py

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
    neck=dict(in_channels=[48, 96, 192, 384]))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
custom_imports = dict(imports=['parc_mm.hooks'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

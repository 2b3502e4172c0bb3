# ParC-ConvNeXt-T Mask R-CNN 3x, next to mmdet's ConvNeXt-T
# (mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py).
_base_ = ['mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
# ConvNeXt-T ImageNet weights with fresh ParC kernels, or ParC-ConvNeXt-T ImageNet weights:
# python tools/model_converters/to_parc.py convnext <convnext-t.pth> <this> --arch tiny
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

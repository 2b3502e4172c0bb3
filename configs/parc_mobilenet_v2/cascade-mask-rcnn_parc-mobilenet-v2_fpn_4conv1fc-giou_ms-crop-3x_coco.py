# ParC-MobileNetV2 Cascade Mask R-CNN 3x (paper numbers: metafile.yml). Features 1, 2, 4, 7 -> channels [24, 32, 96, 1280] as the first author's
# detector. Recipe: 4conv1fc GIoU heads, ms 480-800 + DETR crop, AdamW 2e-4, 36 epochs.
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
checkpoint_file = 'checkpoints/parc-mobilenet-v2_in1k.pth'  # tools/model_converters/to_parc.py mv2

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCMobileNetV2',
        parc_cfg=dict(blocks='paper'),
        out_indices=(1, 2, 4, 7),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')),
    neck=dict(in_channels=[24, 32, 96, 1280]))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0002, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# ParC-ResNet50 Cascade Mask R-CNN 3x.
# The first author's recipe: 4conv1fc GIoU heads, multi-scale 480-800 + DETR crop, AdamW
# lr 2e-4 wd 0.05, 36 epochs (steps 27/33), batch 16. mmdet's layer-decay constructor only
# knows ConvNeXt/BEiT parameter names, so ResNets use plain AdamW.
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
checkpoint_file = 'checkpoints/parc-resnet50_in1k.pth'  # tools/model_converters/to_parc.py resnet

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCResNet',
        depth=50,
        parc_cfg=dict(blocks='paper'),
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))

optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0002, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

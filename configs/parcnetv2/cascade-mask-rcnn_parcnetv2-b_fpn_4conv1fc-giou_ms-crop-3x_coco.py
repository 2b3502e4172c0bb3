# ParCNetV2-B Cascade Mask R-CNN 3x (4conv1fc heads, GIoU), COCO.
# The official recipe: multi-scale 480-800 + DETR crop augmentation, AdamW lr 2e-4 wd 0.05,
# layer decay 0.8 over groups of three blocks (13 groups), 36 epochs (steps 27 / 33), batch 16,
# drop path 0.7: mmdet's ConvNeXt-T Cascade Mask R-CNN 3x with that backbone and optimiser.
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.parcnetv2_b_det}},
    neck=dict(in_channels=[96, 192, 384, 576]))
optim_wrapper = dict(
    constructor='parc_mm.LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.8, decay_type='block_wise', num_layers=13),
    optimizer=dict(lr=0.0002))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

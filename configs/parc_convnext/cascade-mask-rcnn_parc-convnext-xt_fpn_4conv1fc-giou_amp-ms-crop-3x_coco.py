# ParC-ConvNeXt-XT Cascade Mask R-CNN 3x.
# The first author's recipe = mmdet's ConvNeXt-T cascade config: 4conv1fc GIoU heads,
# multi-scale 480-800 + DETR crop, AdamW lr 2e-4 wd 0.05, layer decay 0.7 (6 layers),
# 36 epochs (steps 27/33), batch 16 (8 GPUs x 2).
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
# ImageNet weights of ParC-ConvNeXt-XT in our layout, e.g. converted from the official
# checkpoint: python tools/model_converters/to_parc.py convnext <official.pth> <this> --arch xt

model = dict(
    backbone={{_base_.parc_convnext_xt}},
    neck=dict(in_channels=[48, 96, 192, 384]))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# Baseline of the ParC-ConvNeXt-XT detection row: ConvNeXt-XT, same recipe.
_base_ = ['mmdet::convnext/cascade-mask-rcnn_convnext-t-p4-w7_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',
          './_base_/dense_backbones.py']


model = dict(
    backbone={{_base_.convnext_xt}},
    neck=dict(in_channels=[48, 96, 192, 384]))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
custom_imports = dict(imports=['parc_mm.engine.hooks'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# ParC-ConvNeXt-T Mask R-CNN 3x, next to mmdet's ConvNeXt-T
# (mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py).
_base_ = ['mmdet::convnext/mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
# ConvNeXt-T ImageNet weights with fresh ParC kernels, or ParC-ConvNeXt-T ImageNet weights:
# python tools/model_converters/to_parc.py convnext <convnext-t.pth> <this> --arch tiny

model = dict(
    backbone={{_base_.parc_convnext_t}})
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

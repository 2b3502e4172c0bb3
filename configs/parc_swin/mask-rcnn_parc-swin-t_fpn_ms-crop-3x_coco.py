# ParC-Swin-T Mask R-CNN 3x (multi-scale + crop training, 36 epochs): mmdet's Swin-T 3x config
# with the ParC backbone. Baseline: mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(backbone={{_base_.parc_swin_t}})
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

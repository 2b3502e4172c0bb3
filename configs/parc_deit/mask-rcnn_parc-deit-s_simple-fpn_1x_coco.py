# ParC-DeiT-S Mask R-CNN 1x with a simple feature pyramid: the plain-ViT detector of
# mask-rcnn_deit-s_simple-fpn_1x_coco.py (the baseline) with the ParC backbone.
_base_ = ['./mask-rcnn_deit-s_simple-fpn_1x_coco.py', './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'mmseg.models', 'parc_mm.models'],
                      allow_failed_imports=False)

model = dict(backbone={{_base_.parc_deit_s_det}})

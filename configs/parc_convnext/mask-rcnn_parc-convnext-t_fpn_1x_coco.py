# ParC-ConvNeXt-T Mask R-CNN 1x (single scale 1333x800, 12 epochs) with the ConvNeXt
# optimiser (AdamW lr 2e-4, wd 0.05, layer decay 0.7). Baseline: mask-rcnn_convnext-t_fpn_1x_coco.py
_base_ = ['./mask-rcnn_convnext-t_fpn_1x_coco.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.parc_convnext_t}})

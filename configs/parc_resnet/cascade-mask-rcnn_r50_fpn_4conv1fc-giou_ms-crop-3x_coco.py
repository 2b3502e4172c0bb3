# Baseline of the ParC-ResNet50 detection row: ResNet-50, same recipe.
_base_ = ['./cascade-mask-rcnn_parc-r50_fpn_4conv1fc-giou_ms-crop-3x_coco.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.engine.hooks'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='ResNet',  # mmdet's
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')))

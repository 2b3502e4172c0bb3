# Baseline of the ParC-MobileNetV2 detection row: MobileNetV2.
_base_ = ['./cascade-mask-rcnn_parc-mobilenet-v2_fpn_4conv1fc-giou_ms-crop-3x_coco.py']

model = dict(
    backbone=dict(
        parc_cfg=dict(blocks='none'),  # == mmpretrain MobileNetV2 (tested)
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mobilenet-v2_in1k.pth',
                      prefix='backbone.')))

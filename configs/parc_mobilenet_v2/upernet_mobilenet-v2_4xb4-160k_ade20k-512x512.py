# Baseline of the ParC-MobileNetV2 segmentation row: MobileNetV2 UperNet.
_base_ = ['./upernet_parc-mobilenet-v2_4xb4-160k_ade20k-512x512.py']

model = dict(
    backbone=dict(
        parc_cfg=dict(blocks='none'),  # == mmpretrain MobileNetV2 (tested)
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/mobilenet-v2_in1k.pth',
                      prefix='backbone.')))

# Mask R-CNN 1x with ParC-ConvNeXt-XT and a plain FPN: the reference for the ParCFPN row.
_base_ = ['../parc_convnext/mask-rcnn_parc-convnext-t_fpn_1x_coco.py']

checkpoint_file = 'checkpoints/parc-convnext-xt_in1k.pth'
model = dict(
    backbone=dict(arch='xt',
                  init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file,
                                prefix='backbone.')),
    neck=dict(in_channels=[48, 96, 192, 384]))

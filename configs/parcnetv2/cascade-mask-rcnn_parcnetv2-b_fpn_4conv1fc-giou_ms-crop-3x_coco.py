# ParCNetV2-B Cascade Mask R-CNN 3x (4conv1fc heads, GIoU), COCO: the T config's official
# recipe with the B backbone (drop path 0.7) and its layer decay (0.8 over 13 groups of three blocks).
_base_ = ['./cascade-mask-rcnn_parcnetv2-t_fpn_4conv1fc-giou_ms-crop-3x_coco.py']

model = dict(
    backbone={{_base_.parcnetv2_b_det}},
    neck=dict(in_channels=[96, 192, 384, 576]))
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.8, num_layers=13))

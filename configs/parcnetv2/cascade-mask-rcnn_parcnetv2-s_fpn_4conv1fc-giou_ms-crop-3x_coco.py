# ParCNetV2-S Cascade Mask R-CNN 3x (4conv1fc heads, GIoU), COCO: the T config's official
# recipe with the S backbone (drop path 0.6) and its layer decay (0.7 over 13 groups of three blocks).
_base_ = ['./cascade-mask-rcnn_parcnetv2-t_fpn_4conv1fc-giou_ms-crop-3x_coco.py']

model = dict(
    backbone={{_base_.parcnetv2_s_det}},
    neck=dict(in_channels=[64, 128, 320, 512]))
optim_wrapper = dict(paramwise_cfg=dict(decay_rate=0.7, num_layers=13))

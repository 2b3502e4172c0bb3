# Mask R-CNN 1x with ParC-ConvNeXt-XT and ParCFPN: every pyramid level also passes through a
# global ParC block (kernels sized for 800x1333 inputs, resized to each map).
_base_ = ['./mask-rcnn_parc-convnext-xt_fpn_1x_coco.py']

model = dict(
    neck=dict(
        _delete_=True,
        type='parc_mm.ParCFPN',
        in_channels=[48, 96, 192, 384],
        out_channels=256,
        num_outs=5,
        parc_cfg=dict(levels=[0, 1, 2, 3, 4], img_size=(800, 1333), impl='auto')))

# ParC-ConvNeXt-T Mask R-CNN 1x (single scale 1333x800, 12 epochs) with the ConvNeXt
# optimiser (AdamW lr 2e-4, wd 0.05, layer decay 0.7). Baseline: mask-rcnn_convnext-t_fpn_1x_coco.py
_base_ = ['./mask-rcnn_convnext-t_fpn_1x_coco.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
checkpoint_file = 'checkpoints/parc-convnext-t_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCConvNeXt',
        arch='tiny',
        parc_cfg=dict(blocks='paper'),
        out_indices=[0, 1, 2, 3],
        drop_path_rate=0.4,
        layer_scale_init_value=1.0,
        gap_before_final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')))

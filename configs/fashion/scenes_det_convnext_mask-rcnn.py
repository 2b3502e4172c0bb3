# Baseline: the same Mask R-CNN on ConvNeXt (7x7 kernels) of the same size and recipe.
_base_ = ['./scenes_det_parc-convnext_mask-rcnn.py']
model = dict(backbone=dict(_delete_=True, type='mmpretrain.ConvNeXt',
                           arch=dict(depths=[1, 1, 3, 1], channels=[32, 64, 128, 256]),
                           layer_scale_init_value=1.0, out_indices=[0, 1, 2, 3],
                           gap_before_final_norm=False))

# ParC-DeiT-S Mask R-CNN 1x with a simple feature pyramid: the plain-ViT detector of
# mask-rcnn_deit-s_simple-fpn_1x_coco.py (the baseline) with the ParC backbone.
_base_ = ['./mask-rcnn_deit-s_simple-fpn_1x_coco.py']

custom_imports = dict(imports=['mmpretrain.models', 'mmseg.models', 'parc_mm.models'],
                      allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCViT',
        arch='deit-small',
        img_size=224,
        out_type='featmap',
        out_indices=(3, 5, 7, 11),
        final_norm=False,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/parc-deit-small_in1k.pth',
                      prefix='backbone.')))

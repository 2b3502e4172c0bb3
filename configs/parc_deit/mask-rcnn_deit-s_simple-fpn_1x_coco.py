# A plain-ViT Mask R-CNN (the baseline of mask-rcnn_parc-deit-s_simple-fpn_1x_coco.py): DeiT-S
# (stride 16, one resolution) with a simple feature pyramid: mmseg's Feature2Pyramid turns
# layers 4, 6, 8, 12 into strides 4, 8, 16, 32 (2x2 deconvs, identity, max-pool), then mmdet's
# FPN (256 channels, 5 levels). mmdet's 1x schedule and single-scale 1333x800 pipeline,
# AdamW lr 1e-4, weight decay 0.05 (none on norms and biases), drop path 0.1.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]

custom_imports = dict(imports=['mmpretrain.models', 'mmseg.models', 'parc_mm.engine.hooks'],
                      allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VisionTransformer',
        arch='deit-small',
        img_size=224,
        patch_size=16,
        out_type='featmap',
        out_indices=(3, 5, 7, 11),
        final_norm=False,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/deit-small_in1k.pth',
                      prefix='backbone.')),
    neck=[
        dict(type='mmseg.Feature2Pyramid', embed_dim=384, rescales=[4, 2, 1, 0.5],
             norm_cfg=dict(type='SyncBN', requires_grad=True)),
        dict(type='FPN', in_channels=[384, 384, 384, 384], out_channels=256, num_outs=5),
    ])

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999),
                   weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'pos_embed': dict(decay_mult=0.0),
                                    'cls_token': dict(decay_mult=0.0)}),
    clip_grad=dict(max_norm=1.0, norm_type=2))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

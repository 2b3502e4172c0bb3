# Demo 2/3: semantic segmentation of the synthetic scenes (ADE20K layout) with mmseg UperNet.
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(
    imports=['mmpretrain.models', 'parc_mm.models', 'parc_mm.datasets.mm'],
    allow_failed_imports=False)

data_root = 'data/shapes/ade'
norm_cfg = dict(type='BN', requires_grad=True)
backbone_checkpoint = None  # the demo passes the classification checkpoint here
data_preprocessor = dict(
    type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(128, 160))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='parc_mm.ParCConvNeXt',
        arch=dict(depths=[1, 1, 3, 1], channels=[32, 64, 128, 256]),
        # global ParC kernels in every block (Fast-ParC), stored at the feature heights of
        # the 128x160 scenes
        parc_cfg=dict(blocks='all', base_sizes=[32, 16, 8, 4]),
        layer_scale_init_value=1.0,
        out_indices=[0, 1, 2, 3],
        gap_before_final_norm=False),
    decode_head=dict(
        type='UPerHead', in_channels=[32, 64, 128, 256], in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6), channels=64, dropout_ratio=0.1, num_classes=7,
        norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='parc_mm.ShapesSegDataset', data_root=data_root,
                 data_prefix=dict(img_path='images/training',
                                  seg_map_path='annotations/training'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='parc_mm.ShapesSegDataset', data_root=data_root,
                 data_prefix=dict(img_path='images/validation',
                                  seg_map_path='annotations/validation'),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.01))
max_iters = 2000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', power=1.0, begin=30, end=max_iters, eta_min=0.0, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
                     checkpoint=dict(type='parc_mm.SafeCheckpointHook', by_epoch=False,
                                     interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)

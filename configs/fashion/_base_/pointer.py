# The pointer task on real Fashion-MNIST garments (parc_mm.datasets.fashion): a 64x128 scene
# holds two garments at its ends and an arrow between them; the label is the class of the
# garment the arrow points at (10 classes). One recipe for ParC and baseline alike, fixed
# before any comparison was run: AdamW 1e-3, batch 32, 1500 iterations, 100 warm-up,
# cosine; PyTorch's default init and layer scale 1.0 for both sides.
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(
    imports=['mmpretrain.models', 'parc_mm.models', 'parc_mm.datasets.mm'],
    allow_failed_imports=False)

data_root = 'data/fashion/cls'
arch = dict(depths=[1, 1, 3, 1], channels=[32, 64, 128, 256])
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ConvNeXt', arch=arch, layer_scale_init_value=1.0, init_cfg=None),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=10, in_channels=256,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
# the scenes are grey: the same statistics on the three channels the loader gives
data_preprocessor = dict(num_classes=10, mean=[40.0] * 3, std=[60.0] * 3, to_rgb=False)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    # a mirror image keeps the label: the arrow turns with the garments
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    dataset=dict(type='parc_mm.FashionPointerDataset', data_root=data_root,
                 data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False,
    dataset=dict(type='parc_mm.FashionPointerDataset', data_root=data_root,
                 data_prefix='val', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                     clip_grad=dict(max_norm=5.0))
max_iters = 1500
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-5)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(type='LoggerHook', interval=50),
                     checkpoint=dict(type='parc_mm.SafeCheckpointHook', by_epoch=False,
                                     interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)

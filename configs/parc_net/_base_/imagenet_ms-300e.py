# ImageNet recipe shared by ParC-Net-S / XS and their MobileViT-S baseline: the official
# ParC-Net recipe (MobileViT's, cvnets): AdamW (lr 2e-3, wd 0.01), 3000 warm-up iterations
# from 2e-4, cosine to 2e-4 over 300 epochs, label smoothing 0.1, EMA (momentum 5e-4),
# multi-scale training 160-320 around a 256 crop, 8 GPUs x 128 images; test: resize 288,
# center crop 256. Data layout / normalisation (none; BGR in [0, 1]) as mmpretrain's MobileViT.
_base_ = ['mmpretrain::mobilevit/mobilevit-small_8xb128_in1k.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

# cvnets' variable-resolution sampler, as a per-batch resize (fixed batch size; see
# parc_mm.MultiScaleClsDataPreprocessor)
data_preprocessor = dict(
    type='parc_mm.MultiScaleClsDataPreprocessor',
    scales=(160, 192, 224, 256, 288, 320),
    num_classes=1000,
    mean=[0, 0, 0],
    std=[255, 255, 255],
    to_rgb=False)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=256),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=128, dataset=dict(pipeline=train_pipeline))

model = dict(
    head=dict(loss=dict(_delete_=True, type='LabelSmoothLoss', label_smooth_val=0.1,
                        mode='original')))

optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=0.002, betas=(0.9, 0.999),
                   weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3000),
    dict(type='CosineAnnealingLR', eta_min=0.0002, by_epoch=True, begin=0, end=300,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)
custom_hooks = [dict(type='EMAHook', momentum=0.0005, priority='ABOVE_NORMAL')]

# 8 GPUs x 128 images
auto_scale_lr = dict(base_batch_size=1024)
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

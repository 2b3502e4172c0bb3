# Plain 10-class Fashion-MNIST (the control: a 28x28 garment holds its own label, so a global
# kernel is not expected to help). The pointer task's network and recipe, 1 grey channel,
# garments upsampled to 64x64 so that the four stages keep a map (16, 8, 4, 2).
_base_ = ['./pointer.py']
data_root = 'data/fashion/mnist'
model = dict(backbone=dict(in_channels=1))
data_preprocessor = dict(num_classes=10, mean=[72.94], std=[90.02], to_rgb=False)
train_pipeline = [
    dict(type='Resize', scale=64),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='Resize', scale=64), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(_delete_=True, type='parc_mm.FashionMNIST',
                                     data_root=data_root, split='train',
                                     pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(_delete_=True, type='parc_mm.FashionMNIST',
                                   data_root=data_root, split='test', test_mode=True,
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
max_iters = 600
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-5)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))

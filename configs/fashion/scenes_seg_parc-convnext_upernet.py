# Semantic segmentation of the real-garment scenes (128x128, 10 garment classes + background,
# ADE20K layout) with mmseg's UperNet on ParC-ConvNeXt (ParC in every block). The demo and
# the experiment start the backbone from the pointer-task checkpoint (backbone_checkpoint).
_base_ = ['../demo/shapes_seg_parc-convnext_upernet.py']

data_root = 'data/fashion/ade'
data_preprocessor = dict(mean=[40.0] * 3, std=[60.0] * 3, bgr_to_rgb=False, size=(128, 128))
model = dict(
    data_preprocessor=data_preprocessor,
    backbone=dict(parc_cfg=dict(base_sizes=[32, 16, 8, 4]), img_size=(128, 128)),
    decode_head=dict(num_classes=11))
train_dataloader = dict(dataset=dict(type='parc_mm.FashionSegDataset', data_root=data_root))
val_dataloader = dict(dataset=dict(type='parc_mm.FashionSegDataset', data_root=data_root))
test_dataloader = val_dataloader
max_iters = 1000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', power=1.0, begin=30, end=max_iters, eta_min=0.0, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))

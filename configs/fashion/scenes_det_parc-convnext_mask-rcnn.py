# Instance segmentation of the real-garment scenes (128x128, COCO instances from the garment
# pixels) with mmdet's Mask R-CNN on ParC-ConvNeXt (ParC in every block).
_base_ = ['../demo/shapes_det_parc-convnext_mask-rcnn.py']

data_root = 'data/fashion/coco'
model = dict(
    data_preprocessor=dict(mean=[40.0] * 3, std=[60.0] * 3, bgr_to_rgb=False),
    backbone=dict(parc_cfg=dict(base_sizes=[32, 16, 8, 4]), img_size=(128, 128)),
    roi_head=dict(bbox_head=dict(num_classes=10), mask_head=dict(num_classes=10)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(dataset=dict(type='parc_mm.FashionCocoDataset', data_root=data_root,
                                     pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(type='parc_mm.FashionCocoDataset', data_root=data_root,
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + '/annotations/instances_val.json')
test_evaluator = val_evaluator
max_iters = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[300, 370],
         gamma=0.1)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))

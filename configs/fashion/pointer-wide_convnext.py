# Baseline of the wide pointer task (48x192 canvas): ConvNeXt of the ParC model's size.
_base_ = ['./pointer_convnext.py']
data_root = 'data/fashion/cls_wide'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

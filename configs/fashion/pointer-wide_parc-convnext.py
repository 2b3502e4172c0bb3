# The pointer task on a 48x192 canvas (cls_wide/: the garments stay at the two ends, the arrow
# in the middle, ~55 pixels from each): the question whether ParC's gain appears once the deep
# stages' maps are wider than a 7x7 kernel (stage 3: 3x12; on the 48x96 canvas 3x6).
_base_ = ['./pointer_parc-convnext.py']
data_root = 'data/fashion/cls_wide'
model = dict(backbone=dict(img_size=(48, 192)))
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader

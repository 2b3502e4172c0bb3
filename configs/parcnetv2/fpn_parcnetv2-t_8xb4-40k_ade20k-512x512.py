# ParCNetV2-T Semantic FPN, ADE20K 512x512 40k.
# The official recipe (PVT's): AdamW lr 2e-4 wd 1e-4, poly (power 0.9), 40k iterations at
# batch 32 (8 GPUs x 4), drop path 0.2, whole-image test: mmseg's Semantic FPN with that
# backbone and schedule.
_base_ = ['mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py', './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # (an mmseg segmentor copies it into the backbone)
    backbone={{_base_.parcnetv2_t_fpn}},
    neck=dict(in_channels=[64, 128, 320, 512]))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0002, weight_decay=0.0001))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=40000,
                        by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
train_dataloader = dict(batch_size=4)
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook', by_epoch=False,
                                     interval=4000))

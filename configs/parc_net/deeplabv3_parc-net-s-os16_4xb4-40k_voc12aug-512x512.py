# ParC-Net-S DeepLabV3, output stride 16, PASCAL VOC 2012 + SBD aug, 512x512 crops (paper
# numbers: metafile.yml). Layer 5 keeps stride 16 (as cvnets' dilate_l5); the ASPP head
# (rates 6 / 12 / 18 for OS16) reads layer 5 (160 channels), no auxiliary head.
# Schedule: mmseg's VOC-aug 40k iterations, 4 GPUs x 4 crops, with AdamW (our choice for a
# mobile backbone from an ImageNet checkpoint; the official segmentation recipe is not
# reproduced here).
_base_ = ['mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-40k_voc12aug-512x512.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
checkpoint_file = 'checkpoints/parc-net-s_in1k.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCNet',
        arch='s',
        img_size=256,
        out_indices=(4, ),
        output_stride=16,
        norm_cfg=norm_cfg,
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')),
    decode_head=dict(in_channels=160, in_index=0, channels=256, dilations=(1, 6, 12, 18)),
    auxiliary_head=None)

optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.0009, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(norm_decay_mult=0.0))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

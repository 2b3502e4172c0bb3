# ParC-MobileNetV2 UperNet, ADE20K 512x512 160k.
_base_ = ['mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
checkpoint_file = 'checkpoints/parc-mobilenet-v2_in1k.pth'

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCMobileNetV2',
        parc_cfg=dict(blocks='paper'),
        out_indices=(1, 2, 4, 7),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')),
    decode_head=dict(in_channels=[24, 32, 96, 1280]),
    auxiliary_head=dict(in_channels=96))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

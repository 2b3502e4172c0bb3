# ParC-MobileNetV2 on ImageNet-1k, the
# MobileNetV2 recipe of mmpretrain.
_base_ = ['mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCMobileNetV2',
        widen_factor=1.0,
        parc_cfg=dict(blocks='paper')))  # c=64 blocks 2-3, c=96 block 2 (K=14), c=160 block 2 (K=7)
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

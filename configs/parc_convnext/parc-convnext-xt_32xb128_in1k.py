# ParC-ConvNeXt-XT on ImageNet-1k.
# The ConvNeXt recipe of mmpretrain: AdamW lr 4e-3 @ bs 4096, 300 ep, RandAug, Mixup/CutMix,
# label smoothing, EMA.
_base_ = ['mmpretrain::convnext/convnext-tiny_32xb128_in1k.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCConvNeXt',
        arch='xt',
        parc_cfg=dict(blocks='paper'),  # stage 3 blocks 6-8, stage 4 block 2 (kernels 14 / 7)
        drop_path_rate=0.1),
    head=dict(in_channels=384))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

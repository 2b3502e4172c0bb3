# ParCNetV2-S on ImageNet-1k. The official recipe (timm): AdamW lr 4e-3 @ batch 4096, 300
# epochs, 20 warm-up epochs, cosine, RandAugment, Mixup / CutMix, label smoothing, drop path 0.3,
# no EMA: mmpretrain's ConvNeXt recipe without its EMA hook.
_base_ = ['mmpretrain::convnext/convnext-tiny_32xb128_in1k.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCNetV2',
        arch='small',
        # oversized kernels 2s - 1 for the stage sizes s at 224: [111, 55, 27, 13]
        drop_path_rate=0.3),
    head=dict(in_channels=512))
custom_hooks = []
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

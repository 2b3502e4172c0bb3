# ParC-DeiT-T on ImageNet-1k with the DeiT recipe (300 epochs, AdamW lr 1e-3 at batch 1024,
# Mixup / CutMix, label smoothing): every attention replaced by the global ParC mixer, no class
# token (average-pooled tokens), no position table: a pure ConvNet.
# Baseline: deit-tiny_4xb256_in1k.py
_base_ = ['mmpretrain::deit/deit-tiny_4xb256_in1k.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCViT',
        arch='deit-tiny',
        img_size=224,
        patch_size=16,
        out_type='avg_featmap',
        parc_cfg=dict(blocks='all')),
    head=dict(in_channels=192))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# ParC-Swin-T on ImageNet-1k with the Swin recipe (300 epochs, AdamW lr 1e-3 at batch 1024,
# Mixup / CutMix, drop path 0.2): every (shifted) window attention replaced by the global ParC
# mixer, a pure ConvNet. Baseline: swin-tiny_16xb64_in1k.py
_base_ = ['mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCSwin',
        arch='tiny',
        img_size=224,
        parc_cfg=dict(blocks='all'),
        drop_path_rate=0.2))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

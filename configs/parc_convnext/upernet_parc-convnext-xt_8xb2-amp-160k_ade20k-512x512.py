# ParC-ConvNeXt-XT UperNet, ADE20K 512x512 160k.
# mmseg's ConvNeXt UperNet recipe: AdamW lr 1e-4 wd 0.05, stage-wise decay 0.9, warmup 1500,
# poly, batch 16 (8 GPUs x 2), slide test 512 / 341.
_base_ = ['mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.parc_convnext_xt}},
    decode_head=dict(in_channels=[48, 96, 192, 384]),
    auxiliary_head=dict(in_channels=192))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

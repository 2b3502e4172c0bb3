# ParCNetV2-T UperNet, ADE20K 512x512 160k.
# The official recipe: AdamW lr 1e-4 wd 0.05, stage-wise decay 0.9 (num_layers 6), warm-up
# 1500, poly, batch 16 (8 GPUs x 2), drop path 0.3: mmseg's ConvNeXt UperNet with that backbone.
# Single-scale result: slide test 512 / 341 (tools/test.py CONFIG CKPT); multi-scale + flip
# (the official "ms" rows): tools/test.py CONFIG CKPT --tta (mmseg's ADE20K tta_pipeline,
# ratios 0.5-1.75).
_base_ = ['mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.parcnetv2_t_seg}},
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))
optim_wrapper = dict(
    constructor='parc_mm.LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(decay_rate=0.9, decay_type='stage_wise', num_layers=6))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# ParC-DeiT-S UperNet, ADE20K 512x512 160k: mmseg's DeiT-S UperNet (multi-level neck from
# layers 3, 6, 9, 12 rescaled x4, x2, x1, x0.5; AdamW lr 6e-5) with the ParC backbone.
# Baseline: upernet_deit-s_8xb2-160k_ade20k-512x512.py
_base_ = ['mmseg::vit/vit_deit-s16_mln_upernet_8xb2-160k_ade20k-512x512.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    pretrained=None,  # the backbone's init_cfg says where its weights come from
    backbone={{_base_.parc_deit_s_seg}})
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

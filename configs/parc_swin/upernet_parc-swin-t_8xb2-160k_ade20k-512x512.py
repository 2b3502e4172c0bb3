# ParC-Swin-T UperNet, ADE20K 512x512 160k (AdamW lr 6e-5, drop path 0.3): mmseg's Swin-T
# config with the ParC backbone.
# Baseline: upernet_swin-t_8xb2-160k_ade20k-512x512.py
_base_ = ['mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(backbone={{_base_.parc_swin_t_seg}})
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# ParC-ConvNeXt-T UperNet, ADE20K 512x512 160k.
# Baseline: mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py
_base_ = ['mmseg::convnext/convnext-tiny_upernet_8xb2-amp-160k_ade20k-512x512.py',
          './_base_/dense_backbones.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone={{_base_.parc_convnext_t}})
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# Baseline of the ParC-ResNet50 segmentation row: mmseg's UperNet R-50 (V1c stem), 160k.
_base_ = ['mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py']
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
custom_imports = dict(imports=['parc_mm.engine.hooks'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# Baseline of upernet_parc-swin-t_8xb2-160k_ade20k-512x512.py: mmseg's Swin-T UperNet.
_base_ = ['mmseg::swin/swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py']
custom_imports = dict(imports=['parc_mm.engine.hooks'], allow_failed_imports=False)
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

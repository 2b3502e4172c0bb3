# Baseline of the ParC-ResNet50 row: ResNet-50, the same recipe.
_base_ = ['mmpretrain::resnet/resnet50_8xb256-rsb-a2-300e_in1k.py']
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
custom_imports = dict(imports=['parc_mm.engine.hooks'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

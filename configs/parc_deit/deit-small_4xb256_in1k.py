# Baseline of parc-deit-small_4xb256_in1k.py: DeiT-S (attention, class token), the same recipe.
_base_ = ['mmpretrain::deit/deit-small_4xb256_in1k.py']
custom_imports = dict(imports=['parc_mm.engine.hooks'], allow_failed_imports=False)
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

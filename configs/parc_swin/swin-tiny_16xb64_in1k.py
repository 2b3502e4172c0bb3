# Baseline of parc-swin-tiny_16xb64_in1k.py: Swin-T (window attention), the same recipe.
_base_ = ['mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py']
custom_imports = dict(imports=['parc_mm.engine.hooks'], allow_failed_imports=False)
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

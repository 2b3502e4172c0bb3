# Baseline of the ParC-ConvNeXt-XT row: plain ConvNeXt-XT, same recipe.
_base_ = ['mmpretrain::convnext/convnext-tiny_32xb128_in1k.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.ConvNeXt',
        arch=dict(depths=[3, 3, 9, 3], channels=[48, 96, 192, 384]),
        drop_path_rate=0.1),
    head=dict(in_channels=384))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
custom_imports = dict(imports=['parc_mm.engine.hooks'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

# ParC-ConvNeXt-T on ImageNet-1k; baseline: mmpretrain::convnext/convnext-tiny_32xb128_in1k.py
_base_ = ['mmpretrain::convnext/convnext-tiny_32xb128_in1k.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCConvNeXt',
        arch='tiny',
        parc_cfg=dict(blocks='paper'),
        drop_path_rate=0.1))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

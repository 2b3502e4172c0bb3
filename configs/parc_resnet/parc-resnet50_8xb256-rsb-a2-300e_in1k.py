# ParC-ResNet50 on ImageNet-1k with the
# "ResNet strikes back" A2 recipe (300 epochs, LAMB, mixup/cutmix) of mmpretrain.
_base_ = ['mmpretrain::resnet/resnet50_8xb256-rsb-a2-300e_in1k.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCResNet',
        depth=50,
        parc_cfg=dict(blocks='paper'),  # layer3 blocks 3-5 (K=14), layer4 block 2 (K=7), dense
        out_indices=(3, ),
        drop_path_rate=0.05,
        style='pytorch'))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

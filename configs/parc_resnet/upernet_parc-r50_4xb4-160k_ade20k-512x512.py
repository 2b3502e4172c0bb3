# ParC-ResNet50 UperNet, ADE20K 512x512 160k.
# mmseg's UperNet R-50 recipe (SGD lr 0.01, poly, 160k, batch 16). The ParC-ResNet50 has the
# standard 7x7 stem of the paper's ImageNet model (mmseg's R-50 baseline uses the V1c stem).
_base_ = ['mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
checkpoint_file = 'checkpoints/parc-resnet50_in1k.pth'

model = dict(
    pretrained=None,  # mmseg copies model.pretrained into the backbone: use init_cfg
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCResNet',
        depth=50,
        parc_cfg=dict(blocks='paper'),
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

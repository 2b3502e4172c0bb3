# ParC-Net-S SSDLite 320x320 on COCO. mmdet's SSDLite
# (depthwise SSD neck + head, 600 epochs) on layers 4 and 5 (strides 16 / 32, channels
# 128 / 160), as cvnets' SSD uses MobileViT's; the backbone starts from the ImageNet
# checkpoint (kernels stored at 256-input sizes, resized to the 320 maps on every forward).
_base_ = ['mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py']

custom_imports = dict(imports=['mmpretrain.models', 'parc_mm.models'], allow_failed_imports=False)
checkpoint_file = 'checkpoints/parc-net-s_in1k.pth'  # tools/model_converters/to_parc.py parcnet

model = dict(
    backbone=dict(
        _delete_=True,
        type='parc_mm.ParCNet',
        arch='s',
        img_size=256,
        out_indices=(3, 4),
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')),
    neck=dict(in_channels=(128, 160), out_channels=(128, 160, 512, 256, 256, 128)),
    # parc_mm.SSDHead: mmdet's SSDHead with the mmdet 3.3.0 inference bug fixed
    bbox_head=dict(type='parc_mm.SSDHead', in_channels=(128, 160, 512, 256, 256, 128)))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

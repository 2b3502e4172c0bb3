# Baseline of the ParC-Net-S SSDLite row: MobileViT-S SSDLite 320x320, with
# mmpretrain's MobileViT. Its out_indices=4 includes the final 1x1 conv (640 channels);
# cvnets' SSD uses layer 5 without it (160), which mmpretrain's MobileViT cannot return.
_base_ = ['./ssdlite_parc-net-s_8xb24-600e_coco.py']

checkpoint_file = 'checkpoints/mobilevit-s_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.MobileViT',
        arch='small',
        out_indices=(3, 4),
        norm_cfg=dict(type='BN', eps=0.001, momentum=0.03),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file, prefix='backbone.')),
    neck=dict(in_channels=(128, 640), out_channels=(128, 640, 512, 256, 256, 128)),
    bbox_head=dict(in_channels=(128, 640, 512, 256, 256, 128)))

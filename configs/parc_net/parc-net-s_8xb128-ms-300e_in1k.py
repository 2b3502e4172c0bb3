# ParC-Net-S on ImageNet-1k (paper: 78.6 top-1, 5.0M params; MobileViT-S 78.4), 256x256.
_base_ = ['./_base_/imagenet_ms-300e.py']

model = dict(
    backbone=dict(_delete_=True, type='parc_mm.ParCNet', arch='s', img_size=256,
                  out_indices=(5, )),
    head=dict(in_channels=640))

# ParC-Net-S on ImageNet-1k, 256x256.
_base_ = ['./_base_/imagenet_ms-300e.py']

model = dict(
    backbone=dict(_delete_=True, type='parc_mm.ParCNet', arch='s', img_size=256,
                  out_indices=(5, )),
    head=dict(in_channels=640))

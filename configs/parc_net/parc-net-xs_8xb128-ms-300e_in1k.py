# ParC-Net-XS on ImageNet-1k (2,185,384 params, = official), 256x256, the ParC-Net-S recipe.
_base_ = ['./_base_/imagenet_ms-300e.py']

model = dict(
    backbone=dict(_delete_=True, type='parc_mm.ParCNet', arch='xs', img_size=256,
                  out_indices=(5, )),
    head=dict(in_channels=640))

# Baseline of the ParC-Net-S row: MobileViT-S, mmpretrain's MobileViT
# with the same recipe (the base config already holds MobileViT arch='small').
_base_ = ['./_base_/imagenet_ms-300e.py']

# Baseline of the ParC-ResNet50 row: ResNet-50 (paper: 79.1 top-1), the same recipe.
_base_ = ['mmpretrain::resnet/resnet50_8xb256-rsb-a2-300e_in1k.py']

# Baseline of the ParC-MobileNetV2 row: MobileNetV2 (paper: 70.2 top-1), the same recipe.
_base_ = ['mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py']

# Baseline of the ParC-ResNet50 segmentation row: mmseg's UperNet R-50 (V1c stem), 160k.
_base_ = ['mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py']

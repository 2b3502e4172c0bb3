# Baseline of the pointer task: ConvNeXt (7x7 depthwise kernels) of the ParC models' size.
_base_ = ['./_base_/pointer.py']

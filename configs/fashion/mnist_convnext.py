# Baseline of the control task (plain Fashion-MNIST): ConvNeXt of the ParC models' size.
_base_ = ['./_base_/mnist.py']

# ParC-ConvNeXt, the paper's placement, on plain Fashion-MNIST (the control task).
_base_ = ['./mnist_parc-convnext.py']
model = dict(backbone=dict(parc_cfg=dict(blocks='paper')))

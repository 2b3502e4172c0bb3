# ParC-ConvNeXt (ParC in every block) on plain Fashion-MNIST (the control task).
_base_ = ['./_base_/mnist.py']
model = dict(backbone=dict(_delete_=True, type='parc_mm.ParCConvNeXt', arch={{_base_.arch}},
                           in_channels=1, parc_cfg=dict(blocks='all'), img_size=64,
                           layer_scale_init_value=1.0, init_cfg=None))

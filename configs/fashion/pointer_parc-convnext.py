# ParC-ConvNeXt on the pointer task, ParC in every block (Fast-ParC's placement): global
# kernels from the first stage, stored at the 48x96 scene's feature sizes.
_base_ = ['./_base_/pointer.py']
model = dict(backbone=dict(_delete_=True, type='parc_mm.ParCConvNeXt', arch={{_base_.arch}},
                           parc_cfg=dict(blocks='all'), img_size=(48, 96),
                           layer_scale_init_value=1.0, init_cfg=None))

# The backbones of this family's detection and segmentation configs, written once: a config
# lists this file in _base_ and uses model=dict(backbone={{_base_.<name>}}).
# Checkpoints: see the README (tools/model_converters/to_parc.py makes the ParC ones).
_dense = dict(out_indices=[0, 1, 2, 3], drop_path_rate=0.4, layer_scale_init_value=1.0,
              gap_before_final_norm=False)
parc_convnext_xt = dict(
    _delete_=True, type='parc_mm.ParCConvNeXt', arch='xt', parc_cfg=dict(blocks='paper'),
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/parc-convnext-xt_in1k.pth',
                  prefix='backbone.'), **_dense)
convnext_xt = dict(
    _delete_=True, type='mmpretrain.ConvNeXt',
    arch=dict(depths=[3, 3, 9, 3], channels=[48, 96, 192, 384]),
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/convnext-xt_in1k.pth',
                  prefix='backbone.'), **_dense)
parc_convnext_t = dict(
    _delete_=True, type='parc_mm.ParCConvNeXt', arch='tiny', parc_cfg=dict(blocks='paper'),
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/parc-convnext-t_in1k.pth',
                  prefix='backbone.'), **_dense)

# The backbones of this family's detection and segmentation configs, written once: a config
# lists this file in _base_ and uses model=dict(backbone={{_base_.<name>}}).
# Dense form: the four stage outputs, each normalised per position (the official
# detection / segmentation backbone's norm0-3). Checkpoints: see the README
# (tools/model_converters/to_parc.py parcnetv2 converts the official ones).
_dense = dict(_delete_=True, type='parc_mm.ParCNetV2', out_indices=[0, 1, 2, 3],
              gap_before_final_norm=False)


def _pretrained(name):
    return dict(type='Pretrained', checkpoint=f'checkpoints/{name}_in1k.pth', prefix='backbone.')


# drop path per task and size: the official recipes
parcnetv2_t_det = dict(arch='tiny', drop_path_rate=0.4, init_cfg=_pretrained('parcnetv2-tiny'),
                       **_dense)
parcnetv2_s_det = dict(arch='small', drop_path_rate=0.6,
                       init_cfg=_pretrained('parcnetv2-small'), **_dense)
parcnetv2_b_det = dict(arch='base', drop_path_rate=0.7, init_cfg=_pretrained('parcnetv2-base'),
                       **_dense)
parcnetv2_t_seg = dict(arch='tiny', drop_path_rate=0.3, init_cfg=_pretrained('parcnetv2-tiny'),
                       **_dense)
parcnetv2_s_seg = dict(arch='small', drop_path_rate=0.3,
                       init_cfg=_pretrained('parcnetv2-small'), **_dense)
parcnetv2_b_seg = dict(arch='base', drop_path_rate=0.5, init_cfg=_pretrained('parcnetv2-base'),
                       **_dense)
parcnetv2_t_fpn = dict(arch='tiny', drop_path_rate=0.2, init_cfg=_pretrained('parcnetv2-tiny'),
                       **_dense)

# The backbones of this family's detection and segmentation configs, written once: a config
# lists this file in _base_ and uses model=dict(backbone={{_base_.<name>}}).
# Dense form: the four stage outputs, each normalised per position (the official
# detection / segmentation backbone's norm0-3). Checkpoints: see the README
# (tools/model_converters/to_parc.py parcnetv2 converts the official ones).
_dense = dict(_delete_=True, type='parc_mm.ParCNetV2', out_indices=[0, 1, 2, 3],
              gap_before_final_norm=False)


def _pretrained(name):
    return dict(type='Pretrained', checkpoint=f'checkpoints/{name}_in1k.pth', prefix='backbone.')


parcnetv2_t = dict(arch='tiny', init_cfg=_pretrained('parcnetv2-tiny'), **_dense)
parcnetv2_s = dict(arch='small', init_cfg=_pretrained('parcnetv2-small'), **_dense)
parcnetv2_b = dict(arch='base', init_cfg=_pretrained('parcnetv2-base'), **_dense)

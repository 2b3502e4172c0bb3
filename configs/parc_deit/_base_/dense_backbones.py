# The ParC-DeiT-S backbone of this family's detection and segmentation configs, written once:
# a config lists this file in _base_ and uses model=dict(backbone={{_base_.<name>}}).
# Checkpoint: the ImageNet training of parc-deit-small_4xb256_in1k.py, or a DeiT-S converted
# with tools/model_converters/to_parc.py deit (attention dropped, the rest carried over).
parc_deit_s = dict(
    _delete_=True, type='parc_mm.ParCViT', arch='deit-small', img_size=224, out_type='featmap',
    final_norm=False, drop_path_rate=0.1,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/parc-deit-small_in1k.pth',
                  prefix='backbone.'))
# layers 3, 6, 9, 12 for mmseg's multi-level neck; 4, 6, 8, 12 for the simple pyramid
parc_deit_s_seg = dict(parc_deit_s, out_indices=(2, 5, 8, 11))
parc_deit_s_det = dict(parc_deit_s, out_indices=(3, 5, 7, 11))

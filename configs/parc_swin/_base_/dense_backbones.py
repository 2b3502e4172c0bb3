# The ParC-Swin-T backbone of this family's detection and segmentation configs, written once:
# a config lists this file in _base_ and uses model=dict(backbone={{_base_.parc_swin_t}}).
# Checkpoint: the ImageNet training of parc-swin-tiny_16xb64_in1k.py, or a Swin-T converted
# with tools/model_converters/to_parc.py swin (attention dropped, the rest carried over).
parc_swin_t = dict(
    _delete_=True, type='parc_mm.ParCSwin', arch='tiny', img_size=224, drop_path_rate=0.2,
    out_indices=(0, 1, 2, 3), with_cp=False,
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/parc-swin-tiny_in1k.pth',
                  prefix='backbone.'))
# mmseg's Swin-T UperNet trains with drop path 0.3
parc_swin_t_seg = dict(parc_swin_t, drop_path_rate=0.3)

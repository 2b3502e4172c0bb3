# ParCNetV2-S UperNet, ADE20K 512x512 160k: the T config's official recipe with the S
# backbone and stage-wise decay over num_layers 12 (single-scale: tools/test.py; multi-scale +
# flip: --tta).
_base_ = ['./upernet_parcnetv2-t_8xb2-160k_ade20k-512x512.py']

model = dict(
    backbone={{_base_.parcnetv2_s_seg}},
    decode_head=dict(in_channels=[64, 128, 320, 512]),
    auxiliary_head=dict(in_channels=320))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))

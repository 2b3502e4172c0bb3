# ParCNetV2-B UperNet, ADE20K 512x512 160k: the T config's official recipe with the B
# backbone and stage-wise decay over num_layers 12 (single-scale: tools/test.py; multi-scale +
# flip: --tta).
_base_ = ['./upernet_parcnetv2-t_8xb2-160k_ade20k-512x512.py']

model = dict(
    backbone={{_base_.parcnetv2_b_seg}},
    decode_head=dict(in_channels=[96, 192, 384, 576]),
    auxiliary_head=dict(in_channels=384))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=12))

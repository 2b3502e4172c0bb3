# ParCNetV2-T on ImageNet-1k: the XT config's official recipe (AdamW lr 4e-3 @ batch 4096,
# 300 epochs, 20 warm-up epochs, no EMA) with the tiny arch and its drop path, 0.2.
_base_ = ['./parcnetv2-xt_32xb128_in1k.py']

model = dict(backbone=dict(arch='tiny', drop_path_rate=0.2), head=dict(in_channels=512))

# ParC-ConvNeXt on the pointer task, the paper's placement (the last third of stage 3 and
# the last block of stage 4).
_base_ = ['./pointer_parc-convnext.py']
model = dict(backbone=dict(parc_cfg=dict(blocks='paper')))

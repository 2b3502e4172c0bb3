# Semantic FPN (FPNHead) R-50 on ADE20K with ParCFPN instead of FPN (global ParC on every
# pyramid level, kernels sized for 512x512 crops).
_base_ = ['mmseg::sem_fpn/fpn_r50_4xb4-160k_ade20k-512x512.py']

custom_imports = dict(imports=['parc_mm.models'], allow_failed_imports=False)

model = dict(
    neck=dict(
        _delete_=True,
        type='parc_mm.ParCFPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=4,
        parc_cfg=dict(img_size=(512, 512))))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

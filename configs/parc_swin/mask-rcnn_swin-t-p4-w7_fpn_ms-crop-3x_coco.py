# Baseline of mask-rcnn_parc-swin-t_fpn_ms-crop-3x_coco.py: mmdet's Swin-T Mask R-CNN.
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py']
custom_imports = dict(imports=['parc_mm.engine.hooks'], allow_failed_imports=False)
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

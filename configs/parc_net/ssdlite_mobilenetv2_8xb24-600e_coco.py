# Baseline beside the ParC-Net-S SSDLite row: mmdet's SSDLite MobileNetV2 320x320 (trained
# from scratch, 600 epochs). Only the head type changes: mmdet 3.3.0's SSDHead cannot run
# inference (no `loss_cls`); parc_mm.SSDHead is the same head with that fixed.
_base_ = ['mmdet::ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py']

custom_imports = dict(imports=['parc_mm.models'], allow_failed_imports=False)

model = dict(bbox_head=dict(type='parc_mm.SSDHead'))
# atomic checkpoint saves; --resume falls back to the newest checkpoint that loads
default_hooks = dict(checkpoint=dict(type='parc_mm.SafeCheckpointHook'))

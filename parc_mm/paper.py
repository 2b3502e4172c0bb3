"""The paper's numbers (ParC-Net ECCV'22 and Fast-ParC), one row per (model, task), with the
config of ours that reproduces the row (``config=None`` rows say ``why``). ``size``: input of
the params / FLOPs count when it is not the task's default (:data:`TEST_SIZES`)."""
from typing import Dict, List, Optional

PD = 'configs/parc_convnext/'
PR = 'configs/parc_resnet/'
PM = 'configs/parc_mobilenet_v2/'
PN = 'configs/parc_net/'

# params in M, flops in G at 224 (cls); metrics as printed in the paper
ROWS: List[Dict] = [
    # --- ImageNet-1k (top-1)
    dict(task='cls', model='ParC-ConvNeXt-XT', config=PD + 'parc-convnext-xt_32xb128_in1k.py',
         params=7.4, flops=0.6, metrics={'accuracy/top1': 78.3}),
    dict(task='cls', model='ConvNeXt-XT', config=PD + 'convnext-xt_32xb128_in1k.py',
         params=None, flops=None, metrics={'accuracy/top1': 77.5}),
    dict(task='cls', model='ParC-ResNet50', config=PR + 'parc-resnet50_8xb256-rsb-a2-300e_in1k.py', params=24.0, flops=2.0,
         metrics={'accuracy/top1': 79.6}),
    dict(task='cls', model='ResNet50', config=PR + 'resnet50_8xb256-rsb-a2-300e_in1k.py', params=None, flops=None,
         metrics={'accuracy/top1': 79.1}),
    dict(task='cls', model='ParC-MobileNetV2', config=PM + 'parc-mobilenet-v2_8xb32_in1k.py', params=3.5, flops=0.3,
         metrics={'accuracy/top1': 71.1}),
    dict(task='cls', model='MobileNetV2', config=PM + 'mobilenet-v2_8xb32_in1k.py', params=None, flops=None,
         metrics={'accuracy/top1': 70.2}),
    dict(task='cls', model='ParC-Net-S', config=PN + 'parc-net-s_8xb128-ms-300e_in1k.py',
         params=5.0, flops=1.7, size=(256, 256), metrics={'accuracy/top1': 78.6}),
    dict(task='cls', model='MobileViT-S', config=PN + 'mobilevit-s_8xb128-ms-300e_in1k.py',
         params=None, flops=None, size=(256, 256), metrics={'accuracy/top1': 78.4}),
    # --- COCO Cascade Mask R-CNN 3x (box AP / mask AP)
    dict(task='det', model='ParC-ConvNeXt-XT',
         config=PD + 'cascade-mask-rcnn_parc-convnext-xt_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',
         params=None, flops=None, metrics={'coco/bbox_mAP': 47.7, 'coco/segm_mAP': 41.5}),
    dict(task='det', model='ConvNeXt-XT',
         config=PD + 'cascade-mask-rcnn_convnext-xt_fpn_4conv1fc-giou_amp-ms-crop-3x_coco.py',
         params=None, flops=None, metrics={'coco/bbox_mAP': 47.2, 'coco/segm_mAP': 41.0}),
    dict(task='det', model='ParC-ResNet50',
         config=PR + 'cascade-mask-rcnn_parc-r50_fpn_4conv1fc-giou_ms-crop-3x_coco.py', params=None, flops=None,
         metrics={'coco/bbox_mAP': 48.1, 'coco/segm_mAP': 41.8}),
    dict(task='det', model='ResNet50',
         config=PR + 'cascade-mask-rcnn_r50_fpn_4conv1fc-giou_ms-crop-3x_coco.py', params=None, flops=None,
         metrics={'coco/bbox_mAP': 47.5, 'coco/segm_mAP': 41.1}),
    dict(task='det', model='ParC-MobileNetV2',
         config=PM + 'cascade-mask-rcnn_parc-mobilenet-v2_fpn_4conv1fc-giou_ms-crop-3x_coco.py', params=None, flops=None,
         metrics={'coco/bbox_mAP': 44.3, 'coco/segm_mAP': 39.0}),
    dict(task='det', model='MobileNetV2',
         config=PM + 'cascade-mask-rcnn_mobilenet-v2_fpn_4conv1fc-giou_ms-crop-3x_coco.py', params=None, flops=None,
         metrics={'coco/bbox_mAP': 43.7, 'coco/segm_mAP': 37.9}),
    # --- COCO SSDLite 320x320 (box AP)
    dict(task='det', model='ParC-Net-S SSDLite', config=PN + 'ssdlite_parc-net-s_8xb24-600e_coco.py',
         params=None, flops=None, size=(320, 320), metrics={'coco/bbox_mAP': 28.8}),
    dict(task='det', model='MobileViT-S SSDLite',
         config=PN + 'ssdlite_mobilevit-s_8xb24-600e_coco.py', params=None, flops=None,
         size=(320, 320), metrics={'coco/bbox_mAP': 27.7}),
    # --- ADE20K UperNet 160k (mIoU)
    dict(task='seg', model='ParC-ConvNeXt-XT',
         config=PD + 'upernet_parc-convnext-xt_8xb2-amp-160k_ade20k-512x512.py',
         params=None, flops=None, metrics={'mIoU': 42.32}),
    dict(task='seg', model='ConvNeXt-XT',
         config=PD + 'upernet_convnext-xt_8xb2-amp-160k_ade20k-512x512.py',
         params=None, flops=None, metrics={'mIoU': 42.17}),
    dict(task='seg', model='ParC-ResNet50',
         config=PR + 'upernet_parc-r50_4xb4-160k_ade20k-512x512.py', params=None, flops=None,
         metrics={'mIoU': 43.85}),
    dict(task='seg', model='ResNet50', config=PR + 'upernet_r50_4xb4-160k_ade20k-512x512.py', params=None, flops=None,
         metrics={'mIoU': 42.27}),
    dict(task='seg', model='ParC-MobileNetV2',
         config=PM + 'upernet_parc-mobilenet-v2_4xb4-160k_ade20k-512x512.py', params=None, flops=None,
         metrics={'mIoU': 35.13}),
    dict(task='seg', model='MobileNetV2',
         config=PM + 'upernet_mobilenet-v2_4xb4-160k_ade20k-512x512.py', params=None, flops=None,
         metrics={'mIoU': 32.80}),
    # --- PASCAL VOC 2012 DeepLabV3 (mIoU)
    dict(task='seg', model='ParC-Net-S DeepLabV3 (VOC)',
         config=PN + 'deeplabv3_parc-net-s-os16_4xb4-40k_voc12aug-512x512.py', params=None,
         flops=None, metrics={'mIoU': 79.7}),
    dict(task='seg', model='MobileViT-S DeepLabV3 (VOC)', config=None, params=None, flops=None,
         metrics={'mIoU': 79.1},
         why="no config: mmpretrain's MobileViT has no output-stride (dilation) option"),
]

TEST_SIZES = {'cls': (224, 224), 'det': (800, 1333), 'seg': (512, 512)}


def rows(task: Optional[str] = None) -> List[Dict]:
    return [r for r in ROWS if task is None or r['task'] == task]

# mmdet instance segmentation (Mask R-CNN, Cascade Mask R-CNN) on ONNX Runtime at 128x160
# (height x width; the test pipeline's Resize is set to it without keeping the ratio).
_base_ = ['./_base_/mmdet.py']
onnx_config = dict(input_shape=[160, 128], output_names=['dets', 'labels', 'masks'])
codebase_config = dict(post_processing=dict(export_postprocess_mask=False))

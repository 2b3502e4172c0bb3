# mmdet instance segmentation (Mask R-CNN, Cascade Mask R-CNN) on ONNX Runtime at 800x1344
# (height x width; the test pipeline's Resize is set to it without keeping the ratio).
_base_ = ['./_base_/mmdet.py']
onnx_config = dict(input_shape=[1344, 800], output_names=['dets', 'labels', 'masks'])
codebase_config = dict(post_processing=dict(export_postprocess_mask=False))

# mmseg segmentors on ONNX Runtime at 512x512 (height x width); the graph ends in the argmax
# (a label map at the input size).
_base_ = ['./_base_/onnxruntime.py']
onnx_config = dict(input_shape=[512, 512])  # (width, height), mmdeploy's order
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)

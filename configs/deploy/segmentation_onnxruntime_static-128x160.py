# mmseg segmentors on ONNX Runtime at 128x160 (height x width); the graph ends in the argmax
# (a label map at the input size).
_base_ = ['./_base_/onnxruntime.py']
onnx_config = dict(input_shape=[160, 128])  # (width, height), mmdeploy's order
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=True)

# mmpretrain classifiers on ONNX Runtime at 64x64 (height x width).
_base_ = ['./_base_/onnxruntime.py']
onnx_config = dict(input_shape=[64, 64])  # (width, height), mmdeploy's order
codebase_config = dict(type='mmpretrain', task='Classification')

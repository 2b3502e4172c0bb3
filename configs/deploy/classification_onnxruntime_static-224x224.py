# mmpretrain classifiers on ONNX Runtime at 224x224 (height x width).
_base_ = ['./_base_/onnxruntime.py']
onnx_config = dict(input_shape=[224, 224])  # (width, height), mmdeploy's order
codebase_config = dict(type='mmpretrain', task='Classification')

# mmdet single-stage detectors (SSDLite) on ONNX Runtime at 320x320.
_base_ = ['./_base_/mmdet.py']
onnx_config = dict(input_shape=[320, 320])

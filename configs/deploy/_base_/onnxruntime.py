# ONNX Runtime through mmdeploy, static shapes. ParC graphs are valid at one input size (the
# kernels are as long as the feature maps): one deploy config per size, dynamic height /
# width are refused. parc_mm.deploy.mmdeploy brings the fixes mmdeploy 1.3.1 needs on this
# torch and the exact adaptive pooling of UperNet's pyramid pooling.
custom_imports = dict(imports=['parc_mm.deploy.mmdeploy'], allow_failed_imports=False)
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=13,  # per-channel int8 (QDQ with an axis) needs 13
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    optimize=True)
backend_config = dict(type='onnxruntime')

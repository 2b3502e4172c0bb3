"""The task layer: the task table and config loading (tasks), what the tools check before the
Runner (runner), inference through the libraries' Inferencers (inference, onnx_runtime) and
ONNX export (deploy)."""

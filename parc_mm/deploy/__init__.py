"""Deployment: every route from a config + checkpoint to a graph another runtime runs.

* :mod:`.prepare`: how every route prepares a model;
* :mod:`.onnx`: the one exporter (the export command, the mmdeploy pipeline, the deployment
  benchmark and the op report all export through it, so what is measured is what ships);
* :mod:`.program`: the ``torch.export`` program ExecuTorch and LiteRT are lowered from, its
  parameter-derived tensors folded into constants;
* :mod:`.runtimes`: the runtimes, the ParC form each gets, their converters and runners;
* :mod:`.rank4`: rank-4 forms for runtimes whose tensors are at most 4-D (ncnn);
* :mod:`.record`: the record every export folder holds (one file name, written atomically)
  and :func:`~.record.artefact_of`, the one function that tells a checkpoint from an export
  folder from an mmdeploy folder;
* :mod:`.report`: the op report (portability) and the int8 graph check;
* :mod:`.quantize`: int8 (ONNX Runtime's static QDQ), for plain exports and mmdeploy's;
* :mod:`.ort`: an export (in its runtime) behind the libraries' Inferencers;
* :mod:`.mmdeploy`: what a deploy config imports (rewriters per backend) and the deploy /
  evaluate / int8 pipeline.

Nothing here is imported by ``import parc_mm``: onnx / onnxruntime / mmdeploy load when used.
"""

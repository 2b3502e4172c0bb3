"""ONNX Runtime behind the libraries' Inferencers.

An exported graph (:mod:`parc_mm.deploy.onnx`) takes the place of the network; the library
keeps everything around it, so an exported model gives the same drawings and
``predictions.json`` as its checkpoint: the config's test pipeline and data preprocessor feed
it, and its outputs go through the library's own post-processing (mmpretrain's
``ClsHead._get_predictions``: softmax and labels; mmseg's ``BaseDecodeHead.predict_by_feat``:
logits resized to the image, then the segmentor's ``postprocess_result``). A detector's plain
export holds the backbone + neck only (its heads need data samples), so detectors are refused
here; a whole detector deploys with mmdeploy (``tools/deploy/deploy.py``), whose backend model
takes the place of the network's ``predict`` (:func:`attach_backend`, every task).
"""
from __future__ import annotations

import os.path as osp
import types
from typing import List, Optional, Sequence

import numpy as np
import torch


def session(path: str, threads: Optional[int] = None, device: str = 'cpu'):
    """An ONNX Runtime session of ``path`` with every graph optimisation (``threads``: its
    intra-op threads, one inter-op thread; CUDA first where asked and available)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ['CPUExecutionProvider']
    if str(device).startswith('cuda') and \
            'CUDAExecutionProvider' in ort.get_available_providers():
        providers.insert(0, 'CUDAExecutionProvider')
    return ort.InferenceSession(path, so, providers=providers)


def attach_backend(model, backend) -> None:
    """Make ``model`` (a library model) predict with mmdeploy's backend model (the whole
    exported network, its post-processing included); the library's data preprocessor, test
    pipeline and drawing stay."""
    def predict(self, inputs, data_samples=None, **kwargs):
        return backend(inputs, data_samples, mode='predict')

    model.predict = types.MethodType(predict, model)


def check_export_record(rec: dict, task: str, num_classes: Optional[int],
                        allow_random: bool = False) -> None:
    """Refuse an export whose record does not fit the config it is run with (the caller has
    checked the task): random weights (without ``allow_random``), a graph whose class count
    differs from the record's classes or the config's head."""
    from parc_mm.deploy.record import RANDOM_INIT
    if not rec:
        return
    name = rec.get('config', 'the export')
    if rec.get('checkpoint_sha256') == RANDOM_INIT and not allow_random:
        raise ValueError(f'{name} was exported without a checkpoint: the graph holds random '
                         'weights. Export it with its checkpoint (tools/deploy/export_onnx.py '
                         'CONFIG CHECKPOINT ...), or pass --allow-random-weights')
    out = (rec.get('outputs') or {}).get('logits')
    if task in ('cls', 'seg') and out and len(out) >= 2:
        n = int(out[1])
        if rec.get('classes') and len(rec['classes']) != n:
            raise ValueError(f'the exported graph outputs {n} classes but its record names '
                             f'{len(rec["classes"])}: the folder mixes two exports; export '
                             'again')
        if num_classes is not None and num_classes != n:
            raise ValueError(f'the exported graph outputs {n} classes; the config\'s head has '
                             f'{num_classes}: run it with the config it was exported from')


class OrtNetwork:
    """An exported graph as a function of the preprocessed batch (one image per run: the
    exports have batch 1), in ONNX Runtime or, for an export folder of another runtime
    (``backend``, ``folder`` and ``outputs`` from its record), in that runtime."""

    def __init__(self, onnx_path: str, device: str = 'cpu', backend: str = 'onnxruntime',
                 folder: Optional[str] = None, outputs: Sequence[str] = (),
                 input_shape: Optional[Sequence[int]] = None) -> None:
        self.path, self.backend = onnx_path, backend
        if backend == 'onnxruntime':
            self.session = session(onnx_path, device=device)
            inp = self.session.get_inputs()[0]
            self.input_shape = list(inp.shape)
            name = inp.name
            self.run = lambda a: self.session.run(None, {name: a})
        else:
            from parc_mm.deploy import runtimes
            if str(device).startswith('cuda'):
                raise ValueError(f'the {backend} export runs on the CPU here: --device cpu')
            self.run = runtimes.load(backend, folder or osp.dirname(onnx_path), onnx_path,
                                     outputs)
            self.input_shape = list(input_shape or [])

    def __call__(self, x: torch.Tensor) -> List[torch.Tensor]:
        want = self.input_shape[-2:]
        if want and all(isinstance(v, int) for v in want) and list(x.shape[-2:]) != want:
            raise ValueError(
                f'{self.path} was exported for {want[0]}x{want[1]} inputs, but the test '
                f'pipeline gives this image as {x.shape[-2]}x{x.shape[-1]}: export at that size '
                f'(tools/deploy/export.py ... --shape {x.shape[-2]} {x.shape[-1]}), or give '
                'the config a test pipeline that resizes to the exported size')
        runs = [self.run(x[i:i + 1].detach().float().cpu().numpy()) for i in range(x.shape[0])]
        return [torch.cat([torch.from_numpy(np.asarray(r[k])) for r in runs]).to(x.device)
                for k in range(len(runs[0]))]


def network(art, device: str = 'cpu') -> OrtNetwork:
    """The network of an export (:func:`parc_mm.deploy.record.artefact_of`'s result), in the
    runtime its record names."""
    rec = art.record or {}
    return OrtNetwork(art.model, device, art.backend or 'onnxruntime', art.folder,
                      list((rec.get('outputs') or {}).keys()),
                      (rec.get('input') or {}).get('shape'))


def _classifier(model, net: OrtNetwork) -> None:
    def predict(self, inputs, data_samples=None, **kwargs):
        return self.head._get_predictions(net(inputs)[0], data_samples)

    model.predict = types.MethodType(predict, model)


def _segmentor(model, net: OrtNetwork) -> None:
    def encode_decode(self, inputs, batch_img_metas):
        return self.decode_head.predict_by_feat(net(inputs)[0], batch_img_metas)

    model.encode_decode = types.MethodType(encode_decode, model)


def _detector(model, net: OrtNetwork) -> None:
    raise ValueError(
        f'{net.path} holds a detector\'s backbone + neck only (its heads need data samples, and '
        "mmcv's NMS has no ONNX symbolic): run detectors from their checkpoint, or deploy the "
        'whole detector with mmdeploy')


# per task: how the exported graph replaces the network inside the library's model
_ATTACH = {'cls': _classifier, 'seg': _segmentor, 'det': _detector}


def attach(model, task: str, net: OrtNetwork) -> None:
    """Make ``model`` (a library model) run its network in ONNX Runtime."""
    _ATTACH[task](model, net)


__all__ = ['OrtNetwork', 'attach', 'attach_backend', 'check_export_record', 'network',
           'session']

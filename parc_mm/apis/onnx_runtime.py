"""ONNX Runtime behind the libraries' Inferencers.

The exported graph (``tools/deploy/export_onnx.py``: ``model.onnx`` + ``parc_export.json``) takes
the place of the network; the library keeps everything around it, so an exported model gives
the same drawings and ``predictions.json`` as its checkpoint: the config's test pipeline and
data preprocessor feed it, and its outputs go through the library's own post-processing
(mmpretrain's ``ClsHead._get_predictions``: softmax and labels; mmseg's
``BaseDecodeHead.predict_by_feat``: logits resized to the image, then the segmentor's
``postprocess_result``). A detector's ONNX file holds the backbone + neck only (its heads need
data samples and mmcv's NMS has no ONNX symbolic), so detectors are refused here; a whole
detector deploys with mmdeploy (``tools/deploy/deploy.py``), whose backend model takes the
place of the network's ``predict`` (:func:`attach_backend`, every task).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import types
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch


def quantize_qdq(fp32: str, out: str, batches: Iterable[Dict[str, np.ndarray]]) -> str:
    """Static int8 of the ONNX file ``fp32`` into ``out`` with ONNX Runtime's tools, the one
    recipe of every int8 graph here: QDQ, per-channel int8 weights, symmetric int8
    activations (MinMax calibration over ``batches``: ``{input name: array}`` each), the
    network's Conv / MatMul / Gemm; ONNX Runtime's pre-processing (shape inference and
    graph optimisation) first. Returns ``out``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader:  # ONNX Runtime's CalibrationDataReader protocol
        def __init__(self):
            self.items = iter(batches)

        def get_next(self):
            return next(self.items, None)

    pre = out[:-len('.onnx')] + '-preprocessed.onnx'
    quant_pre_process(fp32, pre, skip_symbolic_shape=True)
    try:
        quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=['Conv', 'MatMul', 'Gemm'],
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options=dict(ActivationSymmetric=True))
    finally:
        if osp.isfile(pre):
            os.remove(pre)
    return out


def mmdeploy_folder(path: Optional[str]) -> Optional[Tuple[str, str]]:
    """``(folder, ONNX file)`` when ``path`` is a folder mmdeploy wrote (its ``detail.json``
    and ``pipeline.json``; the file: ``end2end.onnx``) or an ONNX file in one (e.g. the
    int8 ``end2end_int8.onnx``); None otherwise."""
    if not path:
        return None
    folder, onnx_file = (path, None) if osp.isdir(path) else (osp.dirname(path) or '.', path)
    if not all(osp.isfile(osp.join(folder, f)) for f in ('detail.json', 'pipeline.json')):
        return None
    if onnx_file is None:
        with open(osp.join(folder, 'detail.json')) as f:
            save_file = json.load(f).get('onnx_config', {}).get('save_file', 'end2end.onnx')
        onnx_file = osp.join(folder, save_file)
    if not onnx_file.endswith('.onnx'):
        return None
    if not osp.isfile(onnx_file):
        raise FileNotFoundError(f'{folder} holds mmdeploy\'s files but not {onnx_file}: '
                                'deploy again with tools/deploy/deploy.py')
    return folder, onnx_file


def attach_backend(model, backend) -> None:
    """Make ``model`` (a library model) predict with mmdeploy's backend model (the whole
    exported network, its post-processing included); the library's data preprocessor, test
    pipeline and drawing stay."""
    def predict(self, inputs, data_samples=None, **kwargs):
        return backend(inputs, data_samples, mode='predict')

    model.predict = types.MethodType(predict, model)


def deploy_record(path: Optional[str], allow_unverified: bool = False
                  ) -> Optional[Tuple[str, dict]]:
    """``(model.onnx path, export record)`` when ``path`` is an exported model (the folder
    ``tools/deploy/export_onnx.py`` wrote, or the ``.onnx`` file in it); None for a checkpoint.

    The folder's manifest is verified first: every file it lists must have its recorded size
    and sha256 (a graph swapped for another model's, a truncated copy or a file edited since
    is refused, naming the file). ``allow_unverified``: run an ``.onnx`` file that no parc_mm
    export wrote (its record is then empty: nothing can be checked)."""
    from parc_mm.apis.deploy import RECORD
    from parc_mm.utils.fileio import ArtefactError, read_manifest, verify_folder
    if path is None:
        return None
    if osp.isdir(path):
        man = read_manifest(path)
        if man is None or man.get('tool') != 'export':
            raise FileNotFoundError(
                f'{path} is a folder but not one tools/deploy/export_onnx.py wrote (no export '
                'manifest; an export of an earlier parc_mm version wrote deploy.json instead: '
                'export again): pass a checkpoint, an export folder or an mmdeploy folder')
        verify_folder(path)
        with open(osp.join(path, RECORD)) as f:
            rec = json.load(f)
        return osp.join(path, rec.get('onnx', 'model.onnx')), rec
    if path.endswith('.onnx'):
        if not osp.isfile(path):
            raise FileNotFoundError(f'ONNX model {path} does not exist')
        folder = osp.dirname(osp.abspath(path))
        man = read_manifest(folder)
        if man is None or man.get('tool') != 'export' or \
                osp.basename(path) not in man['files']:
            if allow_unverified:
                return path, {}
            raise ArtefactError(
                f'{path} was not written by tools/deploy/export_onnx.py (no export manifest '
                'lists it): nothing says which model, weights, input size or classes it holds. '
                'Export it with tools/deploy/export_onnx.py, or pass --allow-unverified to run '
                'it as it is')
        verify_folder(folder)
        with open(osp.join(folder, RECORD)) as f:
            return path, json.load(f)
    return None


def check_export_record(rec: dict, task: str, num_classes: Optional[int],
                        allow_random: bool = False) -> None:
    """Refuse an export whose record does not fit the config it is run with (the caller has
    checked the task): random weights (without ``allow_random``), a graph whose class count
    differs from the record's classes or the config's head."""
    from parc_mm.apis.deploy import RANDOM_INIT
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
    exports have batch 1)."""

    def __init__(self, onnx_path: str, device: str = 'cpu') -> None:
        import onnxruntime as ort
        providers = ['CPUExecutionProvider']
        if str(device).startswith('cuda') and \
                'CUDAExecutionProvider' in ort.get_available_providers():
            providers.insert(0, 'CUDAExecutionProvider')
        self.path = onnx_path
        self.session = ort.InferenceSession(onnx_path, providers=providers)
        inp = self.session.get_inputs()[0]
        self.input_name, self.input_shape = inp.name, list(inp.shape)

    def __call__(self, x: torch.Tensor) -> List[torch.Tensor]:
        want = self.input_shape[-2:]
        if all(isinstance(v, int) for v in want) and list(x.shape[-2:]) != want:
            raise ValueError(
                f'{self.path} was exported for {want[0]}x{want[1]} inputs, but the test '
                f'pipeline gives this image as {x.shape[-2]}x{x.shape[-1]}: export at that size '
                f'(tools/deploy/export_onnx.py ... --shape {x.shape[-2]} {x.shape[-1]}), or give '
                'the config a test pipeline that resizes to the exported size')
        runs = [self.session.run(None, {self.input_name: x[i:i + 1].detach().float().cpu()
                                        .numpy()}) for i in range(x.shape[0])]
        return [torch.cat([torch.from_numpy(r[k]) for r in runs]).to(x.device)
                for k in range(len(runs[0]))]


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


__all__ = ['OrtNetwork', 'attach', 'attach_backend', 'check_export_record', 'deploy_record',
           'mmdeploy_folder',
           'quantize_qdq']

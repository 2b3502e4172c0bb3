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
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence

import numpy as np
import torch


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
            from parc_mm.deploy.runtimes import session
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


@dataclass
class Weights:
    """An export or a deploy folder as the weights of a library model: ``cfg`` to build the
    Inferencer from, the checkpoint ``meta`` (class names), and ``attach(model)``, which
    makes the built model run the exported network."""

    cfg: Any
    meta: dict
    attach: Callable[[Any], None]


def open_weights(path: Optional[str], config: str, cfg, task: str, images: Sequence[str],
                 device: str = 'cpu', allow_unverified: bool = False,
                 allow_random: bool = False, num_classes: Optional[int] = None
                 ) -> Optional[Weights]:
    """What ``path`` holds (:func:`parc_mm.deploy.record.artefact_of`) as the weights of
    ``config``'s model, or None for a checkpoint (verified here). An export is checked against
    the config (task, class count, random weights without ``allow_random``); a deploy folder
    runs mmdeploy's backend model with the test pipeline mmdeploy feeds the static graph."""
    from parc_mm.deploy.record import artefact_of
    from parc_mm.utils.checkpoint import checkpoint_meta, verify_checkpoint
    if path is None:
        return None
    art = artefact_of(path, allow_unverified)
    if art.kind == 'checkpoint':
        verify_checkpoint(path)
        return None
    if art.kind == 'mmdeploy':  # the graph with its pre- and post-processing
        from parc_mm.apis.tasks import drop_pretrained
        from parc_mm.deploy.mmdeploy.pipeline import Deployed
        run = Deployed.from_folder(art.folder, config, device)
        if run.task != task:
            raise ValueError(f'{art.folder} was deployed from a {run.task} model; {config} is '
                             f'a {task} config')
        cfg = run.processed_model_cfg(images)
        drop_pretrained(cfg.model)
        backend = run.backend_model(art.model)
        pth = run.info.get('codebase', {}).get('pth')
        meta = checkpoint_meta(pth) if pth and osp.isfile(pth) else {}
        return Weights(cfg, meta, lambda model: attach_backend(model, backend))
    record = art.record
    if record.get('task', task) != task:
        raise ValueError(f'{art.model} was exported from a {record["task"]} model; {config} '
                         f'is a {task} config')
    check_export_record(record, task, num_classes, allow_random)
    meta = {'dataset_meta': {'classes': record['classes']}} if record.get('classes') else {}
    net = network(art, device)
    return Weights(cfg, meta, lambda model: attach(model, task, net))


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


__all__ = ['OrtNetwork', 'Weights', 'attach', 'attach_backend', 'check_export_record', 'network',
           'open_weights']

"""The mmdeploy pipeline for ParC models: deploy (the graph, mmdeploy's SDK files, PyTorch vs
the backend), test-set metrics, int8; and the backend model behind ``tools/infer.py``.

The backend comes from the deploy config's ``backend_config`` (never from a file suffix);
the graph is traced by mmdeploy's own ``export`` under its rewriters (and ours,
:mod:`.rewriters`), from the model as every parc_mm route prepares it
(:func:`parc_mm.deploy.prepare.prepare`).
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import torch

# the graph mmdeploy writes by default, and the int8 one next to it
FP32_FILE, INT8_FILE = 'end2end.onnx', 'end2end_int8.onnx'


def _configs(deploy_cfg, model_cfg):
    from mmdeploy.utils import load_config
    return load_config(deploy_cfg, model_cfg)


def task_of_deploy(deploy_cfg) -> str:
    """'cls' / 'seg' / 'det' from the deploy config's codebase."""
    codebase = deploy_cfg.codebase_config.type
    return {'mmpretrain': 'cls', 'mmseg': 'seg', 'mmdet': 'det'}.get(codebase, codebase)


def backend_of(deploy_cfg) -> str:
    """The backend a deploy config targets (its ``backend_config.type``); one this package
    has rewriters and a pipeline for, else a ValueError naming them."""
    from .rewriters import BACKENDS
    backend = (deploy_cfg.get('backend_config') or {}).get('type')
    if backend not in BACKENDS:
        raise ValueError(f'deploy config backend {backend!r}: parc_mm deploys with mmdeploy to '
                         f'{", ".join(BACKENDS)} (backend_config.type); use one of the deploy '
                         'configs in configs/deploy/')
    return backend


def check_static(deploy_cfg, model) -> None:
    """Refuse a deploy config with a dynamic input height / width for a model holding ParC
    layers (its graph would be valid only at the traced size)."""
    from mmdeploy.utils import get_input_shape, is_dynamic_shape

    from parc_mm.ops.export import parc_layers
    if next(parc_layers(model), None) is None:
        return
    if get_input_shape(deploy_cfg) is None or is_dynamic_shape(deploy_cfg):
        raise ValueError(
            'this model holds ParC layers, whose kernels are as long as the feature map: its '
            'graph is valid only at one input size, but the deploy config is dynamic (or has '
            'no onnx_config.input_shape). Use a static deploy config per size, e.g. '
            'configs/deploy/classification_onnxruntime_static-224x224.py')


class Deployed:
    """A deploy folder's models, run the mmdeploy way: ``task_processor`` builds the PyTorch
    model and the ONNX Runtime one (same data pipeline and post-processing)."""

    def __init__(self, deploy_cfg, model_cfg, device: str = 'cpu',
                 info: Optional[dict] = None) -> None:
        from mmdeploy.apis.utils import build_task_processor
        self.deploy_cfg, self.model_cfg = _configs(deploy_cfg, model_cfg)
        self.task = task_of_deploy(self.deploy_cfg)
        self.backend = backend_of(self.deploy_cfg)
        self.processor = build_task_processor(self.model_cfg, self.deploy_cfg, device)
        self.device = device
        self.info = info or {}  # a deploy folder's detail.json (from_folder)

    @classmethod
    def from_folder(cls, folder: str, model_cfg, device: str = 'cpu') -> 'Deployed':
        """The deploy config a folder was made with (mmdeploy's ``detail.json``)."""
        from mmengine.config import Config
        with open(osp.join(folder, 'detail.json')) as f:
            d = json.load(f)
        cfg = Config(dict(onnx_config=d['onnx_config'], backend_config=d['backend_config'],
                          codebase_config=d['codebase_config']))
        return cls(cfg, model_cfg, device, info=d)

    def backend_model(self, onnx_file: str):
        return self.processor.build_backend_model(
            [onnx_file], data_preprocessor_updater=self.processor.update_data_preprocessor)

    def pytorch_model(self, checkpoint: Optional[str]):
        return self.processor.build_pytorch_model(checkpoint)

    def inputs(self, img: str) -> dict:
        from mmdeploy.utils import get_input_shape
        data, _ = self.processor.create_input(img, get_input_shape(self.deploy_cfg))
        return data

    def predict(self, model, img: str):
        with torch.no_grad():
            return model.test_step(self.inputs(img))[0]

    def processed_model_cfg(self, imgs: Sequence[str] = ('', )):
        """The model config with the test pipeline mmdeploy feeds a static graph (its
        Resize set to the export size)."""
        import importlib

        from mmdeploy.utils import get_input_shape
        from mmengine.config import Config
        mod = importlib.import_module(type(self.processor).__module__)
        cfg = mod.process_model_config(self.model_cfg, list(imgs),
                                       get_input_shape(self.deploy_cfg))
        if not isinstance(cfg, Config):  # (mmpretrain's returns a ConfigDict)
            cfg = Config(cfg.to_dict(), filename=self.model_cfg.filename)
        return cfg


def _box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda t: (t[:, 2:] - t[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter).clamp(min=1e-9)


def compare_predictions(task: str, ref, got, score_thr: float = 0.3) -> dict:
    """How closely a backend's prediction (a data sample) matches the PyTorch one."""
    if task == 'cls':
        k = min(5, ref.pred_score.numel())
        top_ref = ref.pred_score.topk(k).indices.tolist()
        top_got = got.pred_score.topk(k).indices.tolist()
        return dict(top5_equal=top_ref == top_got, top1_equal=top_ref[0] == top_got[0],
                    max_score_diff=float((ref.pred_score - got.pred_score).abs().max()))
    if task == 'seg':
        a, b = ref.pred_sem_seg.data, got.pred_sem_seg.data
        return dict(pixel_agreement=float((a == b).float().mean()))
    pr, pg = ref.pred_instances, got.pred_instances
    keep_r, keep_g = pr.scores >= score_thr, pg.scores >= score_thr
    br, bg = pr.bboxes[keep_r], pg.bboxes[keep_g]
    out = dict(boxes_pytorch=int(keep_r.sum()), boxes_backend=int(keep_g.sum()),
               score_thr=score_thr)
    if len(br) and len(bg):
        iou = _box_iou(br, bg)
        same_label = pr.labels[keep_r][:, None] == pg.labels[keep_g][None]
        best, idx = (iou * same_label).max(1)
        out.update(matched=int((best > 0.99).sum()), min_matched_iou=float(best.min()))
        if 'masks' in pr and 'masks' in pg:
            mr, mg = pr.masks[keep_r].bool(), pg.masks[keep_g][idx].bool()
            inter = (mr & mg).flatten(1).sum(1).float()
            union = (mr | mg).flatten(1).sum(1).float()
            # two empty masks agree exactly (an untrained head's masks may all be empty)
            miou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
            out['min_mask_iou'] = float(miou[best > 0.99].min()) \
                if bool((best > 0.99).any()) else 0.0
    else:
        out.update(matched=0)
    return out


def export(deploy_cfg, model_cfg, checkpoint: Optional[str], img: str, work_dir: str,
           device: str = 'cpu') -> str:
    """mmdeploy's ``torch2onnx`` with the model prepared as every parc_mm export is
    (:func:`parc_mm.deploy.prepare.prepare`): the task processor builds the model and its input
    from ``img``, mmdeploy's ``export`` traces it under its rewriters. Returns the graph's
    path."""
    from mmdeploy.apis.core.pipeline_manager import no_mp
    from mmdeploy.apis.onnx import export as mmdeploy_export
    from mmdeploy.apis.utils import build_task_processor
    from mmdeploy.utils import get_dynamic_axes, get_input_shape, get_onnx_config

    from parc_mm.deploy.prepare import prepare
    processor = build_task_processor(model_cfg, deploy_cfg, device)
    model = processor.build_pytorch_model(checkpoint)
    data, inputs = processor.create_input(
        img, get_input_shape(deploy_cfg), data_preprocessor=getattr(model, 'data_preprocessor',
                                                                    None))
    if isinstance(inputs, list) and len(inputs) == 1:
        inputs = inputs[0]
    onnx_cfg = get_onnx_config(deploy_cfg)
    save_file = onnx_cfg.get('save_file', FP32_FILE)
    names = onnx_cfg['input_names'] + onnx_cfg['output_names']
    with no_mp():
        mmdeploy_export(
            prepare(model), inputs,
            input_metas={'data_samples': data['data_samples'], 'mode': 'predict'},
            output_path_prefix=osp.join(work_dir, osp.splitext(osp.basename(save_file))[0]),
            backend=backend_of(deploy_cfg), input_names=onnx_cfg['input_names'],
            output_names=onnx_cfg['output_names'], context_info=dict(deploy_cfg=deploy_cfg),
            opset_version=onnx_cfg.get('opset_version', 11),
            dynamic_axes=get_dynamic_axes(deploy_cfg, names),
            verbose=onnx_cfg.get('verbose', False),
            keep_initializers_as_inputs=onnx_cfg.get('keep_initializers_as_inputs', True),
            optimize=onnx_cfg.get('optimize', False))
    return osp.join(work_dir, save_file)


def deploy(deploy_cfg: str, model_cfg: str, checkpoint: Optional[str], img: str,
           work_dir: str, test_imgs: Sequence[str] = (), device: str = 'cpu',
           score_thr: float = 0.3) -> dict:
    """mmdeploy's ``tools/deploy.py`` for the deploy config's backend, in this process:
    the graph (:func:`export`) + ``deploy.json`` / ``pipeline.json`` / ``detail.json`` (the
    SDK's files), then PyTorch and the backend on ``img`` (and ``test_imgs``) compared; the
    record (:mod:`parc_mm.deploy.record`) holds both and the graph's op report."""
    from mmdeploy.backend.sdk.export_info import export2SDK
    from mmdeploy.utils import get_input_shape

    from parc_mm.apis.tasks import build_model
    from parc_mm.deploy.record import RANDOM_INIT, write_record
    from parc_mm.deploy.report import onnx_op_report
    from parc_mm.utils.fileio import sha256_file
    dcfg, mcfg = _configs(deploy_cfg, model_cfg)
    backend = backend_of(dcfg)
    model = build_model(mcfg.copy())
    check_static(dcfg, model)
    if checkpoint is not None:
        from parc_mm.apis.runner import check_checkpoint_fits
        from parc_mm.utils.checkpoint import verify_checkpoint
        verify_checkpoint(checkpoint)
        check_checkpoint_fits(model, checkpoint, False)
    del model
    os.makedirs(work_dir, exist_ok=True)
    onnx_file = export(dcfg, mcfg, checkpoint, img, work_dir, device)
    _check_traced_size(onnx_file, dcfg, img)
    export2SDK(dcfg, _sdk_model_cfg(dcfg, mcfg), work_dir, pth=checkpoint, device=device)
    run = Deployed(deploy_cfg, model_cfg, device)
    torch_model = run.pytorch_model(checkpoint)
    backend_model = run.backend_model(onnx_file)
    checks = {}
    for im in [img, *test_imgs]:
        checks[im] = compare_predictions(run.task, run.predict(torch_model, im),
                                         run.predict(backend_model, im), score_thr)
    report = onnx_op_report(onnx_file)
    name = osp.basename(onnx_file)
    return write_record(work_dir, dict(
        task=run.task, route='mmdeploy', backend=backend, deploy_config=deploy_cfg,
        model_config=model_cfg, checkpoint=checkpoint, model=name, onnx=name,
        checkpoint_sha256=sha256_file(checkpoint) if checkpoint else RANDOM_INIT,
        input_shape_wh=list(get_input_shape(dcfg) or []),
        vs_pytorch=checks, ops=report['ops'], non_portable=report['non_portable'],
        torch=torch.__version__))


def _check_traced_size(onnx_file: str, dcfg, img: str) -> None:
    """The graph mmdeploy traced must have the deploy config's static input size: a test
    pipeline that does not resize passes the trace image's own size through."""
    from mmdeploy.utils import get_input_shape

    from parc_mm.deploy.report import onnx_input
    shape = get_input_shape(dcfg)
    if not shape:
        return
    got = onnx_input(onnx_file)[1]
    want = [int(shape[1]), int(shape[0])]  # (W, H) in the deploy config
    if got[-2:] != want:
        raise ValueError(
            f'the graph was traced at {got[-2]}x{got[-1]} (the size {img} reaches the network '
            f'with the model config\'s test pipeline), but the deploy config is static at '
            f'{want[0]}x{want[1]}: trace with an image of that size, give the model config a test '
            'pipeline that resizes to it, or use a deploy config of the traced size. Nothing '
            'was written.')


def _sdk_model_cfg(deploy_cfg, model_cfg):
    """The model config mmdeploy's SDK files describe. mmdeploy's segmentation SDK export
    requires a ``Resize`` right after the image loading; a test pipeline without one (images
    already at the network's size, as the demo's) gets the static input size written as
    that step: what the graph needs anyway."""
    from mmdeploy.utils import get_input_shape
    pipeline = model_cfg.get('test_pipeline') or []
    shape = get_input_shape(deploy_cfg)
    if task_of_deploy(deploy_cfg) != 'seg' or shape is None or len(pipeline) < 2 or \
            any(t.get('type') == 'Resize' for t in pipeline):
        return model_cfg
    cfg = model_cfg.copy()
    cfg.test_pipeline = [pipeline[0], dict(type='Resize', scale=tuple(shape),
                                           keep_ratio=False), *pipeline[1:]]
    return cfg


# --------------------------------------------------------------------------------------
# accuracy on the test set, PyTorch vs ONNX Runtime (fp32 / int8)
# --------------------------------------------------------------------------------------
def evaluate(deploy_cfg, model_cfg, model_file: Optional[str], work_dir: str,
             device: str = 'cpu', backend: bool = True) -> Dict[str, float]:
    """The config's test metrics for ``model_file``: the deploy config's backend running that
    graph (``backend``), or PyTorch with that checkpoint (``backend=False``), with the test
    pipeline mmdeploy feeds the static graph."""
    run = Deployed(deploy_cfg, model_cfg, device)
    model = run.backend_model(model_file) if backend else run.pytorch_model(model_file)
    mcfg = run.processed_model_cfg()
    loader = mcfg.test_dataloader
    loader.batch_size = 1  # the static graphs have batch 1 (as mmdeploy's tools/test.py)
    runner = run.processor.build_test_runner(model, work_dir, dataloader=loader)
    return {k: float(v) for k, v in runner.test().items()}


# --------------------------------------------------------------------------------------
# int8: ONNX Runtime's static quantization (QDQ), calibrated on a folder of images
# --------------------------------------------------------------------------------------
def quantize_int8(work_dir: str, calib_images: List[str], deploy_cfg, model_cfg,
                  device: str = 'cpu') -> dict:
    """``work_dir/end2end_int8.onnx``: static int8 (:func:`parc_mm.deploy.quantize.
    quantize_qdq`), calibrated on ``calib_images`` preprocessed as at inference; returns the
    graph check (how many Conv / MatMul nodes got quantized inputs, ParC's layers among
    them)."""
    from parc_mm.deploy.quantize import calibration_batches, quantize_qdq
    from parc_mm.deploy.record import read_record, write_record
    from parc_mm.deploy.report import int8_graph_check, onnx_input
    run = Deployed(deploy_cfg, model_cfg, device)
    fp32 = osp.join(work_dir, read_record(work_dir).get('model', FP32_FILE))
    input_name, want = onnx_input(fp32)
    # the backend model's preprocessor: the one inference feeds the graph with (mmdeploy's
    # build_data_preprocessor() preprocesses differently)
    preprocessor = run.backend_model(fp32).data_preprocessor
    used, skipped = calibration_batches(
        calib_images, lambda img: preprocessor(run.inputs(img), False)['inputs'].float().numpy(),
        want)
    out = quantize_qdq(fp32, osp.join(work_dir, INT8_FILE),
                       ({input_name: b} for b in used))
    check = int8_graph_check(out)
    write_record(work_dir, dict(int8=dict(onnx=INT8_FILE, calibration_images=len(used),
                                          skipped_images=skipped, **check)), update=True)
    return check


__all__ = ['Deployed', 'backend_of', 'check_static', 'compare_predictions', 'deploy', 'evaluate',
           'export', 'quantize_int8', 'task_of_deploy']

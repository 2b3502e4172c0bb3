"""int8: ONNX Runtime's static quantization (QDQ), one recipe for every int8 graph here
(plain exports with ``tools/deploy/export_onnx.py --int8 CALIB_DIR``, mmdeploy's with
``tools/deploy/deploy.py --int8 CALIB_DIR``, the deployment benchmark's)."""
from __future__ import annotations

import os
import os.path as osp
from typing import Callable, Dict, Iterable, List, Sequence, Tuple

import numpy as np


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


def quantize_random(path: str, shape: Sequence[int], n: int = 4, input_name: str = 'input',
                    out: str = None) -> str:
    """Static int8 of ``path`` calibrated on ``n`` random inputs of ``shape`` (speed only:
    the deployment benchmark; accuracy needs real images, :func:`calibration_batches`)."""
    rng = np.random.default_rng(0)
    batches = ({input_name: rng.standard_normal(tuple(shape), np.float32)} for _ in range(n))
    return quantize_qdq(path, out or path.replace('.onnx', '-int8.onnx'), batches)


def calibration_images(folder: str, n: int) -> List[str]:
    """Up to ``n`` images of ``folder`` and its subfolders, evenly spaced over the sorted
    list (what ``--int8 CALIB_DIR --int8-images N`` calibrates on)."""
    from parc_mm.apis.images import list_images
    images = list_images(folder, recursive=True)
    if len(images) > n:
        images = [images[i * len(images) // n] for i in range(n)]
    return images


def calibration_batches(images: Sequence[str], preprocess: Callable[[str], np.ndarray],
                        want: Sequence[int]) -> Tuple[List[np.ndarray], List[Dict[str, str]]]:
    """``(batches, skipped)``: each image preprocessed as at inference (``preprocess``), every
    one checked before calibration starts; an image that cannot be read, preprocessed or
    does not give the graph's input shape ``want`` is skipped with the reason (logged), and
    none usable is an error naming one."""
    from mmengine.logging import print_log

    from parc_mm.apis.images import check_image
    used, skipped = [], []
    for img in images:
        problem = check_image(img)
        if problem is None:
            try:
                batch = preprocess(img)
            except Exception as e:  # noqa: BLE001 - one bad image must not stop the rest
                problem = f'cannot be preprocessed ({type(e).__name__}: {e})'
            else:
                if list(batch.shape) != list(want):
                    problem = (f'gives a {list(batch.shape)} input, the graph takes {list(want)} '
                               '(the test pipeline does not resize it to the exported size)')
        if problem is None:
            used.append(batch)
        else:
            skipped.append(dict(image=img, reason=problem))
    for s in skipped:
        print_log(f'int8 calibration: skipping {s["image"]}: it {s["reason"]}',
                  logger='current', level=30)
    if not images:
        raise ValueError('int8 needs calibration images: --int8 CALIB_DIR (a folder of '
                         'images like the ones the model will see, ~20-200)')
    if not used:
        raise ValueError(f'int8: none of the {len(images)} calibration images can be used '
                         f'(e.g. {skipped[0]["image"]}: it {skipped[0]["reason"]})')
    return used, skipped


def pipeline_preprocessor(cfg, model) -> Callable[[str], np.ndarray]:
    """``image path -> graph input``: the config's test pipeline (without annotation loading)
    and the model's data preprocessor, as a plain export's inference feeds the graph."""
    import torch
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import DefaultScope

    from parc_mm.apis.tasks import TASKS, task_of
    spec = TASKS[task_of(cfg)]
    steps = [t for t in (cfg.get('test_pipeline') or cfg.test_dataloader.dataset.pipeline)
             if not str(t.get('type', '')).startswith('LoadAnnotations')]
    with DefaultScope.overwrite_default_scope(spec.scope):
        pipeline = Compose(steps)

    def run(img: str) -> np.ndarray:
        with DefaultScope.overwrite_default_scope(spec.scope), torch.no_grad():
            data = pseudo_collate([pipeline(dict(img_path=img))])
            return model.data_preprocessor(data, False)['inputs'].float().numpy()

    return run


__all__ = ['calibration_batches', 'calibration_images', 'pipeline_preprocessor', 'quantize_qdq',
           'quantize_random']

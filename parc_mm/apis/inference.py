"""Inference with any parc_mm config through the libraries' own Inferencers.

The task follows the config's ``default_scope``: mmdet's ``DetInferencer``, mmseg's
``MMSegInferencer`` or mmpretrain's ``ImageClassificationInferencer``. Each image gets a drawn
copy under ``<out_dir>/vis/`` and one ``<out_dir>/predictions.json`` lists the results.
"""
from __future__ import annotations

import glob
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Union

from parc_mm.apis.images import IMG_EXTS, MAX_PIXELS, check_image, list_images  # noqa: F401
from parc_mm.apis.tasks import TASKS


def _prepare(config: str):
    """The config (custom_imports done, pretrained downloads off: the weights come from the
    checkpoint) and its task."""
    from parc_mm.apis.tasks import drop_pretrained, load_config, task_of
    cfg = load_config(config)
    drop_pretrained(cfg.model)
    return cfg, task_of(cfg)


def _dump(obj: Any) -> Any:
    import numpy as np
    import torch
    if isinstance(obj, dict):
        return {k: _dump(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_dump(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def unique_names(images: Sequence[str]) -> List[str]:
    """A distinct file stem for each image's drawing: its own stem, then with its extension
    (``a.jpg`` / ``a.png``), then with its folder (class folders repeat names), then numbered."""
    def stems(fn):
        return [fn(p) for p in images]

    names = stems(lambda p: osp.splitext(osp.basename(p))[0])
    for fn in (lambda p: osp.basename(p).replace('.', '_'),
               lambda p: f'{osp.basename(osp.dirname(osp.abspath(p)))}_'
                         f'{osp.basename(p).replace(".", "_")}'):
        if len(set(names)) == len(names):
            break
        alt = stems(fn)
        names = [alt[i] if names.count(n) > 1 else n for i, n in enumerate(names)]
    seen: Dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f'{n}_{k}')
    return out


def config_classes(cfg) -> Optional[tuple]:
    """The class names the config's test dataset declares (its ``metainfo``, else its dataset
    class's ``METAINFO``), without building the dataset; None when it names none."""
    import importlib

    from parc_mm.apis.tasks import task_of
    ds = (cfg.get('test_dataloader') or cfg.get('val_dataloader') or {}).get('dataset', {})
    while isinstance(ds, dict) and 'dataset' in ds and 'metainfo' not in ds:
        ds = ds['dataset']  # dataset wrappers (RepeatDataset, ...)
    if not isinstance(ds, dict):
        return None
    classes = (ds.get('metainfo') or {}).get('classes')
    if classes is None and isinstance(ds.get('type'), str):
        scope = TASKS[task_of(cfg)].scope
        from mmengine.registry import DefaultScope
        with DefaultScope.overwrite_default_scope(scope):
            registry = importlib.import_module(f'{scope}.registry').DATASETS
            cls = registry.get(ds['type'])
        classes = getattr(cls, 'METAINFO', {}).get('classes') if cls is not None else None
    return tuple(classes) if classes else None


def _set_classes(inf, cfg, meta: dict) -> tuple:
    """The model's and the visualizer's class names: from the checkpoint, else the config,
    never another dataset's defaults (the Inferencers fall back to COCO / ImageNet names)."""
    from mmengine.logging import print_log
    # classes and palette only: the Inferencers pass dataset_meta on to their visualizers,
    # which take no other keys (a Runner's meta also holds label_map, reduce_zero_label ...)
    ds_meta = {k: v for k, v in (meta.get('dataset_meta') or {}).items()
               if k in ('classes', 'palette')}
    if not ds_meta.get('classes'):
        classes = config_classes(cfg)
        if classes is None:
            n = _num_classes(cfg)
            classes = tuple(f'class_{i}' for i in range(n)) if n else ()
            print_log('infer: neither the checkpoint nor the config names the classes; '
                      'using class_0, class_1, ...', logger='current', level=30)
        ds_meta['classes'] = classes
    old = dict(getattr(inf.model, 'dataset_meta', None) or {})
    if old.get('palette') is not None and len(old['palette']) >= len(ds_meta['classes']):
        ds_meta.setdefault('palette', old['palette'][:len(ds_meta['classes'])])
    inf.model.dataset_meta = ds_meta
    vis = getattr(inf, 'visualizer', None)
    if vis is not None and hasattr(vis, 'dataset_meta'):
        vis.dataset_meta = ds_meta
    return tuple(ds_meta['classes'])


def _num_classes(cfg) -> int:
    from parc_mm.apis.tasks import iter_dicts
    ns = [d['num_classes'] for d in iter_dicts(cfg.get('model', {}))
          if isinstance(d.get('num_classes'), int)]
    return max(ns) if ns else 0


def _write_json(path: str, obj) -> None:
    from parc_mm.utils.checkpoint import atomic_write
    atomic_write(path, lambda f: json.dump(obj, f, indent=1), mode='w')


def infer(config: str, checkpoint: Optional[str], inputs: Union[str, Sequence[str]],
          out_dir: str, device: str = 'cpu', score_thr: float = 0.3,
          allow_partial: bool = False, max_pixels: int = MAX_PIXELS,
          skipped: Optional[List[Dict[str, str]]] = None, allow_random_weights: bool = False,
          allow_unverified: bool = False) -> List[Dict[str, Any]]:
    """Run the config's model (weights from ``checkpoint``; or in ONNX Runtime: the exported
    ``model.onnx`` / its export folder, or a folder ``tools/deploy/deploy.py`` (mmdeploy)
    wrote / an ONNX file in it; :func:`parc_mm.deploy.record.artefact_of` tells which) on
    ``inputs``;
    save drawings to
    ``out_dir/vis`` and the results to ``out_dir/predictions.json``; return the results
    (one dict per image: ``image``, ``task``, ``vis`` (the drawing) and the predictions).

    A checkpoint that does not fit the model is refused (``allow_partial`` to run anyway); an
    export is verified against its manifest and record first (files, sizes and sha256, the
    task, the class count; random weights refused without ``allow_random_weights``; an
    ``.onnx`` file no export wrote refused without ``allow_unverified``);
    images that cannot be decoded or exceed ``max_pixels`` are skipped, named in
    ``skipped`` (and ``out_dir/skipped.json``), and every other image still gets its result.
    Each drawing has its own file (``a.jpg`` and ``a.png`` do not overwrite each other).
    ``predictions.json`` is rewritten after every image: a run stopped midway keeps what it
    did."""
    import shutil
    import tempfile

    from mmengine.logging import print_log
    from mmengine.registry import DefaultScope

    from parc_mm.apis.runner import check_checkpoint_fits
    from parc_mm.deploy.ort import open_weights
    from parc_mm.utils.checkpoint import checkpoint_meta
    images = list_images(inputs)
    cfg, task = _prepare(config)
    # an export or a deploy folder: the config to build with, the class names and how its
    # network replaces the model's; None for a checkpoint
    weights = open_weights(checkpoint, config, cfg, task, images, device, allow_unverified,
                           allow_random_weights, _num_classes(cfg) or None)
    if weights is None:
        meta = checkpoint_meta(checkpoint)
    else:
        cfg, meta, checkpoint = weights.cfg, weights.meta, None
    vis_dir = osp.join(out_dir, 'vis')
    os.makedirs(vis_dir, exist_ok=True)
    names = unique_names(images)
    spec = TASKS[task]
    skipped = [] if skipped is None else skipped
    results: List[Dict[str, Any]] = []
    with DefaultScope.overwrite_default_scope(spec.scope):
        inf = spec.build_inferencer(cfg, checkpoint, device)
        if checkpoint is not None:
            check_checkpoint_fits(inf.model, checkpoint, allow_partial)
        classes = _set_classes(inf, cfg, meta)
        if weights is not None:
            weights.attach(inf.model)
        else:
            from parc_mm.ops import inference_mode
            inference_mode(inf.model, True)
        for img, name in zip(images, names):
            problem = check_image(img, max_pixels)
            if problem is not None:
                skipped.append(dict(image=img, reason=problem))
                print_log(f'infer: skipping {img}: it {problem}', logger='current', level=30)
                continue
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    r = _PER_IMAGE[task](inf, img, tmp, score_thr, classes)
                except Exception as e:  # noqa: BLE001 - one bad input must not lose the rest
                    skipped.append(dict(image=img, reason=f'failed: {type(e).__name__}: {e}'))
                    print_log(f'infer: skipping {img}: {type(e).__name__}: {e}',
                              logger='current', level=30)
                    continue
                drawn = sorted(glob.glob(osp.join(tmp, 'vis', '*')))
                if drawn:
                    r['vis'] = osp.join(vis_dir, name + osp.splitext(drawn[0])[1])
                    shutil.move(drawn[0], r['vis'])
                if '_mask' in r:  # a segmentation map: saved as a label PNG
                    import cv2
                    import numpy as np
                    os.makedirs(osp.join(out_dir, 'pred'), exist_ok=True)
                    r['pred_png'] = osp.join(out_dir, 'pred', name + '.png')
                    cv2.imwrite(r['pred_png'], r.pop('_mask').astype(np.uint8))
            results.append(_dump(dict(image=img, task=task, **r)))
            _write_json(osp.join(out_dir, 'predictions.json'), results)
    _write_json(osp.join(out_dir, 'predictions.json'), results)
    if skipped:
        _write_json(osp.join(out_dir, 'skipped.json'), skipped)
    return results


def _detect(inf, img: str, tmp: str, score_thr: float, classes: tuple) -> dict:
    pred = inf(img, out_dir=tmp, pred_score_thr=score_thr, no_save_pred=True)['predictions'][0]
    keep = [i for i, s in enumerate(pred['scores']) if s >= score_thr]
    return dict(labels=[pred['labels'][i] for i in keep],
                classes=[_name(classes, pred['labels'][i]) for i in keep],
                scores=[pred['scores'][i] for i in keep],
                bboxes=[pred['bboxes'][i] for i in keep])


def _segment(inf, img: str, tmp: str, score_thr: float, classes: tuple) -> dict:
    import numpy as np
    mask = inf(img, out_dir=tmp, img_out_dir='vis', pred_out_dir='')['predictions']
    ids, counts = np.unique(mask, return_counts=True)
    return dict(_mask=mask, class_fractions={
        _name(classes, i): round(float(c) / mask.size, 5) for i, c in zip(ids, counts)})


def _classify(inf, img: str, tmp: str, score_thr: float, classes: tuple) -> dict:
    vis = osp.join(tmp, 'vis')
    os.makedirs(vis, exist_ok=True)
    pred = inf(img, show_dir=vis)[0]
    label = int(pred['pred_label'])
    scores = [float(v) for v in pred['pred_scores']]
    top = sorted(range(len(scores)), key=lambda i: -scores[i])[:5]
    return dict(pred_label=label, pred_class=_name(classes, label),
                pred_score=float(pred['pred_score']),
                top5=[dict(label=i, cls=_name(classes, i), score=scores[i]) for i in top])


# one image through the task's Inferencer; its drawing goes to ``tmp/vis/``
_PER_IMAGE = {'det': _detect, 'seg': _segment, 'cls': _classify}


def _name(classes: tuple, i) -> str:
    i = int(i)
    return classes[i] if 0 <= i < len(classes) else str(i)

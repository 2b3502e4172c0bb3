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

IMG_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def list_images(inputs: Union[str, Sequence[str]]) -> List[str]:
    """Image files of a file, a folder (not recursive) or a list of either, sorted."""
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    out: List[str] = []
    for item in items:
        if osp.isdir(item):
            out += sorted(p for p in glob.glob(osp.join(item, '*'))
                          if p.lower().endswith(IMG_EXTS))
        elif osp.isfile(item):
            out.append(item)
        else:
            raise FileNotFoundError(f'Input {item} is neither an image file nor a folder')
    if not out:
        raise FileNotFoundError(f'No images ({", ".join(IMG_EXTS)}) in {inputs}')
    for p in out:
        if osp.getsize(p) == 0:
            raise ValueError(f'Image {p} is empty (0 bytes)')
    return out


def _prepare(config: str):
    """The config (custom_imports done, pretrained downloads off: the weights come from the
    checkpoint) and its task."""
    from parc_mm.utils.config import drop_pretrained, load_config, task_of
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


def infer(config: str, checkpoint: Optional[str], inputs: Union[str, Sequence[str]],
          out_dir: str, device: str = 'cpu', score_thr: float = 0.3) -> List[Dict[str, Any]]:
    """Run the config's model (weights from ``checkpoint``) on ``inputs``; save drawings to
    ``out_dir/vis`` and the results to ``out_dir/predictions.json``; return the results
    (one dict per image: ``image``, ``task``, ``vis`` (the drawing) and the predictions)."""
    from mmengine.registry import DefaultScope

    from parc_mm.utils.checkpoint import verify_checkpoint
    images = list_images(inputs)
    if checkpoint is not None:
        verify_checkpoint(checkpoint)
    cfg, task = _prepare(config)
    vis_dir = osp.join(out_dir, 'vis')
    os.makedirs(vis_dir, exist_ok=True)
    results: List[Dict[str, Any]] = []
    if task == 'det':
        from mmdet.apis import DetInferencer
        with DefaultScope.overwrite_default_scope('mmdet'):
            inf = DetInferencer(model=cfg, weights=checkpoint, device=device,
                                show_progress=False)
            out = inf(images, out_dir=out_dir, pred_score_thr=score_thr, no_save_pred=True)
        classes = inf.model.dataset_meta.get('classes', ())
        for img, pred in zip(images, out['predictions']):
            keep = [i for i, s in enumerate(pred['scores']) if s >= score_thr]
            results.append(dict(
                image=img, task='det', vis=osp.join(vis_dir, osp.basename(img)),
                labels=[pred['labels'][i] for i in keep],
                classes=[classes[pred['labels'][i]] for i in keep],
                scores=[pred['scores'][i] for i in keep],
                bboxes=[pred['bboxes'][i] for i in keep]))
    elif task == 'seg':
        import cv2
        import numpy as np
        from mmseg.apis import MMSegInferencer
        with DefaultScope.overwrite_default_scope('mmseg'):
            inf = MMSegInferencer(model=cfg, weights=checkpoint, device=device)
            out = inf(images, out_dir=out_dir, img_out_dir='vis', pred_out_dir='')
        masks = out['predictions'] if len(images) > 1 else [out['predictions']]
        classes = inf.model.dataset_meta.get('classes', ())
        os.makedirs(osp.join(out_dir, 'pred'), exist_ok=True)
        for img, mask in zip(images, masks):
            # the label map under the image's own name (mmseg numbers its files instead)
            png = osp.join(out_dir, 'pred', osp.splitext(osp.basename(img))[0] + '.png')
            cv2.imwrite(png, mask.astype(np.uint8))
            ids, counts = np.unique(mask, return_counts=True)
            results.append(dict(
                image=img, task='seg', pred_png=png, vis=osp.join(vis_dir, osp.basename(img)),
                class_fractions={classes[i] if i < len(classes) else str(i):
                                 round(float(c) / mask.size, 5) for i, c in zip(ids, counts)}))
    else:
        import shutil
        import tempfile

        from mmpretrain.apis import ImageClassificationInferencer
        stems = [osp.splitext(osp.basename(i))[0] for i in images]
        unique = len(set(stems)) == len(stems)
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            inf = ImageClassificationInferencer(model=cfg, pretrained=checkpoint or False,
                                                device=device)
            for img, stem in zip(images, stems):
                # mmpretrain names a drawing by the image's stem: class folders repeat stems
                name = stem if unique else f'{osp.basename(osp.dirname(img))}_{stem}'
                with tempfile.TemporaryDirectory() as tmp:
                    pred = inf(img, show_dir=tmp)[0]
                    drawn = glob.glob(osp.join(tmp, '*'))
                    vis = osp.join(vis_dir, name + osp.splitext(drawn[0])[1])
                    shutil.move(drawn[0], vis)
                results.append(dict(image=img, task='cls', vis=vis,
                                    pred_label=int(pred['pred_label']),
                                    pred_class=pred.get('pred_class'),
                                    pred_score=float(pred['pred_score'])))
    results = _dump(results)
    with open(osp.join(out_dir, 'predictions.json'), 'w') as f:
        json.dump(results, f, indent=1)
    return results

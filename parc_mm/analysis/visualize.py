"""Draw a few validation predictions of a trained demo model (uses the libraries' own
inference APIs: mmdet ``inference_detector``, mmseg ``inference_model``, mmpretrain
``inference_model``)."""
from __future__ import annotations

import glob
import os.path as osp
from typing import List

import numpy as np


def _val_images(task: str, data_root: str, n: int) -> List[str]:
    from parc_mm.apis.tasks import TASKS
    return sorted(glob.glob(osp.join(data_root, TASKS[task].val_images)))[:n]


def _draw_det(ax, apis, model, path: str, meta: dict, score_thr: float) -> None:
    import matplotlib.pyplot as plt
    res = apis.inference_detector(model, path).pred_instances
    keep = res.scores >= score_thr
    for box, lab, sc, m in zip(res.bboxes[keep], res.labels[keep], res.scores[keep],
                               res.masks[keep]):
        colour = np.array(meta['palette'][int(lab)]) / 255
        overlay = np.zeros((*m.shape, 4))
        overlay[m.numpy().astype(bool)] = [*colour, 0.45]
        ax.imshow(overlay)
        x0, y0, x1, y1 = box.tolist()
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color=colour,
                                   lw=1.5))
        ax.text(x0, y0, f'{meta["classes"][int(lab)]} {float(sc):.2f}', color='white',
                fontsize=6, bbox=dict(facecolor=colour, alpha=0.7, pad=1, lw=0))


def _draw_seg(ax, apis, model, path: str, meta: dict, score_thr: float) -> None:
    seg = apis.inference_model(model, path).pred_sem_seg.data[0].numpy()
    pal = np.array(meta['palette']) / 255
    overlay = np.concatenate([pal[seg], np.full((*seg.shape, 1), 0.5)], -1)
    overlay[seg == 0, 3] = 0  # background stays visible
    ax.imshow(overlay)


def _draw_cls(ax, apis, model, path: str, meta: dict, score_thr: float) -> None:
    res = model(path)[0]
    truth = osp.basename(osp.dirname(path))
    ax.set_title(f'pred {res["pred_class"]} ({res["pred_score"]:.2f})\ntrue {truth}',
                 fontsize=8)


# per task: how its library builds a model for drawing, and how one image is drawn
_MODEL = {
    'det': lambda apis, cfg, ckpt: apis.init_detector(cfg, ckpt, device='cpu'),
    'seg': lambda apis, cfg, ckpt: apis.init_model(cfg, ckpt, device='cpu'),
    'cls': lambda apis, cfg, ckpt: apis.ImageClassificationInferencer(
        model=cfg, pretrained=ckpt, device='cpu'),
}
_DRAW = {'det': _draw_det, 'seg': _draw_seg, 'cls': _draw_cls}


def draw_predictions(task: str, config: str, checkpoint: str, data_root: str, out: str,
                     n: int = 6, score_thr: float = 0.3, meta: dict = None) -> str:
    """``meta``: classes and palette of the data (default: the synthetic shapes')."""
    import importlib

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from mmengine.registry import DefaultScope
    from PIL import Image

    from parc_mm.apis.tasks import TASKS
    from parc_mm.datasets import synthetic
    scope = TASKS[task].scope
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    apis = importlib.import_module(f'{scope}.apis')
    imgs = _val_images(task, data_root, n)
    meta = meta or synthetic.metainfo(task)
    fig, axes = plt.subplots(1, len(imgs), figsize=(3.2 * len(imgs), 3.2))
    axes = np.atleast_1d(axes)
    with DefaultScope.overwrite_default_scope(scope):
        model = _MODEL[task](apis, config, checkpoint)
        for ax, path in zip(axes, imgs):
            img = np.array(Image.open(path).convert('RGB'))
            ax.imshow(img)
            ax.axis('off')
            _DRAW[task](ax, apis, model, path, meta, score_thr)
    fig.suptitle(f'{task}: predictions on validation images', fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out

"""Real-image data: Fashion-MNIST garments, and scenes built from them, in the libraries' formats.

The source is the original Fashion-MNIST IDX files (70,000 real 28x28 garment photos, 10
classes, MIT licence), as Debian's ``dataset-fashion-mnist`` package installs them
(``/usr/share/datasets/fashion-mnist``; another folder via ``PARC_FASHION_MNIST`` or
``--source``). Nothing is downloaded. One deterministic builder writes under ``root``:

* ``mnist/``: the IDX files un-gzipped, as mmpretrain's ``FashionMNIST`` reads them (the
  plain 10-class task: the control, where a global kernel is not expected to help);
* ``cls/{train,val}/<class>/*.png`` (and ``cls/{train,val}_parts.json``: each scene's two
  classes and the arrow): **the pointer task**, a global-context classification.
  A 48x96 canvas holds two garments of different classes at its two ends and, between them,
  an arrow pointing at one of them; the label is the class of the garment the arrow points at.
  No local window decides it: a window on a garment sees a class that is the label exactly
  half of the time, a window on the arrow sees no class (so a model that reads garments but
  does not relate them to the arrow is capped at half its garment accuracy);
* ``coco/``: scenes of 2-4 garments (rescaled, non-overlapping, on a noisy background with
  clutter) with COCO instances (boxes and polygon masks from the garment pixels) for mmdet;
* ``ade/``: the same scenes as ADE20K-style label maps (0 = unlabelled, 1 = background,
  2.. = garment classes; ``reduce_zero_label=True``) for mmseg.

Training items come from Fashion-MNIST's train split, validation items from its test split
(no garment photo is in both). Class ids follow :data:`CLASSES` (alphabetical, so
mmpretrain's class-folder numbering agrees) in ``cls``/``coco``/``ade``; ``mnist`` keeps the
original ids (:data:`MNIST_CLASSES`).

Command: ``python -m parc_mm.datasets.fashion data/fashion``.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Tuple

import numpy as np

from .synthetic import NotOurFolderError, _read_marker, write_scenes
from .synthetic import check_target as _check

SOURCE = '/usr/share/datasets/fashion-mnist'
SOURCE_ENV = 'PARC_FASHION_MNIST'
INSTALL_HINT = ('install the real images with `apt-get install dataset-fashion-mnist` (Debian / '
                'Ubuntu; tools/setup_env.sh does it where apt is usable), or point '
                f'{SOURCE_ENV} at a folder holding the four original Fashion-MNIST '
                '*-ubyte.gz files')
FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
         'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}
# Fashion-MNIST's own label order (mmpretrain's FashionMNIST numbers classes this way)
MNIST_CLASSES = ('tshirt_top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt',
                 'sneaker', 'bag', 'ankle_boot')
CLASSES: Tuple[str, ...] = tuple(sorted(MNIST_CLASSES))
_TO_OURS = np.array([CLASSES.index(c) for c in MNIST_CLASSES])
VERSION = 2  # bump when the output changes: an older build is rebuilt
MARKER = '.parc_mm_fashion'
WHAT = 'Fashion-MNIST scene builder'
POINTER_SIZE = (48, 96)
SCENE_SIZE = (128, 128)
ARROW = 11  # side of the arrow marker (pixels)


class MissingSourceError(FileNotFoundError):
    """The Fashion-MNIST IDX files are not installed."""


def source_dir(source: Optional[str] = None) -> str:
    return source or os.environ.get(SOURCE_ENV) or SOURCE


def available(source: Optional[str] = None) -> bool:
    """Whether the four Fashion-MNIST files are readable under ``source``."""
    src = source_dir(source)
    return all(osp.isfile(osp.join(src, f + '.gz')) or osp.isfile(osp.join(src, f))
               for pair in FILES.values() for f in pair)


def _read_idx(path: str, offset: int) -> np.ndarray:
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load(split: str, source: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8, labels (N,) in :data:`MNIST_CLASSES` order) of 'train' /
    'test'."""
    src = source_dir(source)
    if not available(src):
        raise MissingSourceError(f'Fashion-MNIST is not under {src} (needs '
                                 f'{", ".join(f + ".gz" for p in FILES.values() for f in p)}): '
                                 f'{INSTALL_HINT}.')

    def path(name):
        p = osp.join(src, name + '.gz')
        return p if osp.isfile(p) else osp.join(src, name)

    img_f, lab_f = FILES[split]
    images = _read_idx(path(img_f), 16).reshape(-1, 28, 28)
    labels = _read_idx(path(lab_f), 8)
    if len(images) != len(labels) or labels.max() > 9:
        raise MissingSourceError(f'{src}: {img_f} / {lab_f} do not form one Fashion-MNIST split '
                                 f'({len(images)} images, {len(labels)} labels).')
    return images, labels


# --- the pointer task -------------------------------------------------------------------------

def _arrow(points_left: bool) -> np.ndarray:
    import cv2
    s = ARROW
    m = np.zeros((s, s), np.uint8)
    tip, back = (0, s - 1) if points_left else (s - 1, 0)
    cv2.fillPoly(m, [np.array([[back, 0], [tip, s // 2], [back, s - 1]], np.int32)], 255)
    return m


def _noise_background(rng, h: int, w: int) -> np.ndarray:
    return np.clip(rng.normal(20, 8, (h, w)), 0, 255).astype(np.float32)


def _garment(rng, image: np.ndarray, lo: int, hi: int) -> np.ndarray:
    import cv2
    s = int(rng.integers(lo, hi + 1))
    return cv2.resize(image, (s, s), interpolation=cv2.INTER_LINEAR)


def render_pointer(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray,
                   size: Tuple[int, int] = POINTER_SIZE):
    """One pointer scene: (image (H, W) uint8, label in :data:`CLASSES`, details dict).

    Garment A (left end) and garment B (right end) are of different classes; the arrow in
    the middle column points at one of them, with probability 1/2 each, independently of the
    classes, so either garment alone predicts the label only half of the time."""
    h, w = size
    img = _noise_background(rng, h, w)
    i = int(rng.integers(len(images)))
    while True:
        j = int(rng.integers(len(images)))
        if labels[j] != labels[i]:
            break
    # each garment stays within 37 pixels of its end of the canvas (on the 48x192 canvas too:
    # only the distance to the arrow grows)
    margin = min(w // 2 - ARROW, 37)
    placed = []
    for k, idx in enumerate((i, j)):
        g = _garment(rng, images[idx], 24, min(32, margin, h))
        s = g.shape[0]
        x0 = int(rng.integers(0, margin - s + 1)) if k == 0 else \
            int(rng.integers(w - margin, w - s + 1))
        y0 = int(rng.integers(0, h - s + 1))
        img[y0:y0 + s, x0:x0 + s] = np.maximum(img[y0:y0 + s, x0:x0 + s], g)
        placed.append((x0, y0, s))
    left = bool(rng.integers(2))
    ax = w // 2 - ARROW // 2 + int(rng.integers(-3, 4))
    ay = int(rng.integers(0, h - ARROW + 1))
    img[ay:ay + ARROW, ax:ax + ARROW] = np.maximum(img[ay:ay + ARROW, ax:ax + ARROW],
                                                   _arrow(left))
    target = i if left else j
    label = int(_TO_OURS[labels[target]])
    return img.astype(np.uint8), label, dict(
        left=int(_TO_OURS[labels[i]]), right=int(_TO_OURS[labels[j]]), points_left=left,
        boxes=placed, arrow=(ax, ay))


def pointer_label(left_class: int, right_class: int, points_left: bool) -> int:
    """The label of a pointer scene from its parts (the task's definition)."""
    return left_class if points_left else right_class


# --- scenes for detection and segmentation ----------------------------------------------------

def render_scene(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray,
                 size: Tuple[int, int] = SCENE_SIZE, n_obj: Tuple[int, int] = (2, 4),
                 clutter: bool = True):
    """One scene: (image (H, W) uint8, [(class in CLASSES, instance mask)]).

    Garments are rescaled to 28-48 pixels and placed without overlap; the masks are the
    garment's own pixels (Fashion-MNIST photos are on black: intensity > 24 after rescaling).
    ``clutter`` adds faint blurred blobs, so background is not simply 'dark'."""
    import cv2
    h, w = size
    img = _noise_background(rng, h, w)
    if clutter:
        for _ in range(int(rng.integers(2, 6))):
            cv2.circle(img, (int(rng.integers(w)), int(rng.integers(h))),
                       int(rng.integers(4, 14)), float(rng.uniform(30, 60)), -1)
        img = cv2.GaussianBlur(img, (0, 0), 2.0) + rng.normal(0, 4, (h, w))
    taken = np.zeros((h, w), bool)
    objects: List[Tuple[int, np.ndarray]] = []
    for _ in range(int(rng.integers(n_obj[0], n_obj[1] + 1))):
        idx = int(rng.integers(len(images)))
        g = _garment(rng, images[idx], 28, 48)
        s = g.shape[0]
        for _try in range(20):
            x0, y0 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
            if not taken[max(0, y0 - 2):y0 + s + 2, max(0, x0 - 2):x0 + s + 2].any():
                break
        else:
            continue
        m = np.zeros((h, w), np.uint8)
        m[y0:y0 + s, x0:x0 + s] = g > 24
        if m.sum() < 30:
            continue
        taken[y0:y0 + s, x0:x0 + s] = True
        region = img[y0:y0 + s, x0:x0 + s]
        img[y0:y0 + s, x0:x0 + s] = np.where(g > 24, g, np.maximum(region, g))
        objects.append((int(_TO_OURS[labels[idx]]), m))
    return np.clip(img, 0, 255).astype(np.uint8), objects


# --- writing ----------------------------------------------------------------------------------

def _write_mnist(root: str, source: str) -> None:
    d = osp.join(root, 'mnist')
    os.makedirs(d)
    for pair in FILES.values():
        for name in pair:
            src = osp.join(source, name + '.gz')
            with (gzip.open(src, 'rb') if osp.isfile(src) else
                  open(osp.join(source, name), 'rb')) as fi, open(osp.join(d, name), 'wb') as fo:
                shutil.copyfileobj(fi, fo)


def _write_pointer(root: str, split: str, n: int, rng, images, labels,
                   folder: str = 'cls', size: Tuple[int, int] = POINTER_SIZE) -> None:
    import cv2
    for c in CLASSES:
        os.makedirs(osp.join(root, folder, split, c), exist_ok=True)
    counts = dict.fromkeys(CLASSES, 0)
    parts = {}
    for _ in range(n):
        img, label, d = render_pointer(rng, images, labels, size)
        c = CLASSES[label]
        name = f'{c}/{counts[c]:05d}.png'
        cv2.imwrite(osp.join(root, folder, split, name), img)
        parts[name] = dict(left=d['left'], right=d['right'], points_left=d['points_left'],
                           arrow=list(d['arrow']))
        counts[c] += 1
    # what each scene is made of (the analysis of what a model got right reads it)
    with open(osp.join(root, folder, f'{split}_parts.json'), 'w') as f:
        json.dump(parts, f)


def _write_scenes(root: str, split: str, n: int, rng, images, labels) -> None:
    import cv2
    write_scenes(root, split, (render_scene(rng, images, labels) for _ in range(n)),
                 SCENE_SIZE, CLASSES, '.png', cv2.imwrite)


def check_target(root: str) -> None:
    """Refuse (:class:`NotOurFolderError`) a ``root`` this builder may not replace (see
    :func:`parc_mm.datasets.synthetic.check_target`)."""
    _check(root, MARKER, VERSION, WHAT, 'data/fashion')


WIDE_SIZE = (48, 192)
DEFAULTS = dict(pointer=(8000, 2000), scenes=(600, 100), wide=(0, 0), seed=0)


def build(root: str, pointer: Tuple[int, int] = DEFAULTS['pointer'],
          scenes: Tuple[int, int] = DEFAULTS['scenes'], wide: Tuple[int, int] = DEFAULTS['wide'],
          seed: int = DEFAULTS['seed'], source: Optional[str] = None) -> str:
    """Write the real-image datasets under ``root`` (deterministic for given arguments).

    ``pointer`` / ``scenes``: (train, val) counts; ``wide``: (train, val) counts of the
    pointer task on a 48x192 canvas in ``cls_wide/`` (none by default; the experiment's
    question of whether a map wider than the kernel matters). Only into a missing or empty folder or
    over an earlier build (never a folder of anyone else's files); staged beside ``root`` and
    swapped in whole, so a killed run leaves the old data or the new."""
    from parc_mm.utils.fileio import artefact_folder, current_umask, expand
    if str(root).strip():
        root = expand(root)
    check_target(root)
    src = source_dir(source)
    tr_x, tr_y = load('train', src)
    te_x, te_y = load('test', src)
    with artefact_folder(root, 'fashion', owned=True) as tmp:
        os.chmod(tmp, 0o777 & ~current_umask())
        rng = np.random.default_rng(seed)
        _write_mnist(tmp, src)
        _write_pointer(tmp, 'train', pointer[0], rng, tr_x, tr_y)
        _write_pointer(tmp, 'val', pointer[1], rng, te_x, te_y)
        _write_scenes(tmp, 'train', scenes[0], rng, tr_x, tr_y)
        _write_scenes(tmp, 'val', scenes[1], rng, te_x, te_y)
        if wide[0] or wide[1]:  # last: the rest of the data is the same with or without it
            _write_pointer(tmp, 'train', wide[0], rng, tr_x, tr_y, 'cls_wide', WIDE_SIZE)
            _write_pointer(tmp, 'val', wide[1], rng, te_x, te_y, 'cls_wide', WIDE_SIZE)
        spec = dict(version=VERSION, pointer=list(pointer), scenes=list(scenes),
                    wide=list(wide), seed=seed)
        with open(osp.join(tmp, MARKER), 'w') as f:
            json.dump(spec, f)
        check_target(root)  # again: someone may have put files there while we wrote
    return root


def problems(root: str) -> List[str]:
    """What is missing or damaged in a build under ``root`` (empty when complete), judged by
    the writer's manifest (every file it wrote, with its size: a stat per file, no hashing,
    as every dataset construction calls it)."""
    from parc_mm.utils.fileio import MANIFEST, read_manifest
    man = read_manifest(root)
    if man is None:
        return [f'no readable {MANIFEST}']
    out = []
    for name, info in man['files'].items():
        full = osp.join(root, name)
        try:
            size = osp.getsize(full)
        except OSError:
            out.append(f'{full} is missing')
            continue
        if size != info.get('size'):
            out.append(f'{full} has {size} bytes, {info.get("size")} were written')
    return out


def ensure(root: str, **kwargs) -> str:
    """Build the data under ``root`` unless a complete build is there (of the given
    arguments; any complete build when none are given)."""
    from mmengine.logging import print_log

    from parc_mm.utils.fileio import expand
    if str(root).strip():
        root = expand(root)
    spec = None if osp.islink(root) else _read_marker(root, MARKER)
    # only the arguments given are compared: a dataset class (no arguments) takes any complete
    # build, e.g. the small one of a quick run, instead of rebuilding it at the defaults
    want = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()
            if k != 'source'}
    if spec is not None and spec.get('version') == VERSION and all(
            spec.get(k) == v for k, v in want.items()):
        bad = problems(root)
        if not bad:
            return root
        print_log(f'parc_mm: the Fashion-MNIST data under {root} is incomplete or damaged '
                  f'({"; ".join(bad[:3])}); rebuilding it', logger='current', level=30)
    print_log(f'parc_mm: building the real-image (Fashion-MNIST) data under {root} ...',
              logger='current')
    return build(root, **kwargs)


def metainfo(task: str) -> Dict[str, tuple]:
    """``metainfo`` for the dataset configs of each task."""
    rng = np.random.default_rng(7)
    classes = (('background', ) + CLASSES) if task == 'seg' else CLASSES
    palette = [tuple(int(v) for v in rng.integers(40, 256, 3)) for _ in classes]
    return dict(classes=classes, palette=palette)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description='Write the parc_mm real-image (Fashion-MNIST) '
                                'datasets: the pointer task, COCO / ADE20K scenes, raw IDX.')
    p.add_argument('root', nargs='?', default='data/fashion')
    p.add_argument('--pointer', type=int, nargs=2, default=DEFAULTS['pointer'],
                   metavar=('TRAIN', 'VAL'), help='pointer-task images per split')
    p.add_argument('--scenes', type=int, nargs=2, default=DEFAULTS['scenes'],
                   metavar=('TRAIN', 'VAL'), help='detection / segmentation scenes per split')
    p.add_argument('--wide', type=int, nargs=2, default=DEFAULTS['wide'],
                   metavar=('TRAIN', 'VAL'), help='pointer images on a 48x192 canvas '
                   '(cls_wide/)')
    p.add_argument('--seed', type=int, default=DEFAULTS['seed'])
    p.add_argument('--source', default=None,
                   help=f'folder of the Fashion-MNIST *-ubyte.gz files (default: ${SOURCE_ENV} '
                        f'or {SOURCE})')
    a = p.parse_args(argv)
    try:
        build(a.root, pointer=tuple(a.pointer), scenes=tuple(a.scenes), wide=tuple(a.wide),
              seed=a.seed, source=a.source)
    except (NotOurFolderError, MissingSourceError) as e:
        raise SystemExit(f'error: {e}')
    print(f'wrote {a.root}/cls (pointer task), {a.root}/coco, {a.root}/ade, {a.root}/mnist')


if __name__ == '__main__':
    main()

"""Built-in demo data: synthetic scenes of coloured, textured shapes, written in real formats.

One deterministic generator writes three datasets under ``root``:

* ``coco/``: ``train/*.jpg``, ``val/*.jpg``, ``annotations/instances_{train,val}.json``
  (COCO instances: boxes, polygon masks, areas) for mmdet;
* ``ade/``: ``images/{training,validation}/*.jpg`` + ``annotations/.../*.png`` (ADE20K layout;
  0 = unlabelled, 1 = background, 2.. = shape classes; ``reduce_zero_label=True``) for mmseg;
* ``cls/``: ``{train,val}/<class>/*.png`` (ImageNet-style class folders) for mmpretrain.

Command: ``python -m parc_mm.datasets.synthetic data/shapes``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# Alphabetical on purpose: mmpretrain's CustomDataset numbers class folders alphabetically, so
# this one tuple gives the label ids and names of all three tasks.
CLASSES: Tuple[str, ...] = ('circle', 'cross', 'ring', 'square', 'star', 'triangle')
assert list(CLASSES) == sorted(CLASSES)
VERSION = 4  # bump when the generator changes: a stale folder is regenerated
_DONE_FILE = '.parc_mm_synthetic'


def _cv2():
    import cv2
    return cv2


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    kind = rng.integers(4)
    c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:  # linear gradient
        ang = rng.uniform(0, 2 * math.pi)
        t = (np.cos(ang) * xx / w + np.sin(ang) * yy / h)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    elif kind == 1:  # stripes
        t = 0.5 + 0.5 * np.sin(2 * math.pi * (xx * rng.uniform(0.02, 0.1) +
                                               yy * rng.uniform(0, 0.05)))
    elif kind == 2:  # checker
        s = int(rng.integers(6, 20))
        t = (((xx // s) + (yy // s)) % 2).astype(np.float32)
    else:  # smooth noise
        small = rng.random((max(2, h // 16), max(2, w // 16))).astype(np.float32)
        t = _cv2().resize(small, (w, h), interpolation=_cv2().INTER_CUBIC)
        t = np.clip(t, 0, 1)
    img = c1[None, None] * (1 - t[..., None]) + c2[None, None] * t[..., None]
    img = img * 0.5 + 64  # low-contrast backgrounds keep objects visible
    return img.astype(np.float32)


def _shape_mask(rng, cls: str, h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    cv2 = _cv2()
    m = np.zeros((h, w), np.uint8)
    c = (int(cx), int(cy))
    if cls == 'circle':
        cv2.circle(m, c, int(r), 1, -1)
    elif cls == 'ring':
        cv2.circle(m, c, int(r), 1, -1)
        cv2.circle(m, c, max(1, int(r * 0.55)), 0, -1)
    else:
        rot = rng.uniform(0, 2 * math.pi)
        if cls == 'square':
            angles, radii = [rot + k * math.pi / 2 for k in range(4)], [r] * 4
        elif cls == 'triangle':
            angles, radii = [rot + k * 2 * math.pi / 3 for k in range(3)], [r] * 3
        elif cls == 'star':
            angles = [rot + k * math.pi / 5 for k in range(10)]
            radii = [r if k % 2 == 0 else r * 0.45 for k in range(10)]
        else:  # cross
            a = r * 0.35
            pts0 = [(-a, -r), (a, -r), (a, -a), (r, -a), (r, a), (a, a), (a, r), (-a, r),
                    (-a, a), (-r, a), (-r, -a), (-a, -a)]
            cs, sn = math.cos(rot), math.sin(rot)
            pts = [(cx + x * cs - y * sn, cy + x * sn + y * cs) for x, y in pts0]
            cv2.fillPoly(m, [np.round(np.array(pts)).astype(np.int32)], 1)
            return m
        pts = [(cx + rr * math.cos(t), cy + rr * math.sin(t)) for t, rr in zip(angles, radii)]
        cv2.fillPoly(m, [np.round(np.array(pts)).astype(np.int32)], 1)
    return m


def _contrasting_colour(rng, img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A colour that stands out from the background under ``mask`` (no invisible objects)."""
    under = img[mask > 0].mean(0) if mask.any() else img.reshape(-1, 3).mean(0)
    best, best_d = None, -1.0
    for _ in range(20):
        c = rng.integers(0, 256, 3)
        d = float(np.abs(c - under).sum())
        if d >= 180:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def _texture(rng, h: int, w: int, colour: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:
        t = np.ones((h, w), np.float32)
    elif kind == 1:
        t = 0.75 + 0.25 * np.sign(np.sin(xx * rng.uniform(0.3, 0.8) + yy * rng.uniform(0, 0.5)))
    else:
        t = 0.8 + 0.2 * rng.random((h, w)).astype(np.float32)
    return colour[None, None].astype(np.float32) * t[..., None]


def render_scene(rng: np.random.Generator, h: int, w: int, n_obj: Tuple[int, int] = (2, 5)):
    """One scene: image (H, W, 3) uint8 and a list of (class index, instance mask)."""
    img = _background(rng, h, w)
    objects: List[Tuple[int, np.ndarray]] = []
    for _ in range(int(rng.integers(n_obj[0], n_obj[1] + 1))):
        ci = int(rng.integers(len(CLASSES)))
        r = rng.uniform(0.08, 0.25) * min(h, w)
        cx, cy = rng.uniform(r * 0.6, w - r * 0.6), rng.uniform(r * 0.6, h - r * 0.6)
        m = _shape_mask(rng, CLASSES[ci], h, w, cx, cy, r)
        if m.sum() < 30:
            continue
        tex = _texture(rng, h, w, _contrasting_colour(rng, img, m))
        img[m > 0] = tex[m > 0]
        for k, (_, om) in enumerate(objects):  # occlusion: later objects cover earlier
            objects[k] = (objects[k][0], om * (1 - m))
        objects.append((ci, m))
    objects = [(c, m) for c, m in objects if m.sum() >= 30]
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    return img, objects


def _polygons(mask: np.ndarray) -> List[List[float]]:
    cv2 = _cv2()
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    return polys


def write_scenes(root: str, split: str, scenes, size: Tuple[int, int], classes: Sequence[str],
                 ext: str, save: Callable[[str, np.ndarray], None]) -> None:
    """Write ``scenes`` (an iterable of (image, [(class index, instance mask)])) of one split
    as COCO instances under ``root/coco`` and ADE20K label maps under ``root/ade`` (0 =
    unlabelled, 1 = background, 2.. = classes); ``save(path, image)`` writes an image file
    named with ``ext``. Shared by the synthetic shapes and the real-garment scenes."""
    cv2 = _cv2()
    h, w = size
    coco_dir = osp.join(root, 'coco', split)
    ade_split = {'train': 'training', 'val': 'validation'}[split]
    ade_img = osp.join(root, 'ade', 'images', ade_split)
    ade_ann = osp.join(root, 'ade', 'annotations', ade_split)
    for d in (coco_dir, ade_img, ade_ann, osp.join(root, 'coco', 'annotations')):
        os.makedirs(d, exist_ok=True)
    images, anns = [], []
    for i, (img, objects) in enumerate(scenes):
        name = f'{split}_{i:05d}'
        save(osp.join(coco_dir, name + ext), img)
        save(osp.join(ade_img, name + ext), img)
        seg = np.ones((h, w), np.uint8)  # 1 = background (0 stays 'unlabelled')
        images.append(dict(id=i + 1, file_name=name + ext, height=h, width=w))
        for ci, m in objects:
            seg[m > 0] = ci + 2
            polys = _polygons(m)
            if not polys:
                continue
            ys, xs = np.nonzero(m)
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=ci + 1,
                             bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                             area=float(m.sum()), segmentation=polys, iscrowd=0))
        cv2.imwrite(osp.join(ade_ann, name + '.png'), seg)
    coco = dict(images=images, annotations=anns,
                categories=[dict(id=k + 1, name=c) for k, c in enumerate(classes)])
    with open(osp.join(root, 'coco', 'annotations', f'instances_{split}.json'), 'w') as f:
        json.dump(coco, f)


def _save_jpg(path: str, img: np.ndarray) -> None:
    cv2 = _cv2()
    cv2.imwrite(path, img[..., ::-1].copy(), [cv2.IMWRITE_JPEG_QUALITY, 95])


def _write_split(root: str, split: str, n: int, rng, size: Tuple[int, int]) -> None:
    h, w = size
    write_scenes(root, split, (render_scene(rng, h, w) for _ in range(n)), size, CLASSES,
                 '.jpg', _save_jpg)


def _write_cls(root: str, split: str, per_class: int, rng, size: int) -> None:
    cv2 = _cv2()
    for ci, cls in enumerate(CLASSES):
        d = osp.join(root, 'cls', split, cls)
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            img = _background(rng, size, size)
            r = rng.uniform(0.25, 0.42) * size
            cx, cy = rng.uniform(r * 0.8, size - r * 0.8), rng.uniform(r * 0.8, size - r * 0.8)
            m = _shape_mask(rng, cls, size, size, cx, cy, r)
            tex = _texture(rng, size, size, _contrasting_colour(rng, img, m))
            img[m > 0] = tex[m > 0]
            img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(osp.join(d, f'{i:05d}.png'), img[..., ::-1].copy())


class NotOurFolderError(ValueError):
    """The target of the generator exists and is not a previous generation of it."""


def _read_marker(root: str, marker: str = _DONE_FILE) -> Optional[dict]:
    """The generation's marker (its spec), or None (no / unreadable one)."""
    try:
        with open(osp.join(root, marker)) as f:
            spec = json.load(f)
    except (OSError, ValueError):
        return None
    return spec if isinstance(spec, dict) else None


def _marker_version(root: str, marker: str = _DONE_FILE):
    """The generator version recorded in ``root``'s marker, or None (no / unreadable one)."""
    v = (_read_marker(root, marker) or {}).get('version')
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def foreign_files(root: str, marker: str = _DONE_FILE) -> List[str]:
    """Files under a generated ``root`` that the generator did not write (a photo added to a
    class folder, notes, ...): the writer's manifest lists every file of the generation. A
    generation of an older parc_mm (no manifest) is judged by its file counts: any difference
    is reported, since a user's file cannot be told from damage there."""
    from parc_mm.utils.fileio import MANIFEST, read_manifest, relative_files
    man = read_manifest(root)
    if man is not None:
        ours = set(man['files']) | {MANIFEST}
        return [f for f in relative_files(root) if f not in ours]
    if marker != _DONE_FILE:  # other generators always wrote a manifest
        return []
    spec = _read_marker(root)
    return check_files(root, spec) if spec else []


def check_target(root: str, marker: str = _DONE_FILE, version: int = VERSION,
                 what: str = 'synthetic-data generator', example: str = 'data/shapes') -> None:
    """Refuse (:class:`NotOurFolderError`) to write generated data at ``root`` unless
    replacing it loses nothing: ``root`` is missing, an empty folder, or a folder that carries
    this generator's ``marker`` of this ``version`` or an older one and holds nothing else. A
    file, a link, a mount point, a folder of anyone else's files (or of a newer parc_mm's
    generator), and a generated folder to which files were added are never touched."""
    if not str(root).strip():
        raise NotOurFolderError(f'The {what} needs a folder to write to; got an empty '
                                f'path (data_root=\'\'?). Give a path such as {example}.')
    if not osp.lexists(root):
        return
    fix = (f'Point it at a new folder (e.g. {example}), or use the library\'s own dataset '
           'type (CocoDataset, BaseSegDataset, CustomDataset) for your own data.')
    if osp.islink(root) or not osp.isdir(root):
        kind = 'a symbolic link' if osp.islink(root) else 'a file'
        raise NotOurFolderError(f'{root} is {kind}, not a folder the parc_mm {what} wrote: '
                                f'nothing was written or deleted. {fix}')
    if osp.ismount(root):
        raise NotOurFolderError(f'{root} is a mount point: the {what} never writes over '
                                f'one (nothing was deleted). {fix}')
    found = _marker_version(root, marker)
    if found is None:
        if not os.listdir(root):
            return
        raise NotOurFolderError(
            f'{root} exists and holds files that the parc_mm {what} did not '
            f'write (no {marker} marker): nothing was written or deleted. {fix}')
    if found > version:
        raise NotOurFolderError(
            f'{root} was written by a newer parc_mm ({what} version {found}, this '
            f'one writes {version}): left as it is. Upgrade parc_mm or use another folder.')
    extra = foreign_files(root, marker)
    if extra:
        raise NotOurFolderError(
            f'{root} holds files the {what} did not write '
            f'({len(extra)}: {"; ".join(extra[:3])}{"; ..." if len(extra) > 3 else ""}): '
            'regenerating it would delete them, so nothing was written or deleted. Move them '
            'out of the folder, or point data_root at another folder.')


def generate(root: str,
             num_train: int = 300,
             num_val: int = 50,
             img_size: Tuple[int, int] = (128, 160),
             cls_per_class: Tuple[int, int] = (600, 40),
             cls_size: int = 64,
             seed: int = 0) -> str:
    """Write the demo datasets under ``root`` (deterministic for a given seed/arguments).

    Only into a missing or empty folder or over an earlier generation (:func:`check_target`;
    anything else raises :class:`NotOurFolderError` and nothing is touched). Atomic:
    everything is written into a temporary sibling folder, which then replaces ``root`` as a
    whole; a killed run leaves ``root`` as it was, and no file of an earlier, larger
    generation survives.
    """
    from parc_mm.utils.fileio import expand
    if str(root).strip():  # ('' is refused by check_target, not read as the working folder)
        root = expand(root)  # '~/x' is the home folder's x, not a folder named '~'
    check_target(root)
    from parc_mm.utils.fileio import artefact_folder
    # the one writer: staged beside root and swapped in whole (a kill leaves the old data or
    # the new); check_target above established that root, if any, is ours to replace
    with artefact_folder(root, 'synthetic', owned=True) as tmp:
        from parc_mm.utils.fileio import current_umask
        os.chmod(tmp, 0o777 & ~current_umask())  # the mode a plain mkdir gives, not mkdtemp's 0700
        rng = np.random.default_rng(seed)
        _write_split(tmp, 'train', num_train, rng, img_size)
        _write_split(tmp, 'val', num_val, rng, img_size)
        _write_cls(tmp, 'train', cls_per_class[0], rng, cls_size)
        _write_cls(tmp, 'val', cls_per_class[1], rng, cls_size)
        spec = dict(version=VERSION, num_train=num_train, num_val=num_val,
                    img_size=list(img_size), cls_per_class=list(cls_per_class),
                    cls_size=cls_size, seed=seed)
        with open(osp.join(tmp, _DONE_FILE), 'w') as f:
            json.dump(spec, f)
        check_target(root)  # again: someone may have put files there while we wrote
    return root


def expected_files(spec: dict) -> Dict[str, int]:
    """Folder (relative to the root) -> number of files a generation of ``spec`` writes."""
    n_tr, n_val = spec['num_train'], spec['num_val']
    out = {'coco/train': n_tr, 'coco/val': n_val,
           'ade/images/training': n_tr, 'ade/images/validation': n_val,
           'ade/annotations/training': n_tr, 'ade/annotations/validation': n_val,
           'coco/annotations': 2}
    for split, n in zip(('train', 'val'), spec['cls_per_class']):
        for c in CLASSES:
            out[f'cls/{split}/{c}'] = n
    return out


def check_files(root: str, spec: dict) -> List[str]:
    """What is wrong with the generated data under ``root`` (empty when it is complete):
    folders whose file count differs from ``spec``'s, empty files, leftover folders."""
    problems = []
    expected = expected_files(spec)
    for rel, n in expected.items():
        d = osp.join(root, rel)
        files = [f for f in os.listdir(d) if osp.isfile(osp.join(d, f))] if osp.isdir(d) else []
        if len(files) != n:
            problems.append(f'{d} holds {len(files)} files, the marker says {n}')
        problems += [f'{osp.join(d, f)} is empty (0 bytes)' for f in files
                     if osp.getsize(osp.join(d, f)) == 0]
    for split in ('train', 'val'):
        d = osp.join(root, 'cls', split)
        extra = sorted(set(os.listdir(d)) - set(CLASSES)) if osp.isdir(d) else []
        problems += [f'{osp.join(d, e)} is not a class of this data' for e in extra]
    return problems


def ensure(root: str, **kwargs) -> str:
    """Generate the data under ``root`` unless a complete copy is there already (marker of
    this generator version and arguments, and every file count as the marker says)."""
    from mmengine.logging import print_log

    from parc_mm.utils.fileio import expand
    if str(root).strip():
        root = expand(root)
    spec = None if osp.islink(root) else _read_marker(root)
    if spec is not None:
        if spec.get('version') == VERSION and all(
                spec.get(k) == (list(v) if isinstance(v, tuple) else v)
                for k, v in kwargs.items()):
            problems = check_files(root, spec)
            from parc_mm.utils.fileio import read_manifest
            extra = foreign_files(root) if read_manifest(root) is not None else []
            if extra:
                check_target(root)  # refuses, naming the files that are not ours
            if not problems:
                return root
            print_log(f'parc_mm: the synthetic data under {root} is incomplete or damaged '
                      f'({"; ".join(problems[:3])}); regenerating it', logger='current',
                      level=30)
    print_log(f'parc_mm: generating the synthetic demo data under {root} ...',
              logger='current')
    return generate(root, **kwargs)


def metainfo(task: str) -> Dict[str, tuple]:
    """``metainfo`` for the dataset configs of each task."""
    rng = np.random.default_rng(123)
    if task == 'seg':
        classes = ('background', ) + CLASSES
    else:
        classes = CLASSES
    palette = [tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in classes]
    return dict(classes=classes, palette=palette)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description='Write the parc_mm synthetic demo datasets.')
    p.add_argument('root', nargs='?', default='data/shapes')
    p.add_argument('--num-train', type=int, default=300)
    p.add_argument('--num-val', type=int, default=50)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args(argv)
    try:
        generate(a.root, num_train=a.num_train, num_val=a.num_val, seed=a.seed)
    except NotOurFolderError as e:
        raise SystemExit(f'error: {e}')
    print(f'wrote {a.root}/coco, {a.root}/ade, {a.root}/cls')


if __name__ == '__main__':
    main()

"""The real-image builder (Fashion-MNIST garments): formats read by the libraries' own dataset
classes and pycocotools, the pointer task's label right by construction, never a user's file
deleted, and a clear message where the system package is missing."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from parc_mm.datasets import fashion

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(pointer=(30, 20), scenes=(5, 3))
needs_data = pytest.mark.skipif(
    not fashion.available(),
    reason=f'Fashion-MNIST is not installed ({fashion.INSTALL_HINT})')


# --- the pointer task on hand-made garments (no package needed) -------------------------------

def _toy_garments():
    """Two 'garments' that can be told apart by their pixels: a flat square (Fashion-MNIST
    label 3, dress) and a checkerboard (label 7, sneaker)."""
    flat = np.full((28, 28), 200, np.uint8)
    checker = ((np.indices((28, 28)).sum(0) // 4) % 2 * 250).astype(np.uint8)
    return np.stack([flat, checker]), np.array([3, 7], np.uint8)


def _arrow_points_left(img, ax, ay):
    a = img[ay:ay + fashion.ARROW, ax:ax + fashion.ARROW] > 128
    # the arrow's tip is one column; its back is a full column
    return a[:, 0].sum() < a[:, -1].sum()


def _garment_is_flat(img, side):
    half = img[:, :img.shape[1] // 2 - fashion.ARROW] if side == 'left' else \
        img[:, img.shape[1] // 2 + fashion.ARROW:]
    bright = half[half > 128]
    assert bright.size > 0
    return bright.max() <= 205  # the flat garment is 200 everywhere; the checker reaches 250


def test_the_pointer_label_is_the_garment_the_arrow_points_at():
    images, labels = _toy_garments()
    rng = np.random.default_rng(0)
    dress, sneaker = fashion.CLASSES.index('dress'), fashion.CLASSES.index('sneaker')
    seen_left = seen_right = 0
    for _ in range(40):
        img, label, d = fashion.render_pointer(rng, images, labels)
        assert img.shape == fashion.POINTER_SIZE and img.dtype == np.uint8
        left = _arrow_points_left(img, *d['arrow'])  # read from the pixels, not from d
        assert left == d['points_left']
        side = 'left' if left else 'right'
        want = dress if _garment_is_flat(img, side) else sneaker
        assert label == want == fashion.pointer_label(d['left'], d['right'], left)
        assert {d['left'], d['right']} == {dress, sneaker}  # two different classes
        seen_left += left
        seen_right += not left
    assert seen_left and seen_right


def test_no_single_garment_predicts_the_pointer_label():
    # the label equals the left garment's class half of the time, whatever that class is
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (200, 28, 28), dtype=np.uint8)
    labels = np.arange(200, dtype=np.uint8) % 10
    hits = [fashion.render_pointer(rng, images, labels) for _ in range(600)]
    p_left = np.mean([label == d['left'] for _, label, d in hits])
    assert 0.43 < p_left < 0.57
    for _, label, d in hits:  # the garments sit at the two ends, the arrow between them
        (lx, _, ls), (rx, _, rs) = d['boxes']
        ax = d['arrow'][0]
        assert lx + ls <= ax and ax + fashion.ARROW <= rx


def test_scene_masks_are_the_garment_pixels_without_overlap():
    images, labels = _toy_garments()
    img, objects = fashion.render_scene(np.random.default_rng(2), images, labels)
    assert img.shape == fashion.SCENE_SIZE and 2 <= len(objects) <= 4
    total = sum(m.astype(int) for _, m in objects)
    assert total.max() == 1  # no two instances share a pixel
    for _, m in objects:
        assert (img[m > 0] > 24).all()


# --- the builder ------------------------------------------------------------------------------

def test_a_missing_package_is_named_with_the_fix(tmp_path):
    with pytest.raises(fashion.MissingSourceError, match='apt-get install dataset-fashion-mnist'):
        fashion.build(str(tmp_path / 'out'), source=str(tmp_path))
    assert not (tmp_path / 'out').exists()
    p = subprocess.run([sys.executable, '-m', 'parc_mm.datasets.fashion', str(tmp_path / 'o'),
                        '--source', str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode != 0 and 'dataset-fashion-mnist' in p.stderr


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    if not fashion.available():
        pytest.skip(f'Fashion-MNIST is not installed ({fashion.INSTALL_HINT})')
    return fashion.build(str(tmp_path_factory.mktemp('f') / 'fashion'), **SMALL)


@needs_data
def test_the_libraries_read_every_format(built):
    from mmdet.datasets import CocoDataset
    from mmpretrain.datasets import CustomDataset
    from mmseg.datasets import BaseSegDataset
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    import parc_mm.datasets.mm as mm

    cls = CustomDataset(data_root=osp.join(built, 'cls'), data_prefix='val',
                        metainfo=dict(classes=fashion.CLASSES))
    assert len(cls) == SMALL['pointer'][1]
    assert set(cls.get_gt_labels()) <= set(range(10))
    coco_root = osp.join(built, 'coco')
    coco = COCO(osp.join(coco_root, 'annotations', 'instances_train.json'))
    assert len(coco.getImgIds()) == SMALL['scenes'][0] and coco.getAnnIds()
    for ann in coco.loadAnns(coco.getAnnIds()):
        info = coco.loadImgs(ann['image_id'])[0]
        m = coco.annToMask(ann)
        assert abs(int(m.sum()) - ann['area']) <= 0.35 * ann['area']  # polygon vs pixels
        x, y, w, h = ann['bbox']
        assert 0 <= x and x + w <= info['width'] and 0 <= y and y + h <= info['height']
        rle = mask_utils.encode(np.asfortranarray(m))
        assert mask_utils.toBbox(rle)[2] <= w + 1
    det = CocoDataset(data_root=coco_root, ann_file='annotations/instances_val.json',
                      data_prefix=dict(img='val/'), metainfo=fashion.metainfo('det'),
                      test_mode=True)
    assert len(det) == SMALL['scenes'][1]
    seg = BaseSegDataset(data_root=osp.join(built, 'ade'), img_suffix='.png',
                         seg_map_suffix='.png', reduce_zero_label=True,
                         data_prefix=dict(img_path='images/training',
                                          seg_map_path='annotations/training'),
                         metainfo=fashion.metainfo('seg'))
    assert len(seg) == SMALL['scenes'][0]
    from PIL import Image
    lab = np.array(Image.open(seg[0]['seg_map_path']))
    assert lab.min() >= 1 and lab.max() <= 11  # 1 background, 2..11 garments
    # the raw IDX files as mmpretrain's FashionMNIST reads them (never downloading)
    train = mm.FashionMNIST(data_root=osp.join(built, 'mnist'), split='train')
    test = mm.FashionMNIST(data_root=osp.join(built, 'mnist'), split='test', test_mode=True)
    assert (len(train), len(test)) == (60000, 10000)
    # a dataset class takes the small build as it is (no rebuild at the default sizes)
    assert fashion._read_marker(built, fashion.MARKER)['pointer'] == list(SMALL['pointer'])
    with pytest.raises(ValueError, match='never downloads'):
        mm.FashionMNIST(data_root=osp.join(built, 'mnist'), download=True)


@needs_data
def test_the_build_is_deterministic_and_reused(built, tmp_path):
    again = fashion.build(str(tmp_path / 'again'), **SMALL)
    for rel in ('coco/annotations/instances_val.json', 'ade/annotations/validation/val_00000.png'):
        assert open(osp.join(built, rel), 'rb').read() == open(osp.join(again, rel), 'rb').read()
    stamp = os.stat(osp.join(again, 'coco', 'annotations', 'instances_val.json')).st_mtime_ns
    assert fashion.ensure(again, **SMALL) == again  # complete: not rebuilt
    assert os.stat(osp.join(again, 'coco', 'annotations',
                            'instances_val.json')).st_mtime_ns == stamp
    os.remove(osp.join(again, 'ade', 'annotations', 'validation', 'val_00000.png'))
    assert fashion.problems(again)
    fashion.ensure(again, **SMALL)  # damaged: rebuilt whole
    assert fashion.problems(again) == []


@needs_data
def test_a_user_folder_is_never_deleted(tmp_path):
    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'notes.txt').write_text('keep')
    with pytest.raises(fashion.NotOurFolderError, match='did not'):
        fashion.build(str(mine), **SMALL)
    assert (mine / 'notes.txt').read_text() == 'keep'
    root = fashion.build(str(tmp_path / 'ours'), **SMALL)
    photo = osp.join(root, 'cls', 'train', 'bag', 'my_photo.png')
    open(photo, 'wb').write(b'png')
    with pytest.raises(fashion.NotOurFolderError, match='my_photo.png'):
        fashion.build(root, **SMALL)
    assert open(photo, 'rb').read() == b'png'
    # a dataset config pointing into someone's folder is refused the same way
    import parc_mm.datasets.mm as mm
    with pytest.raises(fashion.NotOurFolderError, match='refused'):
        mm.FashionPointerDataset(data_root=str(mine / 'cls'), data_prefix='val')
    assert sorted(os.listdir(mine)) == ['notes.txt']

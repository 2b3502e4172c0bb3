"""The synthetic demo data as mmdet / mmseg / mmpretrain datasets that generate themselves.

``type='parc_mm.ShapesCocoDataset'`` etc. behave exactly like mmdet's ``CocoDataset``,
mmseg's ``BaseSegDataset`` and mmpretrain's ``CustomDataset`` on the files, and write those
files first (deterministically) when ``data_root`` points at a missing folder.
Import with ``custom_imports=dict(imports=['parc_mm.datasets.mm'])``.
"""
import os.path as osp
from importlib.util import find_spec

from parc_mm.registry import DATASETS

from . import synthetic


def _ensure(data_root: str) -> None:
    # data_root is <root>/coco, <root>/ade or <root>/cls
    synthetic.ensure(osp.dirname(osp.normpath(data_root)))


# each library's dataset is registered only when that library is installed
if find_spec('mmdet') is not None:
    from mmdet.datasets import CocoDataset

    @DATASETS.register_module()
    class ShapesCocoDataset(CocoDataset):
        """Synthetic shapes, COCO instances format (boxes + polygon masks)."""
        METAINFO = dict(synthetic.metainfo('det'))

        def __init__(self, data_root: str = 'data/shapes/coco', **kwargs):
            _ensure(data_root)
            super().__init__(data_root=data_root, **kwargs)


if find_spec('mmseg') is not None:
    from mmseg.datasets import BaseSegDataset

    @DATASETS.register_module()
    class ShapesSegDataset(BaseSegDataset):
        """Synthetic shapes, ADE20K layout (0 = unlabelled, reduce_zero_label)."""
        METAINFO = dict(synthetic.metainfo('seg'))

        def __init__(self, data_root: str = 'data/shapes/ade', **kwargs):
            _ensure(data_root)
            kwargs.setdefault('img_suffix', '.jpg')
            kwargs.setdefault('seg_map_suffix', '.png')
            kwargs.setdefault('reduce_zero_label', True)
            super().__init__(data_root=data_root, **kwargs)


if find_spec('mmpretrain') is not None:
    from mmpretrain.datasets import CustomDataset

    @DATASETS.register_module()
    class ShapesClsDataset(CustomDataset):
        """Synthetic shapes, ImageNet-style class folders."""
        METAINFO = dict(classes=synthetic.CLASSES)

        def __init__(self, data_root: str = 'data/shapes/cls', **kwargs):
            _ensure(data_root)
            super().__init__(data_root=data_root, **kwargs)

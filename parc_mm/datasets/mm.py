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


def _ensure(data_root: str, dataset: str) -> None:
    # data_root is <root>/coco, <root>/ade or <root>/cls; the generator writes <root> and
    # refuses a <root> it did not write (a user's data_root: their data stays untouched)
    root = osp.dirname(osp.normpath(data_root)) if str(data_root).strip() else ''
    try:
        synthetic.ensure(root)
    except synthetic.NotOurFolderError as e:
        raise synthetic.NotOurFolderError(
            f'parc_mm.{dataset}(data_root={data_root!r}) generates the demo data into the '
            f'parent folder {root!r}, and refused: {e}') from None


def _self_generating(base: type, name: str, folder: str, metainfo: dict, doc: str,
                     **defaults):
    """Register ``parc_mm.<name>``: the library's dataset class ``base``, unchanged, writing
    the synthetic data first when ``data_root`` is missing (``defaults``: its arguments)."""

    def __init__(self, data_root: str = f'data/shapes/{folder}', **kwargs):
        _ensure(data_root, name)
        for k, v in defaults.items():
            kwargs.setdefault(k, v)
        base.__init__(self, data_root=data_root, **kwargs)

    cls = type(name, (base, ), dict(METAINFO=metainfo, __init__=__init__, __doc__=doc,
                                    __module__=__name__))
    DATASETS.register_module(module=cls)
    return cls


# each library's dataset is registered only when that library is installed
if find_spec('mmdet') is not None:
    from mmdet.datasets import CocoDataset
    ShapesCocoDataset = _self_generating(
        CocoDataset, 'ShapesCocoDataset', 'coco', dict(synthetic.metainfo('det')),
        'Synthetic shapes, COCO instances format (boxes + polygon masks).')

if find_spec('mmseg') is not None:
    from mmseg.datasets import BaseSegDataset
    ShapesSegDataset = _self_generating(
        BaseSegDataset, 'ShapesSegDataset', 'ade', dict(synthetic.metainfo('seg')),
        'Synthetic shapes, ADE20K layout (0 = unlabelled, reduce_zero_label).',
        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True)

if find_spec('mmpretrain') is not None:
    from mmpretrain.datasets import CustomDataset
    ShapesClsDataset = _self_generating(
        CustomDataset, 'ShapesClsDataset', 'cls', dict(classes=synthetic.CLASSES),
        'Synthetic shapes, ImageNet-style class folders.')

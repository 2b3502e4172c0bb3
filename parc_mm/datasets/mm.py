"""The built-in data as mmdet / mmseg / mmpretrain datasets that generate themselves.

``type='parc_mm.ShapesCocoDataset'`` etc. (the synthetic shapes) and
``parc_mm.FashionCocoDataset`` etc. (real Fashion-MNIST garments, :mod:`.fashion`) behave
exactly like mmdet's ``CocoDataset``, mmseg's ``BaseSegDataset`` and mmpretrain's
``CustomDataset`` / ``FashionMNIST`` on the files, and write those files first
(deterministically) when ``data_root`` points at a missing folder.
Import with ``custom_imports=dict(imports=['parc_mm.datasets.mm'])``.
"""
import os.path as osp
from importlib.util import find_spec

from parc_mm.registry import DATASETS

from . import fashion, synthetic


def _ensure(data_root: str, dataset: str, builder=synthetic) -> None:
    # data_root is <root>/coco, <root>/ade or <root>/cls; the generator writes <root> and
    # refuses a <root> it did not write (a user's data_root: their data stays untouched)
    root = osp.dirname(osp.normpath(data_root)) if str(data_root).strip() else ''
    try:
        builder.ensure(root)
    except synthetic.NotOurFolderError as e:
        raise synthetic.NotOurFolderError(
            f'parc_mm.{dataset}(data_root={data_root!r}) generates its data into the '
            f'parent folder {root!r}, and refused: {e}') from None


def _self_generating(base: type, name: str, folder: str, metainfo: dict, doc: str,
                     builder=synthetic, default_root: str = 'data/shapes', **defaults):
    """Register ``parc_mm.<name>``: the library's dataset class ``base``, unchanged, writing
    the built-in data first when ``data_root`` is missing (``defaults``: its arguments)."""

    def __init__(self, data_root: str = f'{default_root}/{folder}', **kwargs):
        _ensure(data_root, name, builder)
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

# the real garments (Fashion-MNIST): same classes, never downloaded
_REAL = dict(builder=fashion, default_root='data/fashion')
if find_spec('mmdet') is not None:
    FashionCocoDataset = _self_generating(
        CocoDataset, 'FashionCocoDataset', 'coco', dict(fashion.metainfo('det')),
        'Scenes of real Fashion-MNIST garments, COCO instances (boxes + polygon masks).',
        **_REAL)

if find_spec('mmseg') is not None:
    FashionSegDataset = _self_generating(
        BaseSegDataset, 'FashionSegDataset', 'ade', dict(fashion.metainfo('seg')),
        'Scenes of real Fashion-MNIST garments, ADE20K layout (0 = unlabelled).',
        img_suffix='.png', seg_map_suffix='.png', reduce_zero_label=True, **_REAL)

if find_spec('mmpretrain') is not None:
    FashionPointerDataset = _self_generating(
        CustomDataset, 'FashionPointerDataset', 'cls', dict(classes=fashion.CLASSES),
        'The pointer task (global context): the class of the garment the arrow points at.',
        **_REAL)

    from mmpretrain.datasets import FashionMNIST as _FashionMNIST

    class FashionMNIST(_FashionMNIST):
        """mmpretrain's ``FashionMNIST`` on the installed real files (``<root>/mnist``,
        written by :mod:`.fashion`); never downloads (its checksums are for other files)."""

        def __init__(self, data_root: str = 'data/fashion/mnist', **kwargs):
            if kwargs.pop('download', False):
                raise ValueError('parc_mm.FashionMNIST never downloads: it reads the files '
                                 f'the system package installs ({fashion.INSTALL_HINT}).')
            _ensure(data_root, 'FashionMNIST', fashion)
            super().__init__(data_root=data_root, download=False, **kwargs)

    DATASETS.register_module(module=FashionMNIST)

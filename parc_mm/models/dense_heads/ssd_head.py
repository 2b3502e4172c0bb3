"""mmdet's SSDHead, usable for inference under mmdet 3.3.0."""
from mmdet.models.dense_heads import SSDHead as _MMDetSSDHead

from parc_mm.registry import MODELS


@MODELS.register_module()
class SSDHead(_MMDetSSDHead):
    """mmdet's :class:`~mmdet.models.dense_heads.SSDHead`, unchanged, except that it can
    predict under mmdet 3.3.0.

    mmdet 3.3.0's shared ``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``,
    which SSDHead (it skips AnchorHead's ``__init__``) never defines, so every SSD / SSDLite
    validation and inference raises ``AttributeError: 'SSDHead' object has no attribute
    'loss_cls'`` (upstream issues 11063 / 11305 / 11780, unfixed in the release). SSD computes
    its classification loss inline, so ``None`` is the true value here.
    """
    loss_cls = None

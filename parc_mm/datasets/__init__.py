from .synthetic import CLASSES, ensure, generate, metainfo

__all__ = ["CLASSES", "ensure", "generate", "metainfo"]

from .multi_scale import MultiScaleClsDataPreprocessor

__all__ = ['MultiScaleClsDataPreprocessor']

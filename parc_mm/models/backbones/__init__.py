from .parc_convnext import ParCConvNeXt

__all__ = ['ParCConvNeXt']

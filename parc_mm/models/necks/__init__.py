from .parc_fpn import ParCFPN

__all__ = ['ParCFPN']

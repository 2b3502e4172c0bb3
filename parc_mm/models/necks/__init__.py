from .parc_fpn import ParCBlock, ParCFPN

__all__ = ['ParCBlock', 'ParCFPN']

"""The hooks of parc_mm, registered on import (configs: ``custom_imports=dict(imports=
['parc_mm.engine.hooks'])``)."""
from .checkpoint_hook import SafeCheckpointHook
from .param_checksum_hook import ParamChecksumHook
from .parc_hooks import ParCAutotuneHook, ParCInferenceModeHook

__all__ = ['ParCAutotuneHook', 'ParCInferenceModeHook', 'ParamChecksumHook', 'SafeCheckpointHook']

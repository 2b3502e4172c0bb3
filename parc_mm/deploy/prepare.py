"""How every export route prepares a model (ONNX, mmdeploy, ``torch.export``)."""
from __future__ import annotations

import torch.nn as nn


def prepare(model: nn.Module) -> nn.Module:
    """The model as every route exports it: eval, ParC layers in inference mode."""
    from parc_mm.ops import inference_mode
    return inference_mode(model)


__all__ = ['prepare']

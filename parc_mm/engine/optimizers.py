"""Layer-wise learning-rate decay for backbones with ConvNeXt's parameter layout.

mmdet's and mmseg's ``LearningRateDecayOptimizerConstructor`` group parameters by their names
(``backbone.downsample_layers.<i>``, ``backbone.stages.<i>.<j>``) but refuse any backbone whose
class name lacks ``ConvNeXt`` (``NotImplementedError``). ParCNetV2 has exactly that layout (the
official detection / segmentation recipes decay it so); this constructor applies the same
grouping and scales to any backbone with the layout, and refuses others by name.
"""
from __future__ import annotations

from typing import List

import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor

from parc_mm.registry import OPTIM_WRAPPER_CONSTRUCTORS


def block_wise_layer_id(name: str, depths: List[int]) -> int:
    """ParCNetV2's official grouping: block ``j`` of stage ``s`` is layer ``1 + (blocks before
    stage s) // 3 + j // 3``; a stage's downsampling joins its first group (the stem: 0); what
    is not in the backbone's stages comes after the last group."""
    before = [sum(depths[:s]) // 3 for s in range(len(depths))]
    parts = name.split('.')
    if name.startswith('backbone.downsample_layers.'):
        stage = int(parts[2])
        return 0 if stage == 0 else before[stage] + 1
    if name.startswith('backbone.stages.'):
        stage, block = int(parts[2]), int(parts[3])
        return before[stage] + 1 + block // 3
    return sum(depths) // 3 + 1


def _layout_functions():
    try:
        from mmdet.engine.optimizers.layer_decay_optimizer_constructor import (
            get_layer_id_for_convnext,
            get_stage_id_for_convnext,
        )
    except ImportError:  # a segmentation-only install
        from mmseg.engine.optimizers.layer_decay_optimizer_constructor import (
            get_layer_id_for_convnext,
            get_stage_id_for_convnext,
        )
    return get_layer_id_for_convnext, get_stage_id_for_convnext


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimizerConstructor(DefaultOptimWrapperConstructor):
    """``paramwise_cfg=dict(decay_rate=r, decay_type='layer_wise' | 'stage_wise' |
    'block_wise', num_layers=n)``: ``layer_wise`` / ``stage_wise`` as mmdet / mmseg's
    ``LearningRateDecayOptimizerConstructor`` (ConvNeXt's groups), ``block_wise`` as ParCNetV2's
    official detection recipe (``n`` = blocks // 3); parameter group ``id`` gets
    ``lr * r ** (n + 1 - id)``; 1-D parameters and biases no weight decay."""

    def add_params(self, params: List[dict], module: nn.Module, **kwargs) -> None:
        backbone = getattr(module, 'backbone', None)
        if not (hasattr(backbone, 'downsample_layers') and hasattr(backbone, 'stages')):
            raise ValueError(
                'parc_mm.LayerDecayOptimizerConstructor groups a backbone by its '
                'downsample_layers.<i> / stages.<i>.<j> parameters (ConvNeXt, ParCNetV2); '
                f'{type(backbone).__name__} has no such layout: use the default constructor')
        layer_id_of, stage_id_of = _layout_functions()
        decay_type = self.paramwise_cfg.get('decay_type', 'layer_wise')
        if decay_type not in ('layer_wise', 'stage_wise', 'block_wise'):
            raise ValueError(f"decay_type must be 'layer_wise', 'stage_wise' or 'block_wise', "
                             f'got {decay_type!r}')
        depths = [len(stage) for stage in backbone.stages]
        if decay_type == 'block_wise' and self.paramwise_cfg.get('num_layers') != \
                sum(depths) // 3:
            raise ValueError(f"decay_type='block_wise' groups the {sum(depths)} blocks by "
                             f'three: num_layers must be {sum(depths) // 3}, got '
                             f"{self.paramwise_cfg.get('num_layers')}")
        num_layers = self.paramwise_cfg.get('num_layers') + 2
        decay_rate = self.paramwise_cfg.get('decay_rate')
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue  # frozen weights
            no_decay = param.ndim == 1 or name.endswith('.bias')
            if decay_type == 'layer_wise':
                layer_id = layer_id_of(name, self.paramwise_cfg.get('num_layers'))
            elif decay_type == 'block_wise':
                layer_id = block_wise_layer_id(name, depths)
            else:
                layer_id = stage_id_of(name, num_layers)
            key = f'layer_{layer_id}_{"no_decay" if no_decay else "decay"}'
            if key not in groups:
                scale = decay_rate**(num_layers - layer_id - 1)
                groups[key] = dict(weight_decay=0. if no_decay else self.base_wd, params=[],
                                   param_names=[], lr_scale=scale, group_name=key,
                                   lr=scale * self.base_lr)
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        MMLogger.get_current_instance().info(
            f'LayerDecayOptimizerConstructor {decay_type} {decay_rate} - {num_layers}: '
            f'{len(groups)} parameter groups')
        params.extend(groups.values())

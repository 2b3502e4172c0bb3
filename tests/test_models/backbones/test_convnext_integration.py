"""ParC-ConvNeXt inside the libraries: layer-decay optimiser constructors, init_cfg from a
converted checkpoint."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import DefaultScope

from parc_mm.models import ParCConvNeXt


class Det(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = ParCConvNeXt(arch='xt', out_indices=[0, 1, 2, 3],
                                     gap_before_final_norm=False)
        self.neck = nn.Conv2d(384, 8, 1)


def _lr_of(optimizer, model, name):
    p = dict(model.named_parameters())[name]
    for g in optimizer.param_groups:
        if any(q is p for q in g['params']):
            return g['lr']
    raise KeyError(name)


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg'])
@pytest.mark.parametrize('decay_type', ['layer_wise', 'stage_wise'])
def test_mmdet_mmseg_layer_decay_constructor(scope, decay_type):
    import importlib
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    reg = importlib.import_module(f'{scope}.registry').OPTIM_WRAPPER_CONSTRUCTORS
    model = Det()
    with DefaultScope.overwrite_default_scope(scope):
        ctor = reg.build(dict(
            type='LearningRateDecayOptimizerConstructor',
            optim_wrapper_cfg=dict(type='OptimWrapper',
                                   optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
            paramwise_cfg=dict(decay_rate=0.5, decay_type=decay_type, num_layers=6)))
        wrapper = ctor(model)
    opt = wrapper.optimizer
    stem = _lr_of(opt, model, 'backbone.downsample_layers.0.0.weight')
    parc = _lr_of(opt, model, 'backbone.stages.2.8.depthwise_conv.parc_h.weight')
    last = _lr_of(opt, model, 'backbone.stages.3.2.depthwise_conv.parc_w.weight')
    head = _lr_of(opt, model, 'neck.weight')
    # deeper = larger lr; ParC params take their block's depth like any other
    assert stem < parc < last <= head == 1.0


def test_mmpretrain_layer_decay_constructor():
    from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    model = nn.Module()
    model.backbone = ParCConvNeXt(arch='xt')
    model.head = nn.Linear(384, 10)
    # mmpretrain asks the backbone (get_layer_depth with the 'backbone.' prefix)
    model.get_layer_depth = lambda name: model.backbone.get_layer_depth(name, 'backbone.')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ctor = OPTIM_WRAPPER_CONSTRUCTORS.build(dict(
            type='LearningRateDecayOptimWrapperConstructor',
            optim_wrapper_cfg=dict(type='OptimWrapper',
                                   optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
            paramwise_cfg=dict(layer_decay_rate=0.5)))
        opt = ctor(model).optimizer
    stem = _lr_of(opt, model, 'backbone.downsample_layers.0.0.weight')
    parc = _lr_of(opt, model, 'backbone.stages.2.6.depthwise_conv.parc_h.pe')
    assert stem < parc < 1.0


def test_init_cfg_pretrained_from_converted_checkpoint(tmp_path):
    from mmpretrain.models import ConvNeXt

    from parc_mm.models.converters import convnext_to_parc
    src = ConvNeXt(arch=dict(depths=[3, 3, 9, 3], channels=[48, 96, 192, 384]),
                   out_indices=[0, 1, 2, 3], gap_before_final_norm=False)
    out, rep = convnext_to_parc({'backbone.' + k: v for k, v in src.state_dict().items()},
                                arch='xt')
    ckpt = str(tmp_path / 'parc_init.pth')
    torch.save({'state_dict': out}, ckpt)
    model = ParCConvNeXt(arch='xt', out_indices=[0, 1, 2, 3], gap_before_final_norm=False,
                         init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
    model.init_weights()
    torch.testing.assert_close(model.stages[1][0].pointwise_conv1.weight,
                               src.stages[1][0].pointwise_conv1.weight)
    torch.testing.assert_close(model.stages[2][7].depthwise_conv.parc_h.weight,
                               out['backbone.stages.2.7.depthwise_conv.parc_h.weight'])

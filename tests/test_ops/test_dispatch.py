"""parc_mm.ops.dispatch: the one place an implementation is chosen (explicit > global > export
> autotuned > rule), with availability and exportability checked."""
import dataclasses

import pytest
import torch

from parc_mm.models.layers import ParCConv2d, ParCTokenMixer
from parc_mm.ops import circular_conv, dispatch, registry
from parc_mm.ops.functional import recorded_impls


def test_explicit_impl_that_cannot_run_there_is_refused_naming_the_fix(monkeypatch):
    gemm = registry.get_impl('gemm')
    monkeypatch.setitem(registry._REGISTRY, 'gemm', dataclasses.replace(gemm, devices=('cuda', )))
    x, w = torch.randn(1, 4, 6, 5), torch.randn(4, 1, 6, 1)
    with pytest.raises(ValueError, match=r"'gemm' does not run on cpu.*impl='auto'"):
        circular_conv(x, w, None, 'H', 4, 'gemm')
    with recorded_impls() as ran:
        circular_conv(x, w, None, 'H', 4, 'auto')
    assert ran and ran[0] != 'gemm'  # auto never picks it there


def test_explicit_dtype_outside_the_registry_entry_is_refused(monkeypatch):
    fft = registry.get_impl('fft')
    monkeypatch.setitem(registry._REGISTRY, 'fft',
                        dataclasses.replace(fft, dtypes=(torch.float32, )))
    x, w = torch.randn(1, 4, 6, 5, dtype=torch.float64), torch.randn(4, 1, 6, 1,
                                                                      dtype=torch.float64)
    with pytest.raises(ValueError, match=r"'fft' does not run on cpu in torch.float64"):
        circular_conv(x, w, None, 'H', 4, 'fft')


def test_explicit_non_exportable_impl_is_refused_inside_an_onnx_export(tmp_path):
    m = ParCConv2d(4, 'H', 6, impl='fft').eval()
    with pytest.raises(ValueError, match=r"'fft' cannot be exported.*set_impl\(model, 'auto'\)"):
        torch.onnx.export(m, (torch.randn(1, 4, 6, 5), ), str(tmp_path / 'm.onnx'),
                          dynamo=False)
    mixer = ParCTokenMixer(8, 4, impl='fft').eval()
    with pytest.raises(ValueError, match="'fft' cannot be exported"):
        torch.onnx.export(mixer, (torch.randn(1, 16, 8), (4, 4)), str(tmp_path / 't.onnx'),
                          dynamo=False)


def test_a_non_exportable_global_default_falls_through_to_the_export_form(tmp_path):
    import onnx
    m = ParCConv2d(4, 'H', 6).eval()
    with dispatch.parc_impl('fft'), recorded_impls() as ran:
        torch.onnx.export(m, (torch.randn(1, 4, 6, 5), ), str(tmp_path / 'm.onnx'),
                          dynamo=False)
    assert set(ran) == {'gemm'}  # the export form of a 6-tap depthwise kernel
    assert 'DFT' not in {n.op_type for n in onnx.load(str(tmp_path / 'm.onnx')).graph.node}
    with dispatch.parc_impl('direct'), recorded_impls() as ran:  # an exportable one is taken
        torch.onnx.export(m, (torch.randn(1, 4, 6, 5), ), str(tmp_path / 'm.onnx'),
                          dynamo=False)
    assert set(ran) == {'direct'}


def test_order_explicit_over_global_over_rule():
    x, w = torch.randn(1, 4, 6, 5), torch.randn(4, 1, 6, 1)
    with recorded_impls() as ran:
        circular_conv(x, w, None, 'H', 4, 'auto')
        with dispatch.parc_impl('gemm'):
            circular_conv(x, w, None, 'H', 4, 'auto')
            circular_conv(x, w, None, 'H', 4, 'direct')
    rule = dispatch.select_impl(6, 5, 4, x.device, x.dtype)
    assert ran == [rule, 'gemm', 'direct']


def test_a_change_of_the_global_default_bumps_the_generation():
    g = registry.generation()
    dispatch.set_default_impl('direct')
    try:
        assert registry.generation() > g
        assert dispatch.global_impl() == 'direct'
    finally:
        dispatch.set_default_impl(None)
    assert dispatch.global_impl() is None
    dispatch.set_default_impl('auto')  # auto = no override
    assert dispatch.global_impl() is None


def test_the_choices_tools_offer_come_from_the_registry(monkeypatch):
    direct = registry.get_impl('direct')
    monkeypatch.setitem(registry._REGISTRY, 'toy', dataclasses.replace(direct, name='toy'))
    assert dispatch.impl_choices() == registry.impl_names() + ('auto', )
    assert 'toy' in dispatch.impl_choices()
    assert dispatch.impl_choices(auto=False, exportable=True) == ('direct', 'gemm', 'toy')
    with pytest.raises(ValueError, match='Unknown ParC impl'):
        dispatch.set_default_impl('nope')

"""The implementation registry: one place that says what each ParC implementation computes and
where it runs; the operator, the autotuner and the export consult it (the checklist in
docs/extending.md is what these tests keep honest)."""
import dataclasses

import pytest
import torch

from parc_mm.models.layers import ParCConv2d
from parc_mm.ops import (
    autotune,
    autotune_cache,
    circular_conv,
    clear_autotune_cache,
    registry,
)
from parc_mm.ops.functional import compute, recorded_impls


@pytest.fixture
def extra_impl():
    """A fourth implementation, registered the way a new file would (and removed after)."""
    direct = registry.get_impl('direct')
    impl = registry.register_impl(dataclasses.replace(direct, name='direct_copy'))
    clear_autotune_cache()
    yield impl
    registry.unregister_impl('direct_copy')
    registry.unregister_impl('cuda_only')
    clear_autotune_cache()


def test_an_implementation_without_compute_or_with_a_bad_name_is_refused():
    with pytest.raises(ValueError, match='has no compute'):
        registry.register_impl(registry.Implementation('broken', None))
    with pytest.raises(ValueError, match="other than 'auto'"):
        registry.register_impl(registry.Implementation('auto', lambda *a: None))
    with pytest.raises(ValueError, match='registered already'):
        registry.register_impl(registry.get_impl('fft'))


def test_unknown_names_raise_everywhere():
    """An if/else dispatch used to run the GEMM for any name other than fft / direct."""
    x, w = torch.randn(1, 4, 6, 3), torch.randn(4, 1, 6, 1)
    with pytest.raises(ValueError, match="Unknown ParC impl 'triton'"):
        circular_conv(x, w, None, 'H', 4, 'triton')
    with pytest.raises(ValueError, match="Unknown ParC impl 'Gemm'"):
        compute('Gemm', x, w, 4, 'H', torch.float32)
    with pytest.raises(ValueError, match="Unknown ParC impl 'fast'"):
        ParCConv2d(4, 'H', 6, impl='fast')


def test_a_registered_implementation_runs_is_timed_and_exported(extra_impl):
    x, w = torch.randn(2, 4, 7, 5), torch.randn(4, 1, 7, 1)
    with recorded_impls() as ran:
        y = circular_conv(x, w, None, 'H', 4, 'direct_copy')
    assert ran == ['direct_copy']
    torch.testing.assert_close(y, circular_conv(x, w, None, 'H', 4, 'direct'))
    m = ParCConv2d(4, 'H', 7, impl='direct_copy')
    assert m.impl == 'direct_copy'
    # the autotuner times every implementation available on the device, and only those
    registry.register_impl(dataclasses.replace(registry.get_impl('direct'), name='cuda_only',
                                               devices=('cuda', )))
    with recorded_impls() as ran, autotune(), torch.no_grad():
        circular_conv(x, w, None, 'H', 4, 'auto')
    assert 'direct_copy' in ran and 'cuda_only' not in ran
    assert set(autotune_cache().values()) <= set(registry.impl_names())
    assert registry.available_impls(torch.device('cpu'), torch.float32, exportable=True) == [
        'direct', 'gemm', 'direct_copy']
    assert 'cuda_only' in registry.available_impls(torch.device('cuda'), torch.float32)


def test_export_takes_an_exportable_implementation(monkeypatch):
    from parc_mm.ops import dispatch as config
    cpu = torch.device('cpu')
    assert config.export_impl(cpu, torch.float32) == 'direct'
    # short depthwise kernels as the circulant GEMM, long or dense ones as Concat + Conv
    assert config.export_impl(cpu, torch.float32, 14) == 'gemm'
    assert config.export_impl(cpu, torch.float32, config.EXPORT_GEMM_MAX + 1) == 'direct'
    assert config.export_impl(cpu, torch.float32, 14, dense=True) == 'direct'
    direct = registry.get_impl('direct')
    monkeypatch.setitem(registry._REGISTRY, 'direct',
                        dataclasses.replace(direct, devices=('cuda', )))
    assert config.export_impl(cpu, torch.float32) == 'gemm'
    assert not registry.get_impl('fft').exportable


def test_every_family_appears_in_the_benchmark_table():
    from parc_mm.analysis.benchmark import MODELS
    names = ' '.join(MODELS)
    for family in ('ConvNeXt', 'ResNet50', 'MobileNetV2', 'ParC-Net', 'DeiT', 'Swin',
                   'ParCNetV2'):
        assert family in names, family

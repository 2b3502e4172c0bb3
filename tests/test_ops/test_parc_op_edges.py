"""Edge cases every impl must treat the same way: empty batches, non-finite inputs, mixed
dtypes, frozen parameters, bad arguments."""
import pytest
import torch

from parc_mm.models.layers import ParCConv2d, ParCHW, ParCPosEmbed
from parc_mm.ops import circular_conv

IMPLS = ['direct', 'fft', 'gemm', 'auto']


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('groups', [4, 1, 2])
def test_empty_batch(impl, groups):
    w = torch.randn(4, 4 // groups, 30, 1)
    y = circular_conv(torch.randn(0, 4, 30, 5), w, torch.randn(4), 'H', groups, impl)
    assert y.shape == (0, 4, 30, 5)
    m = ParCHW(8, 30, impl=impl)
    assert m(torch.randn(0, 8, 30, 30)).shape == (0, 8, 30, 30)


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('direction', ['H', 'W'])
@pytest.mark.parametrize('bad', [float('inf'), float('-inf'), float('nan')])
def test_non_finite_input_gives_nan_in_its_row_only(impl, direction, bad):
    torch.manual_seed(0)
    n = 30  # above the CPU fft threshold: 'auto' picks fft here, gemm/direct below
    x = torch.randn(2, 4, n, n)
    x[1, 2, 5, 7] = bad
    w = torch.randn(4, 1, n, 1) if direction == 'H' else torch.randn(4, 1, 1, n)
    y = circular_conv(x, w, None, direction, 4, impl)
    expect = torch.zeros_like(y, dtype=torch.bool)
    if direction == 'H':
        expect[1, 2, :, 7] = True  # the whole column through the bad value, that channel
    else:
        expect[1, 2, 5, :] = True
    assert torch.equal(torch.isnan(y), expect)
    assert torch.isfinite(y[~expect]).all()


@pytest.mark.parametrize('impl', ['direct', 'fft', 'gemm'])
def test_non_finite_dense_kernels_poison_the_group(impl):
    x = torch.randn(1, 4, 9, 6)
    x[0, 1, 3, 2] = float('inf')
    y = circular_conv(x, torch.randn(4, 2, 9, 1), None, 'H', 2, impl)  # 2 groups of 2
    nan = torch.isnan(y)
    assert nan[0, :2, :, 2].all() and nan.sum() == 2 * 9  # group 0, column 2, all rows
    assert not torch.isinf(y).any()


@pytest.mark.parametrize('impl', IMPLS)
def test_half_input_into_float_module_promotes(impl):
    torch.manual_seed(1)
    m = ParCConv2d(4, 'W', base_size=12, impl=impl)
    x = torch.randn(2, 4, 5, 12)
    y = m(x.half())
    assert y.dtype == torch.float32
    # the PE is added in the input dtype (fp16 rounding), the conv in fp32
    torch.testing.assert_close(y, m(x.half().float()), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize('cls', ['conv', 'pe'])
def test_resize_keeps_frozen_parameters_frozen(cls):
    m = ParCConv2d(4, 'H', base_size=8) if cls == 'conv' else ParCPosEmbed(4, 'H', 8)
    for p in m.parameters():
        p.requires_grad_(False)
    m.resize_(11)
    assert all(not p.requires_grad for p in m.parameters())
    assert m.base_size == 11


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='groups must be a positive int'):
        ParCConv2d(4, 'H', groups=0)
    with pytest.raises(ValueError, match='divisible by groups'):
        ParCConv2d(6, 'H', groups=4)
    with pytest.raises(ValueError, match='base_size must be a positive int'):
        ParCConv2d(4, 'H', base_size=7.5)
    with pytest.raises(ValueError, match='groups must be a positive int dividing'):
        circular_conv(torch.randn(1, 4, 8, 8), torch.randn(4, 1, 8, 1), None, 'H', 0)
    with pytest.raises(ValueError, match='groups must be a positive int dividing'):
        circular_conv(torch.randn(1, 6, 8, 8), torch.randn(6, 2, 8, 1), None, 'H', 4)
    with pytest.raises(ValueError, match=r'bias must have shape \(4,\)'):
        circular_conv(torch.randn(1, 4, 8, 8), torch.randn(4, 1, 8, 1), torch.randn(3), 'H', 4)


# --- hostile cases: odd dtypes ---
@pytest.mark.parametrize('impl', ['fft', 'direct', 'gemm', 'auto'])
def test_impls_agree_or_refuse_outside_real_floats(impl):
    from parc_mm.ops import circular_conv
    w = torch.randn(4, 1, 7, 1)
    for x in (torch.randint(-5, 5, (1, 4, 7, 3)), torch.randn(1, 4, 7, 3, dtype=torch.cfloat)):
        with pytest.raises(TypeError, match='real floating-point input'):
            circular_conv(x, w, None, 'H', 4, impl)
    big = torch.full((1, 4, 7, 3), 3e37)
    ref = circular_conv(big.double(), w.double(), None, 'H', 4, 'direct')
    y = circular_conv(big, w, None, 'H', 4, impl)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=0)

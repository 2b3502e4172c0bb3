"""The ParC operator against independent references (torch.roll loops), impls vs each other."""
import pytest
import torch

from parc_mm.models.layers import ParCConv2d, ParCHW
from parc_mm.ops import (
    circular_conv,
    parc_impl,
    resize_to,
    select_impl,
    set_impl,
)

IMPLS = ['direct', 'fft', 'gemm']
SIZES = [(7, 5), (1, 3), (6, 6), (2, 9), (1, 1), (25, 16)]


def roll_reference(x, w, b, direction, groups):
    """y[o, i] = b[o] + sum_c sum_s k[o, c, s] * x[c, (i + s) mod n], by explicit rolls."""
    bsz, c, h, wd = x.shape
    o, ci = w.shape[:2]
    n = h if direction == 'H' else wd
    k = w.reshape(o, ci, n)
    dim = 2 if direction == 'H' else 3
    co = o // groups
    y = torch.zeros(bsz, o, h, wd, dtype=x.dtype)
    for oo in range(o):
        g = oo // co
        for cc in range(ci):
            xc = x[:, g * ci + cc:g * ci + cc + 1]
            for s in range(n):
                y[:, oo:oo + 1] += k[oo, cc, s] * torch.roll(xc, -s, dims=dim)
    if b is not None:
        y += b.view(1, -1, 1, 1)
    return y


def _kernel(o, ci, n, direction, dtype=torch.float64):
    shape = (o, ci, n, 1) if direction == 'H' else (o, ci, 1, n)
    return torch.randn(*shape, dtype=dtype)


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('direction', ['H', 'W'])
@pytest.mark.parametrize('hw', SIZES)
@pytest.mark.parametrize('kind', ['depthwise', 'dense', 'grouped'])
def test_impl_matches_roll_reference(impl, direction, hw, kind):
    torch.manual_seed(0)
    c = 4
    groups = {'depthwise': c, 'dense': 1, 'grouped': 2}[kind]
    n = hw[0] if direction == 'H' else hw[1]
    x = torch.randn(2, c, *hw, dtype=torch.float64)
    w = _kernel(c, c // groups, n, direction)
    b = torch.randn(c, dtype=torch.float64)
    ref = roll_reference(x, w, b, direction, groups)
    out = circular_conv(x, w, b, direction, groups, impl)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('direction', ['H', 'W'])
@pytest.mark.parametrize('dense', [False, True])
def test_impls_agree_fwd_and_grads_float32(direction, dense):
    torch.manual_seed(1)
    c, hw = 8, (13, 10)
    groups = 1 if dense else c
    n = hw[0] if direction == 'H' else hw[1]
    x0 = torch.randn(3, c, *hw)
    w0 = _kernel(c, c // groups, n, direction, torch.float32)
    b0 = torch.randn(c)
    results = {}
    for impl in IMPLS:
        x, w, b = (t.clone().requires_grad_() for t in (x0, w0, b0))
        y = circular_conv(x, w, b, direction, groups, impl)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        results[impl] = (y.detach(), x.grad, w.grad, b.grad)
    for impl in ('fft', 'gemm'):
        for a, r in zip(results[impl], results['direct']):
            rel = (a - r).norm() / r.norm()
            assert rel <= 1e-5, (impl, rel.item())


def test_gradcheck_small():
    torch.manual_seed(2)
    for impl in IMPLS:
        for direction, hw in (('H', (5, 3)), ('W', (2, 4))):
            n = hw[0] if direction == 'H' else hw[1]
            x = torch.randn(1, 2, *hw, dtype=torch.float64, requires_grad=True)
            w = _kernel(2, 1, n, direction).requires_grad_()
            b = torch.randn(2, dtype=torch.float64, requires_grad=True)
            assert torch.autograd.gradcheck(
                lambda x, w, b: circular_conv(x, w, b, direction, 2, impl), (x, w, b))


def test_resize_rule_is_bilinear_align_corners():
    torch.manual_seed(3)
    k = torch.randn(3, 1, 14, 1)
    # independent reference: 1-D linear interpolation with align_corners=True
    n = 9
    pos = torch.arange(n, dtype=torch.float64) * (14 - 1) / (n - 1)
    lo = pos.floor().long().clamp(max=12)
    frac = (pos - lo).float()
    ref = k[:, :, lo, 0] * (1 - frac) + k[:, :, lo + 1, 0] * frac
    out = resize_to(k, n, 'H')
    torch.testing.assert_close(out[..., 0], ref)
    assert resize_to(k, 14, 'H') is k  # no-op at the base size
    kw = k.transpose(2, 3)
    torch.testing.assert_close(resize_to(kw, n, 'W')[:, :, 0, :], ref)
    assert resize_to(k, 1, 'H').shape == (3, 1, 1, 1)


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('hw', [(14, 14), (9, 21), (1, 1), (16, 7)])
def test_module_equals_definition(impl, hw):
    """Module = resize kernel & PE, add PE, circular correlation (checked by rolls)."""
    torch.manual_seed(4)
    for direction in 'HW':
        m = ParCConv2d(4, direction, base_size=14, impl=impl).double()
        with torch.no_grad():
            m.bias.normal_()
        x = torch.randn(2, 4, *hw, dtype=torch.float64)
        n = hw[0] if direction == 'H' else hw[1]
        xp = x + resize_to(m.pe, n, direction)
        ref = roll_reference(xp, resize_to(m.weight, n, direction), m.bias, direction, 4)
        torch.testing.assert_close(m(x), ref, rtol=1e-10, atol=1e-10)


def test_parchw_split_and_channels_last():
    torch.manual_seed(5)
    m = ParCHW(8, base_size=(7, 9), impl='direct')
    x = torch.randn(2, 8, 7, 9)
    y = m(x)
    yh = m.parc_h(x[:, :4])
    yw = m.parc_w(x[:, 4:])
    torch.testing.assert_close(y, torch.cat([yh, yw], 1))
    # a channels_last-strided input (what ConvNeXt's permute hands over) gives the same
    xcl = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    assert not xcl.is_contiguous()
    for impl in IMPLS:
        set_impl(m, impl)
        torch.testing.assert_close(m(xcl), y, rtol=1e-5, atol=1e-5)


def test_dense_parchw_param_shapes():
    m = ParCHW(16, base_size=14, dense=True)
    assert m.parc_h.weight.shape == (8, 8, 14, 1)
    assert m.parc_w.weight.shape == (8, 8, 1, 14)
    assert m.parc_h.pe.shape == (1, 8, 14, 1)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('impl', IMPLS)
def test_autocast_dtype(dtype, impl):
    torch.manual_seed(6)
    m = ParCConv2d(4, 'W', base_size=10, impl=impl)
    x = torch.randn(2, 4, 6, 10)
    ref = m(x)
    with torch.autocast('cpu', dtype=dtype):
        y = m(x)
    assert y.dtype == dtype, (impl, y.dtype)
    torch.testing.assert_close(y.float(), ref, rtol=5e-2, atol=5e-2)


def test_fft_runs_in_float32_under_autocast(monkeypatch):
    seen = []
    import dataclasses

    from parc_mm.ops import registry
    orig = registry.get_impl('fft')

    def spy(x, w, groups, direction, cache=None):
        seen.append((x.dtype, w.dtype))
        return orig.compute(x, w, groups, direction, cache)

    monkeypatch.setitem(registry._REGISTRY, 'fft', dataclasses.replace(orig, compute=spy))
    m = ParCConv2d(4, 'H', base_size=8, impl='fft')
    with torch.autocast('cpu', dtype=torch.bfloat16):
        m(torch.randn(1, 4, 8, 3))
    assert seen == [(torch.float32, torch.float32)]


def test_float64_and_half_inputs():
    m = ParCConv2d(2, 'H', base_size=5, impl='fft').double()
    assert m(torch.randn(1, 2, 5, 3, dtype=torch.float64)).dtype == torch.float64
    m = ParCConv2d(2, 'H', base_size=5, impl='gemm').to(torch.bfloat16)
    assert m(torch.randn(1, 2, 5, 3, dtype=torch.bfloat16)).dtype == torch.bfloat16


@pytest.fixture
def impl_calls(monkeypatch):
    """The names of the impls that ran, in order."""
    import dataclasses

    from parc_mm.ops import registry
    calls = []
    for name in IMPLS:
        orig = registry.get_impl(name)

        def spy(*a, _n=name, _o=orig.compute):
            calls.append(_n)
            return _o(*a)

        monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(orig, compute=spy))
    return calls


def test_auto_selection_and_overrides(impl_calls):
    calls = impl_calls
    x = torch.randn(1, 4, 8, 8)
    m = ParCConv2d(4, 'H', base_size=8)
    m(x)
    assert calls[-1] == select_impl(8, 8, 4, x.device, x.dtype)
    with parc_impl('gemm'):  # global override of 'auto'
        m(x)
        assert calls[-1] == 'gemm'
        m.impl = 'fft'  # an explicit per-module impl wins
        m(x)
        assert calls[-1] == 'fft'
    m.impl = 'auto'
    with parc_impl('fft'):
        m(x)
    assert calls[-1] == 'fft'
    m(x)
    assert calls[-1] == select_impl(8, 8, 4, x.device, x.dtype)


def test_select_impl_rule_cpu():
    cpu = torch.device('cpu')
    # training / uncached: the FFT; cached inference: the stored circulant up to n=128
    assert select_impl(14, 14, 384, cpu, torch.float32) == 'fft'
    assert select_impl(7, 7, 192, cpu, torch.float32) == 'fft'
    assert select_impl(200, 334, 48, cpu, torch.float32) == 'fft'
    assert select_impl(96, 160, 24, cpu, torch.float32, cached=True) == 'gemm'
    assert select_impl(160, 96, 24, cpu, torch.float32, cached=True) == 'fft'
    assert select_impl(14, 14, 256, cpu, torch.float32, dense=True) == 'direct'
    assert select_impl(32, 32, 256, cpu, torch.float32, dense=True) == 'fft'


def test_errors_are_clear():
    m = ParCConv2d(4, 'H', base_size=8)
    with pytest.raises(ValueError, match='4 channels'):
        m(torch.randn(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        m(torch.randn(4, 8, 8))
    with pytest.raises(ValueError, match="direction must be 'H' or 'W'"):
        ParCConv2d(4, 'X')
    with pytest.raises(ValueError, match='Unknown ParC impl'):
        ParCConv2d(4, 'H', impl='winograd')
    with pytest.raises(ValueError, match='even'):
        ParCHW(5)
    with pytest.raises(ValueError, match='resize it'):
        circular_conv(torch.randn(1, 2, 8, 8), torch.randn(2, 1, 7, 1), None, 'H', 2)
    with pytest.raises(ValueError, match='input channels'):
        circular_conv(torch.randn(1, 3, 8, 8), torch.randn(2, 1, 8, 1), None, 'H', 2)


def test_checkpoint_with_other_base_size_is_resized():
    src = ParCConv2d(4, 'W', base_size=16)
    dst = ParCConv2d(4, 'W', base_size=14)
    dst.load_state_dict(src.state_dict())
    torch.testing.assert_close(dst.weight, resize_to(src.weight, 14, 'W'))
    torch.testing.assert_close(dst.pe, resize_to(src.pe, 14, 'W'))
    wrong = ParCConv2d(6, 'W', base_size=14)
    with pytest.raises(RuntimeError, match='size mismatch'):
        wrong.load_state_dict(src.state_dict())


def test_resize_inplace_keeps_function():
    torch.manual_seed(7)
    m = ParCConv2d(4, 'H', base_size=14)
    x = torch.randn(1, 4, 10, 3)
    y = m(x)
    m.resize_(10)
    assert m.weight.shape[2] == 10 and m.base_size == 10
    torch.testing.assert_close(m(x), y)


def test_torch_jit_trace_and_compile():
    torch.manual_seed(8)
    m = ParCHW(8, base_size=12, impl='gemm').eval()
    x = torch.randn(2, 8, 12, 12)
    traced = torch.jit.trace(m, x)
    torch.testing.assert_close(traced(x), m(x))


@pytest.mark.slow
@pytest.mark.parametrize('impl', IMPLS)
def test_torch_compile_fullgraph(impl):
    torch.manual_seed(9)
    m = ParCHW(8, base_size=12, impl=impl).eval()
    x = torch.randn(2, 8, 12, 10)
    compiled = torch.compile(m, fullgraph=True, backend='eager')
    torch.testing.assert_close(compiled(x), m(x), rtol=1e-5, atol=1e-5)


def test_auto_uses_the_cached_rule_in_eval_inference(impl_calls):
    """auto in eval inference (the layer caches its circulant) picks what the cached rule
    says; in training what the uncached one says."""
    calls = impl_calls
    x = torch.randn(1, 8, 40, 16)
    m = ParCConv2d(8, 'H', base_size=40)
    m(x)
    assert calls[-1] == select_impl(40, 16, 8, x.device, x.dtype) == 'fft'
    from parc_mm.ops import inference_mode
    m.eval()
    with torch.no_grad():
        m(x)  # plain eval: nothing cached, the uncached rule
    assert calls[-1] == 'fft'
    inference_mode(m)
    with torch.no_grad():
        m(x)
    assert calls[-1] == select_impl(40, 16, 8, x.device, x.dtype, cached=True) == 'gemm'


@pytest.mark.parametrize('direction,hw', [('H', (6, 3)), ('H', (5, 2)), ('W', (2, 7)),
                                          ('W', (3, 4)), ('H', (1, 3))])
def test_fft_training_backward_exact_and_twice_differentiable(direction, hw):
    """Training through the depthwise FFT path runs its own real-FFT backward (not autograd
    through rfft): first and second derivatives checked numerically, odd / even / length 1."""
    torch.manual_seed(5)
    n = hw[0] if direction == 'H' else hw[1]
    x = torch.randn(2, 3, *hw, dtype=torch.float64, requires_grad=True)
    w = _kernel(3, 1, n, direction).requires_grad_()
    y = circular_conv(x, w, None, direction, 3, 'fft')
    seen, stack = set(), [y.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            stack.extend(f for f, _ in fn.next_functions)
    assert any('DepthwiseFFTCorrelation' in type(fn).__name__ for fn in seen)

    def f(x, w):
        return circular_conv(x, w, None, direction, 3, 'fft')

    assert torch.autograd.gradcheck(f, (x, w))
    assert torch.autograd.gradgradcheck(f, (x, w))


@pytest.mark.parametrize('hw', [(4, 5), (3, 1), (6, 6)])
def test_separable_fft_training_backward(hw):
    """The fused 2-D FFT (ParC-ViT / Swin mixer) trains through its own real-FFT backward:
    equal to two 1-D ParC calls, first and second derivatives checked numerically."""
    from parc_mm.ops import separable_circular_conv2d
    torch.manual_seed(6)
    h, w = hw
    x = torch.randn(2, 3, h, w, dtype=torch.float64, requires_grad=True)
    kh = torch.randn(3, h, dtype=torch.float64, requires_grad=True)
    kw = torch.randn(3, w, dtype=torch.float64, requires_grad=True)
    y = separable_circular_conv2d(x, kh, kw)
    assert 'SeparableFFTCorrelation' in type(y.grad_fn).__name__
    ref = circular_conv(circular_conv(x, kh.view(3, 1, h, 1), None, 'H', 3, 'direct'),
                        kw.view(3, 1, 1, w), None, 'W', 3, 'direct')
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, kh, kw), g)
    ref_grads = torch.autograd.grad(ref, (x, kh, kw), g)
    for a, b in zip((y, ) + grads, (ref, ) + ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradcheck(separable_circular_conv2d, (x, kh, kw))
    assert torch.autograd.gradgradcheck(separable_circular_conv2d, (x, kh, kw))

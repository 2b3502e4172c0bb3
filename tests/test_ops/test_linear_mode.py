"""The operator's linear (zero-padded, oversized-kernel) mode against an independent reference
(explicit loops over taps), every implementation, forward and gradients."""
import copy

import pytest
import torch
import torch.nn.functional as F

from parc_mm.models.layers import LinearParCConv2d, OversizeConv2d
from parc_mm.ops import inference_mode, linear_conv, parc_impl, set_impl
from parc_mm.ops.dispatch import select_impl
from parc_mm.ops.functional import next_fast_len, recorded_impls
from parc_mm.ops.registry import Implementation, available_impls, register_impl, unregister_impl

IMPLS = ['direct', 'fft', 'gemm']
SIZES = [(7, 5), (1, 3), (6, 6), (2, 9), (1, 1), (12, 8)]


def loop_reference(x, w, b, direction, groups):
    """y[o, i] = b[o] + sum_c sum_s k[o, c, s] * x[c, i + s - K // 2], zero outside, by
    explicit loops over output positions and taps."""
    bsz, c, h, wd = x.shape
    o, ci = w.shape[:2]
    dim = 2 if direction == 'H' else 3
    n, taps = x.shape[dim], w.shape[dim]
    k = w.reshape(o, ci, taps)
    co = o // groups
    y = torch.zeros(bsz, o, h, wd, dtype=x.dtype)
    for oo in range(o):
        g = oo // co
        for cc in range(ci):
            xc = x[:, g * ci + cc]
            for i in range(n):
                for s in range(taps):
                    j = i + s - taps // 2
                    if 0 <= j < n:
                        if dim == 2:
                            y[:, oo, i, :] += k[oo, cc, s] * xc[:, j, :]
                        else:
                            y[:, oo, :, i] += k[oo, cc, s] * xc[:, :, j]
    if b is not None:
        y += b.view(1, -1, 1, 1)
    return y


def _kernel(o, ci, taps, direction, dtype=torch.float64):
    shape = (o, ci, taps, 1) if direction == 'H' else (o, ci, 1, taps)
    return torch.randn(*shape, dtype=dtype)


def _taps(n, rule):
    # shorter than the map, exactly 2n - 1 (ParCNetV2), longer than any reach (cropped)
    return {'short': 3, 'oversize': 2 * n - 1, 'longer': 2 * n + 5}[rule]


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('direction', ['H', 'W'])
@pytest.mark.parametrize('hw', SIZES)
@pytest.mark.parametrize('rule', ['short', 'oversize', 'longer'])
@pytest.mark.parametrize('kind', ['depthwise', 'dense'])
def test_linear_impl_matches_loop_reference(impl, direction, hw, rule, kind):
    torch.manual_seed(0)
    c = 4
    groups = c if kind == 'depthwise' else 1
    n = hw[0] if direction == 'H' else hw[1]
    x = torch.randn(2, c, *hw, dtype=torch.float64)
    w = _kernel(c, c // groups, _taps(n, rule), direction)
    b = torch.randn(c, dtype=torch.float64)
    ref = loop_reference(x, w, b, direction, groups)
    out = linear_conv(x, w, b, direction, groups, impl)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('direction', ['H', 'W'])
@pytest.mark.parametrize('hw', [(5, 7), (6, 4), (1, 2)])
def test_linear_grads_match_the_direct_form(impl, direction, hw):
    """x, weight and bias gradients of every impl equal the official padded conv's (float64);
    the FFT's training path (its own backward) included."""
    torch.manual_seed(1)
    c = 3
    n = hw[0] if direction == 'H' else hw[1]
    x0 = torch.randn(2, c, *hw, dtype=torch.float64)
    w0 = _kernel(c, 1, 2 * n - 1, direction)
    b0 = torch.randn(c, dtype=torch.float64)
    g = torch.randn(2, c, *hw, dtype=torch.float64)
    grads = {}
    for name in ('direct', impl):
        x, w, b = (t.clone().requires_grad_() for t in (x0, w0, b0))
        (linear_conv(x, w, b, direction, c, name) * g).sum().backward()
        grads[name] = (x.grad, w.grad, b.grad)
    for a, r in zip(grads[impl], grads['direct']):
        torch.testing.assert_close(a, r, rtol=1e-10, atol=1e-10)


def test_linear_gradcheck_fft_and_gemm():
    torch.manual_seed(2)
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    for direction, taps in (('H', 5), ('W', 3)):
        w = _kernel(2, 1, taps, direction).requires_grad_()
        for impl in ('fft', 'gemm'):
            assert torch.autograd.gradcheck(
                lambda a, b, i=impl, d=direction: linear_conv(a, b, None, d, 2, i), (x, w))


def test_official_padded_conv_is_the_direct_form():
    """``direct`` is exactly the official OversizeConv2d: nn.Conv2d with padding K // 2."""
    torch.manual_seed(3)
    conv = torch.nn.Conv2d(6, 6, (11, 1), padding=(5, 0), groups=6, bias=False).double()
    x = torch.randn(2, 6, 6, 9, dtype=torch.float64)
    torch.testing.assert_close(linear_conv(x, conv.weight, None, 'H', 6, 'direct'), conv(x),
                               rtol=0, atol=0)


def test_next_fast_len():
    for m in (1, 2, 3, 13, 55, 111, 166, 310, 438, 1000):
        v = next_fast_len(m)
        assert v >= m
        odd = v
        while odd % 2 == 0:
            odd //= 2
        assert odd in (1, 3, 5, 7, 9, 15)
    assert next_fast_len(438) == 448  # not 441 = 9 * 49 (4.5x slower to transform)


def test_linear_errors_are_clear():
    x = torch.randn(1, 2, 5, 5)
    with pytest.raises(ValueError, match='odd kernel'):
        linear_conv(x, torch.randn(2, 1, 4, 1), None, 'H', 2)
    with pytest.raises(ValueError, match='odd kernel'):
        linear_conv(x, torch.randn(2, 1, 3, 3), None, 'H', 2)
    with pytest.raises(ValueError, match='input channels'):
        linear_conv(torch.randn(1, 3, 5, 5), torch.randn(2, 1, 3, 1), None, 'H', 2)
    with pytest.raises(ValueError, match='boundary mode'):
        from parc_mm.ops.functional import global_conv
        global_conv(x, torch.randn(2, 1, 3, 1), None, 'H', 2, 'auto', None, 'reflect')
    with pytest.raises(ValueError, match='odd kernel_size'):
        LinearParCConv2d(4, 'H', 8)
    with pytest.raises(ValueError, match='interpolate'):
        LinearParCConv2d(4, 'H', 7, interpolate=6)


def test_impl_without_linear_mode_is_refused_and_skipped_by_auto():
    """A registered implementation without a linear compute: refused by name when asked for
    explicitly, never chosen by auto or the autotuner for a linear call."""
    register_impl(Implementation('circ_only', lambda x, w, g, d, c=None: x))
    try:
        assert 'circ_only' not in available_impls(torch.device('cpu'), torch.float32,
                                                  mode='linear')
        with pytest.raises(ValueError, match="no linear mode"):
            linear_conv(torch.randn(1, 2, 4, 4), torch.randn(2, 1, 3, 1), None, 'H', 2,
                        'circ_only')
        with parc_impl('circ_only'), recorded_impls() as ran:
            linear_conv(torch.randn(1, 2, 4, 4), torch.randn(2, 1, 3, 1), None, 'H', 2)
        assert ran and 'circ_only' not in ran
    finally:
        unregister_impl('circ_only')


def test_linear_rule_is_direction_aware_and_exports_never_fft():
    cpu = torch.device('cpu')
    f32 = torch.float32
    # short kernels: the direct conv; cached inference: the Toeplitz GEMM up to 384, then FFT
    assert select_impl(7, 7, 320, cpu, f32, mode='linear', taps=13) == 'direct'
    assert select_impl(328, 200, 48, cpu, f32, mode='linear', taps=111, cached=True,
                       direction='W') == 'gemm'
    assert select_impl(400, 200, 48, cpu, f32, mode='linear', taps=111, cached=True,
                       direction='W') == 'fft'
    # training: GEMM on small maps, then GEMM along H and FFT along W
    assert select_impl(56, 56, 48, cpu, f32, mode='linear', taps=111, direction='W',
                       training=True) == 'gemm'
    assert select_impl(100, 167, 48, cpu, f32, mode='linear', taps=111, direction='W',
                       training=True) == 'fft'
    assert select_impl(100, 167, 48, cpu, f32, mode='linear', taps=111, direction='H',
                       training=True) == 'gemm'
    from parc_mm.ops.dispatch import export_impl
    assert export_impl(cpu, f32, 56, mode='linear') == 'gemm'
    assert export_impl(cpu, f32, 200, mode='linear') == 'direct'


@pytest.mark.parametrize('interpolate', [False, True, 9])
def test_layer_kernel_per_input_size(interpolate):
    """interpolate=False: the stored kernel on every input; True: resized to 2n - 1
    (bilinear, align_corners=True, the official formula); an int: that length."""
    torch.manual_seed(4)
    layer = LinearParCConv2d(3, 'W', 13, interpolate=interpolate).double()
    x = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    taps = {False: 13, True: 11, 9: 9}[interpolate]
    k = layer.weight if taps == 13 else F.interpolate(layer.weight, [1, taps], mode='bilinear',
                                                       align_corners=True)
    ref = F.conv2d(x, k, None, 1, (0, taps // 2), 1, 3)
    for impl in IMPLS:
        set_impl(layer, impl)
        torch.testing.assert_close(layer(x), ref, rtol=1e-10, atol=1e-10)


def test_oversize_conv_inference_mode_equals_and_sees_updates():
    torch.manual_seed(5)
    m = OversizeConv2d(4, 15, interpolate=True).double()
    x = torch.randn(1, 4, 8, 10, dtype=torch.float64)
    ref = m(x).detach()
    inference_mode(m)
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(m(x), ref, rtol=1e-10, atol=1e-10)  # from the plan
        m.conv_h.weight.mul_(2)  # an in-place update bumps the version: the plan is dropped
        torch.testing.assert_close(m(x), 2 * ref, rtol=1e-10, atol=1e-10)
    clone = copy.deepcopy(m)
    assert '_cache' not in clone.conv_h.__dict__
    with torch.no_grad():
        torch.testing.assert_close(clone(x), 2 * ref, rtol=1e-10, atol=1e-10)


def test_layer_resize_fixes_the_kernel_for_an_input_size():
    torch.manual_seed(6)
    m = LinearParCConv2d(2, 'H', 9, interpolate=True).double()
    x = torch.randn(1, 2, 7, 3, dtype=torch.float64)
    ref = m(x)
    m.resize_(7)
    assert m.weight.shape[2] == 13 and m.interpolate is False
    torch.testing.assert_close(m(x), ref, rtol=1e-12, atol=1e-12)


def test_channels_last_and_empty_batch():
    torch.manual_seed(7)
    x = torch.randn(2, 4, 6, 5).to(memory_format=torch.channels_last)
    w = torch.randn(4, 1, 1, 9)
    ref = linear_conv(x.contiguous(), w, None, 'W', 4, 'direct')
    for impl in IMPLS:
        torch.testing.assert_close(linear_conv(x, w, None, 'W', 4, impl), ref, rtol=1e-5,
                                   atol=1e-5)
    assert linear_conv(x[:0], w, None, 'W', 4).shape == (0, 4, 6, 5)


def test_export_holds_no_fft_and_equals_pytorch(tmp_path):
    onnx = pytest.importorskip('onnx')
    ort = pytest.importorskip('onnxruntime')
    torch.manual_seed(8)
    m = OversizeConv2d(4, 15).eval()
    x = torch.randn(1, 4, 12, 20)
    path = str(tmp_path / 'm.onnx')
    torch.onnx.export(m, (x, ), path, dynamo=False, opset_version=13)
    ops = {n.op_type for n in onnx.load(path).graph.node}
    # maps <= 64: the Toeplitz GEMM with a constant matrix (no gather, no DFT)
    assert ops - {'Cast', 'Constant'} == {'MatMul'}, ops
    sess = ort.InferenceSession(path)
    y = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(y), m(x), rtol=1e-4, atol=1e-5)


def test_torch_export_and_compile():
    torch.manual_seed(9)
    m = OversizeConv2d(4, 9).eval()
    x = torch.randn(1, 4, 6, 7)
    ref = m(x)
    ep = torch.export.export(m, (x, ))
    torch.testing.assert_close(ep.module()(x), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.compile(m, fullgraph=True)(x), ref, rtol=1e-5, atol=1e-5)


def test_autotuner_keys_the_linear_mode_apart():
    """The autotuner times the linear call's own candidates and keeps its choice under a key
    of its own (mode and kernel length): a circular call of the same shape is another key."""
    from parc_mm.ops import autotune, autotune_cache, circular_conv, clear_autotune_cache
    clear_autotune_cache()
    try:
        x = torch.randn(1, 4, 6, 8)
        with autotune(), torch.no_grad():
            linear_conv(x, torch.randn(4, 1, 1, 15), None, 'W', 4)
            linear_conv(x, torch.randn(4, 1, 1, 9), None, 'W', 4)
            circular_conv(x, torch.randn(4, 1, 1, 8), None, 'W', 4)
        keys = autotune_cache()
        assert len(keys) == 3, keys
        assert sum('linear15' in k for k in keys) == 1 and sum('linear9' in k for k in keys) == 1
        assert set(keys.values()) <= {'direct', 'fft', 'gemm'}
    finally:
        clear_autotune_cache()


@pytest.mark.parametrize('impl', IMPLS)
def test_autocast_and_deterministic_training(impl):
    """bf16 autocast: every impl returns the autocast dtype (the FFT computes in float32);
    deterministic mode: a training step with kernels resized to 2n - 1 runs and its
    gradients equal the non-deterministic run's."""
    torch.manual_seed(10)
    m = OversizeConv2d(4, 9, interpolate=True)
    set_impl(m, impl)
    x = torch.randn(2, 4, 6, 10)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = m(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), m(x), rtol=0.05, atol=0.05)
    grads = []
    for det in (False, True):
        m.zero_grad()
        torch.use_deterministic_algorithms(det)
        try:
            m(x).square().sum().backward()
        finally:
            torch.use_deterministic_algorithms(False)
        grads.append(m.conv_h.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)

"""What would fail on the GPUs users train on, rehearsed on CPU: deterministic mode, CUDA-graph
capture, the dtype under AMP, torch.compile with autotuned choices, training-time autotuning."""

import pytest
import torch
import torch.nn.functional as F

from parc_mm.models.layers import ParCHW
from parc_mm.ops import (
    autotune,
    autotune_cache,
    autotuner,
    circular_conv,
    clear_autotune_cache,
)
from parc_mm.ops import functional as F_
from parc_mm.ops.registry import impl_names
from parc_mm.ops.resize import interpolation_matrix, resize_to


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_autotune_cache()
    yield
    clear_autotune_cache()


def _grad_fns(t):
    seen, stack, names = set(), [t.grad_fn], []
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.append(type(fn).__name__)
        stack += [f for f, _ in fn.next_functions]
    return names


@pytest.mark.parametrize('direction,n_in,n', [('H', 14, 25), ('W', 7, 13), ('H', 8, 3),
                                              ('W', 5, 1), ('H', 1, 6)])
def test_resize_is_deterministic_and_equals_bilinear(direction, n_in, n):
    """The CUDA backward of bilinear interpolation has no deterministic implementation (the
    first backward under ``torch.use_deterministic_algorithms(True)`` raises there); the resize
    keeps bilinear's forward bit for bit and takes its backward from the interpolation
    matrix, which is deterministic on every device."""
    shape = (6, 1, n_in, 1) if direction == 'H' else (6, 1, 1, n_in)
    w = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    size = (n, 1) if direction == 'H' else (1, n)
    ref = F.interpolate(w, size=size, mode='bilinear', align_corners=True)
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        y = resize_to(w, n, direction)
        names = _grad_fns(y)
        assert not any('Upsample' in k for k in names), names
        g = torch.randn_like(y)
        (gw, ) = torch.autograd.grad(y, w, g)
    finally:
        torch.use_deterministic_algorithms(old)
    assert torch.equal(y, ref)
    (gref, ) = torch.autograd.grad(ref, w, g)
    torch.testing.assert_close(gw, gref, rtol=1e-12, atol=1e-12)
    torch.autograd.gradcheck(lambda t: resize_to(t, n, direction), (w, ))
    m = interpolation_matrix(n_in, n, torch.float64)
    assert m.shape == (n_in, n) and torch.allclose(m.sum(0), torch.ones(n, dtype=m.dtype))


def test_parc_trains_at_a_new_size_in_deterministic_mode():
    m = ParCHW(8, base_size=(14, 10))
    x = torch.randn(2, 8, 19, 13, requires_grad=True)
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        y = m(x)
        assert not any('Upsample' in k for k in _grad_fns(y))
        y.square().sum().backward()
    finally:
        torch.use_deterministic_algorithms(old)
    assert all(torch.isfinite(p.grad).all() for p in m.parameters())


def test_autotuner_never_times_during_graph_capture(monkeypatch):
    """A configuration first seen while a CUDA graph is captured: timing would synchronize
    inside the capture. The rule (or a cached choice) is used instead."""
    timed = []
    monkeypatch.setattr(autotuner, '_timed', lambda *a: timed.append(a) or 1.0)
    monkeypatch.setattr(autotuner, 'capturing', lambda device: True)
    x, w = torch.randn(1, 4, 9, 5), torch.randn(4, 1, 9, 1)
    with autotune():
        circular_conv(x, w, None, 'H', 4, 'auto')
    assert timed == [] and autotune_cache() == {}
    monkeypatch.setattr(autotuner, 'capturing', lambda device: False)
    with autotune():
        circular_conv(x, w, None, 'H', 4, 'auto')
    assert timed and len(autotune_cache()) == 1


def test_cuda_timing_synchronizes_the_inputs_device(monkeypatch):
    synced = []
    monkeypatch.setattr(torch.cuda, 'synchronize', lambda device=None: synced.append(device))
    dev = torch.device('cuda', 1)
    autotuner._timed(lambda: None, dev)
    assert synced and all(d == dev for d in synced)


def test_the_rule_sees_the_dtype_the_conv_runs_in_under_autocast(monkeypatch):
    seen = []
    from parc_mm.ops import dispatch
    orig = dispatch.select_impl
    monkeypatch.setattr(dispatch, 'select_impl', lambda *a, **k: seen.append(a[4]) or orig(*a, **k))
    x, w = torch.randn(1, 4, 9, 5), torch.randn(4, 1, 9, 1)  # an fp32 residual stream
    with torch.autocast('cpu', dtype=torch.bfloat16):
        y = circular_conv(x, w, None, 'H', 4, 'auto')
    assert seen == [torch.bfloat16] and y.dtype == torch.bfloat16
    with F_.recorded_impls() as ran:
        circular_conv(x, w, None, 'H', 4, 'auto')
    assert seen[-1] == torch.float32 and len(ran) == 1


def test_training_keys_are_timed_forward_and_backward(monkeypatch):
    grads = []
    orig = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, 'grad', lambda *a, **k: grads.append(1) or orig(*a, **k))
    w = torch.randn(4, 1, 9, 1, requires_grad=True)
    x = torch.randn(2, 4, 9, 5, requires_grad=True)
    with autotune():
        y = circular_conv(x, w, None, 'H', 4, 'auto')
    assert len(grads) == 4 * 3  # each impl: warm-up + 3 timed fwd + bwd
    (key, choice), = autotune_cache().items()
    assert key.endswith('|train') and choice in impl_names()
    y.sum().backward()  # the call itself still trains: its own graph is intact
    assert x.grad is not None and w.grad is not None
    grads.clear()
    with autotune(), torch.no_grad():
        circular_conv(x, w, None, 'H', 4, 'auto')
    assert grads == []  # eval keys: forward only


def _graphs(fn, *args, dynamic=False):
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    out = torch.compile(fn, backend=backend, dynamic=dynamic)(*args)
    return out, '\n'.join(g.code for g in graphs)


def test_compile_uses_a_loaded_choice(tmp_path):
    """Compiled and eager run the same choice for a configuration the autotuner measured or
    loaded, also when the process compiles before any eager call (a deployment that loads its
    cache file), and with dynamic shapes (the lookup specialises the size)."""
    import json
    x, w = torch.randn(1, 4, 12, 5), torch.randn(4, 1, 12, 1)
    key = autotuner.cache_key(x, w, 4, 'H')
    path = tmp_path / 'cache.json'
    path.write_text(json.dumps({key: 'direct'}))
    autotuner._DEVICE_NAMES.clear()  # a fresh process: no eager ParC call yet
    autotuner.load_autotune_cache(str(path))

    def f(x, w):
        return circular_conv(x, w, None, 'H', 4, 'auto')

    with torch.no_grad():
        for dynamic in (False, True):
            out, code = _graphs(f, x, w, dynamic=dynamic)
            assert 'conv2d' in code and 'fft' not in code, code
            torch.testing.assert_close(out, circular_conv(x, w, None, 'H', 4, 'direct'))
    torch._dynamo.reset()

"""Inference caches of the ParC layers: resized kernel / PE, FFT spectrum and circulant matrix
computed once per input size in eval mode, fresh after a weight update, a new size or train."""
import copy

import pytest
import torch

from parc_mm.models.layers import ParCConv2d, ParCHW, ParCPosEmbed
from parc_mm.models.layers import parc as L_
from parc_mm.ops import functional as F_
from parc_mm.ops import inference_mode
from parc_mm.ops import resize as R_


def _count(monkeypatch, module, name):
    calls = []
    orig = getattr(module, name)

    def spy(*a, **k):
        calls.append(name)
        return orig(*a, **k)

    monkeypatch.setattr(module, name, spy)
    return calls


@pytest.mark.parametrize('impl', ['fft', 'gemm', 'direct'])
def test_eval_results_equal_and_kernels_computed_once(monkeypatch, impl):
    torch.manual_seed(0)
    m = inference_mode(ParCConv2d(4, 'H', base_size=10, impl=impl))
    x = torch.randn(2, 4, 13, 7)
    ref = m(x)  # grad enabled: no cache
    spectrum = _count(monkeypatch, torch.fft, 'rfft')
    circ = _count(monkeypatch, F_, '_circulant')
    with torch.no_grad():
        a = m(x)
        n_after_first = len(spectrum), len(circ)
        b = m(x)
    torch.testing.assert_close(a, ref)
    assert torch.equal(a, b)
    if impl == 'fft':  # first call: input, kernel and (for the constant) PE spectra;
        assert n_after_first[0] == 3 and len(spectrum) == 4  # second: the input's only
    if impl == 'gemm':
        assert n_after_first[1] == 1 and len(circ) == 1


def test_weight_update_new_size_and_train_mode_give_fresh_results():
    torch.manual_seed(1)
    m = inference_mode(ParCHW(8, 12, impl='fft'))
    x = torch.randn(1, 8, 12, 12)
    with torch.no_grad():
        y0 = m(x)
        m.parc_h.weight.add_(1.0)  # an in-place update (optimizer step, load_state_dict)
        y1 = m(x)
        assert not torch.allclose(y0, y1)
        m.parc_h.weight.sub_(1.0)
        torch.testing.assert_close(m(x), y0)
        z = m(torch.randn(1, 8, 9, 15))  # another size: resized afresh
        assert z.shape == (1, 8, 9, 15)
    m.load_state_dict({k: v + 0.5 for k, v in m.state_dict().items()})
    with torch.no_grad():
        y2 = m(x)
    m.train()
    torch.testing.assert_close(m(x), y2)  # train mode (uncached) agrees with the fresh cache


def test_pos_embed_and_resize_inplace(monkeypatch):
    pe = inference_mode(ParCPosEmbed(4, 'W', 6))
    calls = _count(monkeypatch, R_.F, 'interpolate')
    x = torch.randn(1, 4, 3, 9)
    with torch.no_grad():
        a, b = pe(x), pe(x)
    assert torch.equal(a, b) and len(calls) == 1
    pe.resize_(9)  # new parameter storage: the cache follows
    with torch.no_grad():
        torch.testing.assert_close(pe(x), x + pe.weight)


@pytest.mark.parametrize('impl', ['direct', 'fft', 'gemm'])
def test_channels_last_input_same_result(impl):
    m = ParCHW(8, (9, 11), impl=impl)
    x = torch.randn(2, 8, 9, 11)
    torch.testing.assert_close(m(x.to(memory_format=torch.channels_last)), m(x))


@pytest.mark.parametrize('impl', ['fft', 'gemm', 'direct'])
@pytest.mark.parametrize('direction', ['H', 'W'])
@pytest.mark.parametrize('use_pe,bias,groups', [(True, True, None), (False, True, None),
                                                (True, False, None), (False, False, None),
                                                (True, True, 1), (True, True, 2)])
def test_eval_plan_folds_pe_and_bias_exactly(impl, direction, use_pe, bias, groups):
    """In eval inference the layer computes conv(x) + (conv(pe) + b): the same values as the
    training-mode conv(x + pe) + b, for every impl, direction, depthwise / grouped / dense,
    with and without PE and bias, on odd, non-square, batched inputs, call after call."""
    torch.manual_seed(2)
    m = ParCConv2d(4, direction, base_size=6, groups=groups, use_pe=use_pe, bias=bias,
                   impl=impl)
    with torch.no_grad():  # non-trivial PE and bias
        if m.bias is not None:
            m.bias.normal_()
        if m.pe is not None:
            m.pe.normal_()
    for shape in [(3, 4, 7, 5), (1, 4, 1, 9), (2, 4, 5, 1)]:
        x = torch.randn(*shape, dtype=torch.float64)
        m.double().train()
        ref = m(x)  # uncached: conv(x + pe) + b
        inference_mode(m)
        with torch.no_grad():
            a, b = m(x), m(x)
        torch.testing.assert_close(a, ref, rtol=1e-12, atol=1e-12)
        assert torch.equal(a, b)


def test_eval_plan_follows_the_global_impl_and_the_autotuner(monkeypatch):
    """The plan stores the impl 'auto' resolved to; a global override or an autotuner change
    afterwards is followed, not shadowed by the stored choice."""
    from parc_mm.ops import autotune, clear_autotune_cache, parc_impl
    ran = []
    orig = F_.compute
    for module in (F_, L_):  # the op and the layer's eval plan both call it
        monkeypatch.setattr(module, 'compute',
                            lambda impl, *a: ran.append(impl) or orig(impl, *a))
    m = inference_mode(ParCConv2d(4, 'H', base_size=8))
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        ref = m(x)
        assert ran[-1] == 'gemm'  # the cached-inference rule at length 8
        with parc_impl('direct'):
            torch.testing.assert_close(m(x), ref)
            assert ran[-1] == 'direct'
        m(x)
        assert ran[-1] == 'gemm'
        clear_autotune_cache()
        try:
            with autotune():
                timed = len(ran)
                m(x)
                assert len(ran) > timed + 1  # timed every impl, then ran the winner
                choice = ran[-1]
                m(x)
                assert ran[-1] == choice
        finally:
            clear_autotune_cache()


def test_eval_plan_keeps_non_finite_semantics_and_autocast_dtype():
    m = inference_mode(ParCConv2d(4, 'W', base_size=6, impl='gemm'))
    x = torch.randn(2, 4, 3, 6)
    x[1, 2, 0, 4] = float('inf')
    with torch.no_grad():
        y = m(x)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            z = m(x[:1])
    assert torch.isnan(y[1, 2, 0]).all() and torch.isfinite(y[1, 2, 1:]).all()
    assert torch.isfinite(y[0]).all() and torch.isfinite(y[1, [0, 1, 3]]).all()
    assert z.dtype == torch.bfloat16
    torch.testing.assert_close(z.float(), y[:1], rtol=2e-2, atol=2e-2)


def test_fused_token_mixer_eval_cache(monkeypatch):
    """The ParC-ViT / Swin mixer's fused 2-D FFT in eval: kernels' spectrum and the constant
    fused(0) kept per grid, same values as the training-mode path, fresh after a weight
    update or on another grid; a repeated call transforms only its input."""
    from parc_mm.models.layers.token_mixer import ParCTokenMixer
    torch.manual_seed(3)
    m = ParCTokenMixer(8, (5, 6), impl='fft').double()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_()
    x = torch.randn(2, 5 * 6, 8, dtype=torch.float64)
    ref = m(x, (5, 6))  # training mode: computed afresh
    inference_mode(m)
    fft2 = _count(monkeypatch, torch.fft, 'rfft2')
    with torch.no_grad():
        a = m(x, (5, 6))
        first = len(fft2)
        b = m(x, (5, 6))
        assert first == 2 and len(fft2) == 3  # input + fused(0); then the input only
        torch.testing.assert_close(a, ref, rtol=1e-12, atol=1e-12)
        assert torch.equal(a, b)
        m.branch_wh[1].bias.add_(1.0)  # a parameter of the constant only
        c = m(x, (5, 6))
        assert not torch.allclose(c, a)
        y = torch.randn(1, 7 * 3, 8, dtype=torch.float64)
        d = m(y, (7, 3))
    m.train()
    torch.testing.assert_close(m(x, (5, 6)), c, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m(y, (7, 3)), d, rtol=1e-12, atol=1e-12)


def test_eval_plans_stay_bounded_over_many_input_shapes():
    """A detector evaluates images of many widths with the same height: the per-layer eval
    state holds one constant per impl / dtype and a bounded number of resolved impls."""
    m = inference_mode(ParCConv2d(4, 'H', base_size=6))
    with torch.no_grad():
        for width in range(1, 400):
            m(torch.randn(1, 4, 6, width))
    assert len(m._cache['consts']) <= 3 and len(m._cache['impls']) <= 256


# --- hostile cases: inference caches ---

@pytest.mark.parametrize('impl', ['auto', 'fft', 'gemm', 'direct'])
def test_mean_teacher_updates_through_data_are_seen_in_eval(impl):
    """mmdet's MeanTeacherHook keeps the teacher in eval mode forever and updates it with
    ``dst.data.mul_().add_()``: no version counter moves. Every eval forward must see it."""
    from parc_mm.models.layers import ParCHW
    from parc_mm.models.layers.token_mixer import ParCTokenMixer
    torch.manual_seed(0)
    for teacher, student, x, call in (
            (ParCHW(8, 10, impl=impl), ParCHW(8, 10, impl=impl), torch.randn(2, 8, 12, 9),
             lambda m, x: m(x)),
            (ParCTokenMixer(8, (6, 5), impl=impl), ParCTokenMixer(8, (6, 5), impl=impl),
             torch.randn(2, 42, 8), lambda m, x: m(x, (7, 6)))):
        teacher.eval()
        for _ in range(3):
            with torch.no_grad():
                out = call(teacher, x)
            for (_, dst), (_, src) in zip(teacher.named_parameters(),
                                          student.named_parameters()):
                dst.data.mul_(0.5).add_(src.data + 0.1, alpha=0.5)
            with torch.no_grad():
                after = call(teacher, x)
            ref = copy.deepcopy(teacher).eval()
            with torch.no_grad():
                torch.testing.assert_close(after, call(ref, x), rtol=1e-5, atol=1e-5)
            assert not torch.allclose(after, out)


def test_bias_only_update_in_inference_mode_is_seen():
    from parc_mm.models.layers import ParCConv2d
    from parc_mm.ops import inference_mode
    m = inference_mode(ParCConv2d(4, 'H', 8, impl='gemm'))
    x = torch.randn(1, 4, 8, 5)
    with torch.no_grad():
        a = m(x)
        m.bias.add_(1.0)  # in place, as an optimizer step: a version bump
        torch.testing.assert_close(m(x), a + 1.0)


def test_deepcopy_and_save_after_eval_forwards_and_a_training_step(tmp_path):
    import io

    from parc_mm.models.backbones.parc_convnext import ParCConvNeXt
    from parc_mm.ops import inference_mode
    torch.manual_seed(0)
    m = ParCConvNeXt(arch='atto', parc_cfg=dict(blocks='all'))
    x = torch.randn(1, 3, 64, 96)
    empty = io.BytesIO()
    torch.save(m, empty)
    inference_mode(m)
    with torch.no_grad():
        m(x)
    after_eval = io.BytesIO()
    torch.save(m, after_eval)
    assert after_eval.tell() <= empty.tell() * 1.01  # no cache is pickled
    m.train()
    m(x)[-1].sum().backward()
    copy.deepcopy(m)  # EMA / SWA / best-model copies
    inference_mode(m)
    with torch.no_grad():
        m(x)
    twin = copy.deepcopy(m)
    with torch.no_grad():
        torch.testing.assert_close(twin(x)[-1], m(x)[-1])

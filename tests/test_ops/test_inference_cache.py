"""Inference caches of the ParC layers: resized kernel / PE, FFT spectrum and circulant matrix
computed once per input size in eval mode, fresh after a weight update, a new size or train."""
import pytest
import torch

from parc_mm.ops import ParCConv2d, ParCHW, ParCPosEmbed
from parc_mm.ops import functional as F_
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
    m = ParCConv2d(4, 'H', base_size=10, impl=impl).eval()
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
    if impl == 'fft':  # first call: input + kernel spectra; second: the input's only
        assert n_after_first[0] == 2 and len(spectrum) == 3
    if impl == 'gemm':
        assert n_after_first[1] == 1 and len(circ) == 1


def test_weight_update_new_size_and_train_mode_give_fresh_results():
    torch.manual_seed(1)
    m = ParCHW(8, 12, impl='fft').eval()
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
    pe = ParCPosEmbed(4, 'W', 6).eval()
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

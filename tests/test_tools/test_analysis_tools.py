"""get_flops (ParC-aware FLOPs), paper_tables, erf on tiny settings."""
import math
import os.path as osp

import numpy as np
import pytest
import torch

from parc_mm.analysis.complexity import complexity, erf_areas, erf_map
from parc_mm.models.layers import ParCHW
from parc_mm.ops import set_impl

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('impl', ['direct', 'gemm', 'fft'])
def test_parc_flops_by_impl(impl):
    c, h, w = 8, 12, 16
    m = ParCHW(c, (h, w), impl=impl, use_pe=False, bias=False)
    r = complexity(m, (c, h, w), task='none')
    half = c // 2
    if impl in ('direct', 'gemm'):
        # every output sums n taps: H-half n=h, W-half n=w
        expected = half * h * w * h + half * h * w * w
    else:
        def fft(n, signals):
            return signals * 2 * n * math.log2(n)
        nf_h, nf_w = h // 2 + 1, w // 2 + 1
        expected = (fft(h, half * w) * 2 + fft(h, half) +  # rfft(x), irfft(y), rfft(k)
                    fft(w, half * h) * 2 + fft(w, half) +
                    4 * half * nf_h * w + 4 * half * h * nf_w)  # complex products
    assert r['flops'] == pytest.approx(expected, rel=0.02), (r, expected)
    assert r['parc_flops'] == pytest.approx(r['flops'], rel=1e-6)


def test_get_flops_tool_on_config():
    # in process: the implementation changes the ParC FLOPs, never the parameters
    import sys
    sys.path.insert(0, ROOT)
    from tools.analysis import get_flops
    cfg = 'configs/parc_convnext/parc-convnext-xt_32xb128_in1k.py'
    direct = get_flops.main([cfg, '--shape', '64'])
    fft = get_flops.main([cfg, '--shape', '64', '--impl', 'fft'])
    assert round(direct['params'] / 1e6, 3) == 7.413 and fft['params'] == direct['params']
    assert 0 < direct['parc_flops'] < direct['flops']
    assert fft['parc_flops'] != direct['parc_flops']


def test_get_flops_cli():
    import subprocess
    import sys
    p = subprocess.run([sys.executable, 'tools/analysis/get_flops.py',
                        'configs/parc_convnext/parc-convnext-xt_32xb128_in1k.py', '--shape', '64'],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    assert 'params: 7.413 M' in p.stdout and 'ParC layers' in p.stdout


def test_paper_tables_cls(tmp_path):
    import sys
    sys.path.insert(0, ROOT)
    from tools.analysis import paper_tables
    out = tmp_path / 't.md'
    text = paper_tables.main(['--tasks', 'cls', '--out', str(out)])
    assert '| ParC-ConvNeXt-XT | parc-convnext-xt_32xb128_in1k.py | 224x224 | 7.41 | 7.4 |' in text
    assert '| ParC-Net-S | parc-net-s_8xb128-ms-300e_in1k.py | 256x256 | 5.04 | 5.0 |' in text
    # the ViT -> ConvNet conversions beside their attention baselines (attention FLOPs counted)
    assert '| parc-deit-small_4xb256_in1k.py | deit-small_4xb256_in1k.py | 16.80 / 22.05 | ' \
        '3.21 / 4.61 | 0.70x |' in text
    assert '| parc-swin-tiny_16xb64_in1k.py | swin-tiny_16xb64_in1k.py | 21.96 / 28.29 |' in text
    assert out.read_text().strip() == text.strip()


def test_erf_map_and_areas():
    torch.manual_seed(0)
    # a 3x3 conv stack has a small ERF; a ParC layer makes it global along H and W
    local = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1))
    glob_ = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), ParCHW(4, 32))
    set_impl(glob_, 'direct')
    imgs = [torch.randn(3, 32, 32) for _ in range(2)]
    a_local = erf_areas(erf_map(local, imgs))
    a_glob = erf_areas(erf_map(glob_, imgs))
    assert a_local[0.99] <= 9 / (32 * 32) + 1e-9
    assert a_glob[0.99] > 0.5
    m = np.zeros((9, 9))
    m[4, 4] = 1.0
    assert erf_areas(m)[0.5] == pytest.approx(1 / 81)


def test_erf_tool(tmp_path):
    import sys
    sys.path.insert(0, ROOT)
    from parc_mm.datasets import synthetic
    from tools.analysis import erf
    root = synthetic.generate(str(tmp_path / 'shapes'), num_train=2, num_val=2,
                              cls_per_class=(1, 1))
    out = str(tmp_path / 'erf.png')
    res = erf.main(['configs/demo/shapes_seg_parc-convnext_upernet.py', '--size', '64',
                    '--num-images', '2', '--data-root', root, '--out', out])
    assert osp.exists(out) and len(res) == 1 and 0 < res[0][2][0.5] <= 1
    # any folder of images (e.g. ImageNet's val/), searched recursively
    res = erf.main(['configs/demo/shapes_seg_parc-convnext_upernet.py', '--size', '64',
                    '--num-images', '2', '--images', osp.join(root, 'cls'), '--out', out])
    assert 0 < res[0][2][0.5] <= 1
    with pytest.raises(SystemExit, match='neither an image file nor a folder'):
        erf.main(['configs/demo/shapes_seg_parc-convnext_upernet.py', '--images',
                  str(tmp_path / 'missing')])


def test_paper_rows_have_a_config_or_a_reason():
    from parc_mm.utils.model_index import paper_rows
    rows = paper_rows(root=ROOT)
    # ParC-Net v1: 4 rows and their 4 baselines; ParCNetV2: XT / T / S / B and the ConvNeXt
    # and Swin baselines of T / S / B (listed without a config: the libraries ship them)
    assert len([r for r in rows if r['task'] == 'cls']) == 8 + 4 + 6
    assert {r['model'] for r in rows} >= {'ParC-ConvNeXt-XT', 'ParC-ResNet50',
                                          'ParC-MobileNetV2', 'ParC-Net-S', 'ParCNetV2-XT',
                                          'ParCNetV2-B', 'Swin-B', 'ConvNeXt-S'}
    for r in rows:
        if r['config'] is None:
            assert r.get('why'), r['model']
        else:
            assert osp.exists(osp.join(ROOT, r['config'])), r['config']


def test_benchmark_backbones_runs():
    """The benchmark script's ParC-Net table runs (no timing is asserted: benchmarks report,
    tests check)."""
    import subprocess
    import sys
    p = subprocess.run([sys.executable, 'tools/analysis/benchmark_parc.py', '--backbones',
                        '--backbone-size', '64', '--reps', '1', '--no-backward'], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    for name in ('MobileViT-S', 'ParC-Net-S (direct)', 'ParC-Net-S (fft)', 'ParC-Net-S (auto)'):
        assert f'| {name} |' in p.stdout


def test_erf_tool_on_a_classification_config_from_another_folder(tmp_path, monkeypatch,
                                                                 capsys):
    """Classification backbones pool their output (the tool keeps the map); --cfg-options
    reach both configs; the tool says when it runs on random weights; configs resolve from
    any working directory."""
    import sys
    sys.path.insert(0, ROOT)
    from parc_mm.datasets import synthetic
    from tools.analysis import erf
    root = synthetic.generate(str(tmp_path / 'shapes'), num_train=2, num_val=2,
                              cls_per_class=(1, 1))
    monkeypatch.chdir(tmp_path)
    cfg = 'configs/parc_convnext/parc-convnext-xt_32xb128_in1k.py'
    base = 'configs/parc_convnext/convnext-xt_32xb128_in1k.py'
    res = erf.main([cfg, '--baseline', base, '--size', '64', '--num-images', '1',
                    '--data-root', root, '--out', str(tmp_path / 'erf.png'),
                    '--cfg-options', 'model.backbone.drop_path_rate=0.0'])
    out = capsys.readouterr().out
    assert len(res) == 2 and out.count('randomly initialised weights') == 2


def test_paper_tables_from_another_folder(tmp_path, monkeypatch):
    import sys
    sys.path.insert(0, ROOT)
    from tools.analysis import paper_tables
    monkeypatch.chdir(tmp_path)
    from parc_mm.utils import model_index
    rows = [r for r in model_index.paper_rows(root=ROOT) if r['model'] == 'ParC-Net-S'
            and r['task'] == 'cls']
    monkeypatch.setattr(model_index, 'paper_rows', lambda task=None, root=None: rows)
    text = paper_tables.main(['--tasks', 'cls'])
    assert '| ParC-Net-S | parc-net-s_8xb128-ms-300e_in1k.py | 256x256 | 5.04 | 5.0 |' in text


def test_family_readmes_show_the_metafiles_paper_rows():
    """The paper's numbers live in the metafiles only; the READMEs' tables are generated
    (python tools/analysis/paper_tables.py --write-readmes) and must be up to date."""
    from parc_mm.utils.model_index import metafiles, update_readme
    stale = [mf for mf in metafiles(ROOT) if update_readme(osp.dirname(mf), ROOT, write=False)]
    assert not stale, f'regenerate: python tools/analysis/paper_tables.py --write-readmes {stale}'


def test_model_benchmark_statistics_and_rows():
    """The model-level benchmark's machinery (no timing is asserted: benchmarks report)."""
    from parc_mm.analysis.benchmark import Row, bootstrap_ci, run_model, saved_bytes, table
    lo, hi = bootstrap_ci([1.0, 1.1, 0.9, 1.05, 0.95])
    assert 0.9 <= lo <= 1.0 <= hi <= 1.1
    assert not Row('m', (1, 1), 'fwd', 'auto', 1.0, 1.0, (0.9, 1.1)).distinguishable
    assert Row('m', (1, 1), 'fwd', 'auto', 1.0, 1.2, (1.1, 1.3)).distinguishable
    w = torch.randn(8, 8, requires_grad=True)
    assert saved_bytes(lambda: (torch.randn(4, 8) @ w).relu()) > 0
    rows = run_model('ParC-ConvNeXt-XT (paper)', (64, 64), torch.device('cpu'), torch.float32,
                     rounds=2, warmup=1, impls=('auto', 'fft'))
    assert {(r.mode, r.variant) for r in rows} == {
        (m, v) for m in ('fwd', 'fwd+bwd') for v in ('baseline', 'auto', 'fft')}
    assert all(len(r.rounds) == 2 and r.ms > 0 for r in rows)
    mem = {r.variant: r.saved_mb for r in rows if r.mode == 'fwd+bwd'}
    assert all(v > 0 for v in mem.values()) and len(mem) == 3
    assert '≈' in table(rows) or 'x [' in table(rows)
    from parc_mm.analysis.benchmark import summary
    lines = summary(rows).splitlines()
    assert len(lines) == 2 + 2 and 'auto / best fixed' in lines[0]  # header + fwd, fwd+bwd
    assert all(line.count('|') == lines[0].count('|') for line in lines)
    # the ablations switch their feature off only inside their own calls
    from parc_mm.ops import functional
    guard_fn = functional._nan_where_not_finite
    rows = run_model('ParC-ConvNeXt-XT (paper)', (64, 64), torch.device('cpu'), torch.float32,
                     modes=('fwd', ), rounds=1, warmup=1, impls=('auto-nocache', 'auto-noguard'))
    assert {r.variant for r in rows} == {'baseline', 'auto-nocache', 'auto-noguard'}
    assert functional._nan_where_not_finite is guard_fn


def test_fused_attention_is_counted():
    """mmengine does not count scaled_dot_product_attention; ours counts QK^T and AV, so
    attention baselines are not flattered next to the ParC mixers that replace them."""
    import torch.nn.functional as F

    from parc_mm.analysis.complexity import complexity

    class Attn(torch.nn.Module):
        def forward(self, x):  # x: (1, 3, 8, 8) -> q, k, v (2 heads, 16 tokens, 5 dims)
            q = x.new_ones(1, 2, 16, 5)
            return F.scaled_dot_product_attention(q + x.mean(), q, q.new_ones(1, 2, 16, 7))

    assert complexity(Attn(), (3, 8, 8), task='none')['flops'] == 2 * 16 * 16 * (5 + 7)


def test_erf_of_a_channel_normalised_output_is_not_zero():
    # ConvNeXt normalises every out_indices stage over channels: a plain channel sum of that
    # output is constant (zero gradient); the ERF rectifies it first, as RepLKNet does
    from mmpretrain.models.utils import LayerNorm2d
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), LayerNorm2d(8))
    m = erf_map(net, [torch.randn(3, 16, 16)])
    assert m[8, 8] > 0 and m[0, 0] == 0

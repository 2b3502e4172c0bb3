"""docs/extending.md kept true: an implementation and a family registered from a module of the
user's (written to a temporary folder here) appear in the tools' choices, the benchmarks and
the op report, with no edit to parc_mm."""
import importlib
import json
import sys

import pytest

pytest.importorskip('onnxruntime')

TOY = '''
import torch.nn as nn
import torch.nn.functional as F

from parc_mm.analysis.benchmark import MODELS as BENCH
from parc_mm.analysis.onnx_benchmark import PAIRS
from parc_mm.models.layers import ParCHW
from parc_mm.ops.registry import Implementation, get_impl, register_impl
from parc_mm.registry import MODELS


def toy_compute(x, w, groups, direction, cache=None):
    """The circular correlation as a padded conv (circular padding on one side)."""
    n = w.shape[2] if direction == 'H' else w.shape[3]
    pad = (0, 0, 0, n - 1) if direction == 'H' else (0, n - 1, 0, 0)
    return F.conv2d(F.pad(x, pad, mode='circular'), w, None, 1, 0, 1, groups)


register_impl(Implementation('toy', toy_compute, exportable=True), override=True)


@MODELS.register_module(force=True)
class ToyParCNet(nn.Module):
    def __init__(self, parc=True):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, 4)
        self.mix = ParCHW(8, 8) if parc else nn.Conv2d(8, 8, 7, padding=3, groups=8)

    def forward(self, x):
        return (self.mix(self.stem(x)), )


BENCH['Toy-ParC'] = (lambda: MODELS.build(dict(type='parc_mm.ToyParCNet')),
                     lambda: MODELS.build(dict(type='parc_mm.ToyParCNet', parc=False)))
PAIRS['toy'] = ('Toy-ParC', (32, ))
'''


@pytest.fixture
def toy(tmp_path, monkeypatch):
    from parc_mm.analysis import benchmark, onnx_benchmark
    from parc_mm.ops import registry
    (tmp_path / 'my_toys.py').write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, '_REGISTRY', dict(registry._REGISTRY))
    monkeypatch.setattr(benchmark, 'MODELS', dict(benchmark.MODELS))
    monkeypatch.setattr(onnx_benchmark, 'MODELS', benchmark.MODELS)
    monkeypatch.setattr(onnx_benchmark, 'PAIRS', dict(onnx_benchmark.PAIRS))
    sys.modules.pop('my_toys', None)
    yield importlib.import_module('my_toys')
    sys.modules.pop('my_toys', None)
    registry.changed()


def _choices(main, capsys):
    with pytest.raises(SystemExit):
        main(['--help'])
    return capsys.readouterr().out


def test_a_toy_implementation_is_offered_run_and_exported(toy, capsys):
    import torch

    from parc_mm.ops import circular_conv, impl_choices
    from tools.analysis import benchmark_onnx, benchmark_parc, get_flops
    from tools.deploy import op_report
    assert 'toy' in impl_choices() and 'toy' in impl_choices(exportable=True)
    for main in (get_flops.main, benchmark_onnx.main, op_report.main):
        assert 'toy' in _choices(main, capsys)
    assert 'toy' in benchmark_parc._make_modules(8, 6, 5, torch.device('cpu'))
    x, w = torch.randn(1, 4, 6, 5), torch.randn(4, 1, 6, 1)
    assert torch.allclose(circular_conv(x, w, None, 'H', 4, 'toy'),
                          circular_conv(x, w, None, 'H', 4, 'direct'), atol=1e-5)


def test_a_toy_family_appears_in_the_benchmarks_and_the_op_report(toy, tmp_path, capsys):
    from tools.analysis import benchmark_onnx
    from tools.deploy import op_report
    out = tmp_path / 'r.json'
    assert op_report.main(['--pairs', 'toy', '--size', '32', '--impl', 'toy',
                           '--json', str(out)]) == 0
    rep = json.load(open(out))['pairs']['Toy-ParC']
    assert rep['parc']['non_portable'] == [] and rep['parc']['ops']['Conv'] >= 3
    assert benchmark_onnx.main(['--pairs', 'toy', '--sizes', '32', '--rounds', '2', '--reps',
                                '1', '--no-int8', '--impls', 'toy']) == 0
    text = capsys.readouterr().out
    assert '| Toy-ParC | 32 |' in text and 'parc-toy' in text


def test_the_doc_names_what_the_test_does():
    import os.path as osp
    doc = open(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'docs',
                        'extending.md')).read()
    for needle in ('register_impl', 'MODELS.register_module', "PAIRS['", "MODELS['",
                   'tests/test_extending.py', 'BACKENDS'):
        assert needle in doc, needle

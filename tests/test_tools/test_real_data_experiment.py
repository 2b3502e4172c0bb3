"""The real-data experiment tool in its tiny mode: every part runs through tools/train.py and
tools/test.py, the report holds each variant with its seeds, a paired difference and the ERF of
the trained backbones; finished runs are reused."""
import json
import os
import os.path as osp
import sys

import pytest

from parc_mm.datasets import fashion

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
pytestmark = pytest.mark.skipif(
    not fashion.available(), reason=f'Fashion-MNIST is not installed ({fashion.INSTALL_HINT})')


def test_tiny_experiment(tmp_path):
    sys.path.insert(0, ROOT)
    from tools.analysis import real_data_experiment as rde
    wd = tmp_path / 'exp'
    rep = rde.main(['--tiny', '--work-dir', str(wd), '--seeds', '0', '1', '--dense-seeds', '0'])
    pointer = rep['parts']['pointer']['top-1']
    assert set(pointer) == set(rde.PARTS['pointer'])
    for v, s in pointer.items():
        assert s['n'] == 2 and len(s['values']) == 2 and s['ci95'] is not None
        assert ('minus_baseline' in s) == (v != 'ConvNeXt baseline')
    # the report's numbers are the evaluator's, from tools/test.py's output
    run = wd / 'runs' / 'pointer_convnext_baseline_seed1'
    logged = json.loads((run / 'test_metrics.json').read_text())
    assert pointer['ConvNeXt baseline']['values'][1] == pytest.approx(logged['accuracy/top1'])
    assert set(rep['parts']) == {'pointer', 'wide', 'control', 'seg', 'det'}
    assert rep['parts']['det']['bbox mAP']['ParC (all blocks)']['n'] == 1
    # seg / det started from the pointer checkpoint of their seed and variant
    with open(wd / 'runs' / 'seg_convnext_baseline_seed0' / 'run.json') as f:
        assert json.load(f)['init_from'] == 'pointer_convnext_baseline_seed0'
    erf = rep['erf_pointer']['ParC (all blocks)']['stage1']
    assert 0 < erf['0.99']['mean'] <= 1
    ana = rep['pointer_analysis']['pointer']['ParC (all blocks)']
    assert ana['top1']['n'] == 2 and 0 <= ana['selection']['mean'] <= 100
    report = (wd / 'report' / 'report.md').read_text()
    assert 'pointer task (global context)' in report and 'ERF' in report
    assert osp.exists(wd / 'report' / 'erf_pointer.png')
    # a second call reuses every finished run (nothing is trained again)
    stamp = os.stat(run / 'test_metrics.json').st_mtime_ns
    rde.main(['--tiny', '--work-dir', str(wd), '--seeds', '0', '1', '--dense-seeds', '0',
              '--parts', 'pointer'])
    assert os.stat(run / 'test_metrics.json').st_mtime_ns == stamp


def test_a_foreign_work_dir_is_refused(tmp_path):
    sys.path.insert(0, ROOT)
    from tools.analysis import real_data_experiment as rde
    (tmp_path / 'notes.txt').write_text('keep')
    with pytest.raises(SystemExit, match='did not write'):
        rde.main(['--tiny', '--work-dir', str(tmp_path)])
    assert os.listdir(tmp_path) == ['notes.txt']


def test_intervals():
    sys.path.insert(0, ROOT)
    from tools.analysis.real_data_experiment import summarise
    s = summarise([1.0, 2.0, 3.0])
    assert s['mean'] == 2.0 and s['sd'] == pytest.approx(1.0)
    assert s['ci95'] == pytest.approx(4.303 / 3 ** 0.5, rel=1e-3)
    assert summarise([5.0])['ci95'] is None

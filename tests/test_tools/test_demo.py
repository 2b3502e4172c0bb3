"""The demo pipeline end to end (--quick: 3 iterations per task on a tiny generated dataset);
the real run is README's main-job command."""
import json
import math
import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_demo_quick(tmp_path):
    sys.path.insert(0, ROOT)
    from tools import demo
    wd = tmp_path / 'demo'
    results = demo.main(['--quick', '--skip-check', '--work-dir', str(wd), '--data', 'shapes',
                         '--data-root', str(tmp_path / 'shapes')])
    from parc_mm.apis.tasks import TASKS
    assert set(results) == {'cls', 'seg', 'det'}
    for name, r in results.items():
        # the summary's number is the library evaluator's, from tools/test.py's output
        logged = json.loads((wd / name / 'test_metrics.json').read_text())
        assert r['value'] == pytest.approx(
            float(logged.get(TASKS[name].metric, 0.0)) * TASKS[name].metric_scale)
        assert r['losses'] and all(math.isfinite(v) for v in r['losses']), (name, r)
        assert f'{r["value"]:.2f}' in (wd / 'summary.md').read_text()
        assert osp.exists(wd / f'predictions_{name}.png')
        # and tools/infer.py ran on the validation images with the trained checkpoint
        preds = json.loads((wd / f'infer_{name}' / 'predictions.json').read_text())
        assert preds and all(osp.exists(p['vis']) for p in preds)
    assert osp.exists(wd / 'loss_curves.png')
    summary = (wd / 'summary.md').read_text()
    assert '| det | mmdet |' in summary and 'coco/bbox_mAP' in summary
    summary_json = json.loads((wd / 'summary.json').read_text())
    assert summary_json['seg']['metric'] == 'mIoU'
    assert {summary_json[t]['data'] for t in results} == {'shapes'}
    # written whole through the artefact writer: its manifest verifies, and no record points
    # into the staging folder it was written in
    from parc_mm.utils.fileio import verify_folder
    verify_folder(str(wd))
    assert 'parc-stage' not in (wd / 'summary.json').read_text()
    assert all(str(wd) in r['ckpt'] for r in results.values())


def test_demo_refuses_a_work_dir_it_did_not_write(tmp_path):
    """The demo's work dir is written whole at the end (staged beside it); a folder of
    someone else's files is refused before anything runs."""
    sys.path.insert(0, ROOT)
    from tools import demo
    wd = tmp_path / 'mine'
    wd.mkdir()
    (wd / 'notes.txt').write_text('keep')
    with pytest.raises(SystemExit, match='was not written by parc_mm'):
        demo.main(['--quick', '--skip-check', '--work-dir', str(wd),
                   '--data-root', str(tmp_path / 'shapes')])
    assert (wd / 'notes.txt').read_text() == 'keep'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['mine']


@pytest.mark.skipif(not __import__('parc_mm.datasets.fashion', fromlist=['x']).available(),
                    reason='Fashion-MNIST is not installed (apt-get install '
                           'dataset-fashion-mnist; tools/setup_env.sh does it as root)')
def test_demo_quick_on_real_images(tmp_path):
    """README's main command on the real garments (--quick): Fashion-MNIST, the pointer task
    with ParC and its baseline side by side, seg and det on the scenes, one thread."""
    sys.path.insert(0, ROOT)
    from tools import demo
    wd = tmp_path / 'demo'
    results = demo.main(['--quick', '--skip-check', '--work-dir', str(wd), '--threads', '1',
                         '--data-root', str(tmp_path / 'fashion')])
    summary = json.loads((wd / 'summary.json').read_text())
    assert summary['_run']['data'] == 'fashion-mnist' and summary['_run']['threads'] == 1
    for name in ('cls', 'seg', 'det'):
        assert summary[name]['data'] == 'fashion-mnist'
        assert summary[name]['value'] == pytest.approx(results[name]['value'])
    assert summary['cls']['config'].endswith('mnist_parc-convnext.py')
    base = summary['cls']['pointer']['baseline']
    logged = json.loads((wd / 'cls_pointer_baseline' / 'test_metrics.json').read_text())
    assert base['value'] == pytest.approx(logged['accuracy/top1'])
    assert base['config'].endswith('pointer_convnext.py')
    assert summary['cls']['pointer']['parc']['config'].endswith('pointer_parc-convnext.py')
    # seg / det started from the pointer ParC backbone (3 channels, like their images)
    assert 'cls_pointer_parc' in (wd / 'seg_train.log').read_text()
    assert 'ConvNeXt baseline' in (wd / 'summary.md').read_text()


def test_demo_runs_a_part(tmp_path):
    """--tasks picks the parts; the summary holds those only."""
    sys.path.insert(0, ROOT)
    from tools import demo
    wd = tmp_path / 'demo'
    demo.main(['--quick', '--skip-check', '--work-dir', str(wd), '--tasks', 'seg', '--data',
               'shapes', '--data-root', str(tmp_path / 'shapes'), '--threads', '1'])
    summary = json.loads((wd / 'summary.json').read_text())
    assert set(summary) == {'seg', '_run'} and summary['seg']['data'] == 'shapes'
    assert summary['_run']['tasks'] == ['seg']

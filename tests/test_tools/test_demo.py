"""The demo pipeline end to end (--quick: 3 iterations per task on a tiny generated dataset);
the real run is README's main-job command."""
import json
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_demo_quick(tmp_path):
    sys.path.insert(0, ROOT)
    from tools import demo
    wd = tmp_path / 'demo'
    results = demo.main(['--quick', '--skip-check', '--work-dir', str(wd),
                         '--data-root', str(tmp_path / 'shapes')])
    assert set(results) == {'cls', 'seg', 'det'}
    for name, r in results.items():
        assert 0 <= r['value'] <= 100 and r['losses'], (name, r)
        assert osp.exists(wd / f'predictions_{name}.png')
    assert osp.exists(wd / 'loss_curves.png')
    summary = (wd / 'summary.md').read_text()
    assert '| det | mmdet |' in summary and 'coco/bbox_mAP' in summary
    assert json.loads((wd / 'summary.json').read_text())['seg']['metric'] == 'mIoU'

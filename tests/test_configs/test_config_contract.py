"""What every shipped config promises: atomic checkpoints, runnable with the libraries' own
scripts (no persistent workers without workers), listed in the model index."""
import glob
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs/**/*.py'),
                                                         recursive=True)
                 if '/_base_/' not in p)


@pytest.mark.parametrize('path', CONFIGS)
def test_config_saves_atomically_and_runs_with_upstream_scripts(path):
    cfg = Config.fromfile(osp.join(ROOT, path))
    assert cfg.default_hooks.checkpoint.type == 'parc_mm.SafeCheckpointHook'
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    assert {'parc_mm.models', 'parc_mm.engine.hooks'} & set(imports), imports
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dl = cfg.get(name)
        if dl and dl.get('num_workers', 1) == 0:
            assert dl.get('persistent_workers') is False, name


def test_model_index_lists_every_family():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        listed = set(yaml.safe_load(f)['Import'])
    metafiles = {osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs/*/metafile.yml'))}
    assert listed == metafiles
    for m in metafiles:
        with open(osp.join(ROOT, m)) as f:
            for model in yaml.safe_load(f)['Models']:
                assert osp.isfile(osp.join(ROOT, model['Config'])), model['Config']

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
                 if '/_base_/' not in p and '/deploy/' not in p)
DEPLOY_CONFIGS = sorted(osp.relpath(p, ROOT) for p in glob.glob(
    osp.join(ROOT, 'configs/deploy/*.py')))


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


@pytest.mark.parametrize('path', DEPLOY_CONFIGS)
def test_deploy_configs_are_static_onnxruntime_and_import_the_parc_support(path):
    """mmdeploy deploy configs (their own kind: no model): each imports what ParC models
    need under mmdeploy, is static with the input size its name says, opset >= 13."""
    pytest.importorskip('mmdeploy')  # (the import it names needs it; the fork has none)
    cfg = Config.fromfile(osp.join(ROOT, path))
    assert 'parc_mm.deploy.mmdeploy' in cfg.custom_imports['imports']
    assert cfg.backend_config.type == 'onnxruntime' and cfg.onnx_config.opset_version >= 13
    assert 'dynamic_axes' not in cfg.onnx_config
    h, w = (int(v) for v in osp.splitext(path)[0].rsplit('-', 1)[1].split('x'))
    assert list(cfg.onnx_config.input_shape) == [w, h]  # mmdeploy's (width, height)
    assert cfg.codebase_config.type in ('mmpretrain', 'mmseg', 'mmdet')


def test_model_index_lists_every_family():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        listed = set(yaml.safe_load(f)['Import'])
    metafiles = {osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs/*/metafile.yml'))}
    assert listed == metafiles
    for m in metafiles:
        with open(osp.join(ROOT, m)) as f:
            for model in yaml.safe_load(f)['Models']:
                assert osp.isfile(osp.join(ROOT, model['Config'])), model['Config']

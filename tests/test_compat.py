"""parc_mm.compat: each patch is needed (the upstream behaviour it works around is still
there: a test here fails once upstream fixes it), applies only where its guard says, and the
one trigger applies them lazily."""
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

from parc_mm import compat

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _clean_python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a process where no parc_mm code runs unless the code imports it (the
    start-up line is off, the checkout is not on the path)."""
    env = {**os.environ, 'PARC_MM_NO_STARTUP': '1'}
    env.pop('PYTHONPATH', None)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd='/')


def _upstream_still(code: str) -> None:
    p = _clean_python(code)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip().endswith('STILL'), (
        'upstream changed: the patch may no longer be needed; drop it from parc_mm/compat.py '
        f'if so.\n{p.stdout[-2000:]}')


def _needed():
    return sorted(p.name for p in compat.PATCHES if p.needed())


def test_every_patch_is_listed_once_and_active_where_needed():
    names = [p.name for p in compat.PATCHES]
    assert len(names) == len(set(names))
    import mmengine.config.config  # noqa: F401
    import mmengine.logging  # noqa: F401
    import mmengine.runner.checkpoint  # noqa: F401
    import torch.onnx.symbolic_opset9  # noqa: F401
    if compat.installed_version('mmdeploy'):
        import mmdeploy.apis.onnx.export  # noqa: F401
        import mmdeploy.core.rewriters.function_rewriter  # noqa: F401
    assert sorted(k for k, v in compat.applied().items() if v) == _needed(), compat.applied()
    # the stack decides which: the fork's distribution names only with onedl-mmengine
    fork = compat._has_distribution('onedl-mmengine')
    assert compat.applied()['mmengine-fork-distribution-names'] == fork


def test_mmengine_resolves_every_library_our_configs_inherit_from():
    """On either stack each scope's ``::`` bases resolve to the installed library."""
    import importlib.util

    from mmengine.config.utils import MODULE2PACKAGE, _get_package_and_cfg_path
    for scope in ('mmdet', 'mmseg', 'mmpretrain', 'parc_mm'):
        assert importlib.util.find_spec(scope) is not None
        distribution, _ = _get_package_and_cfg_path(f'{scope}::x/y.py')
        assert compat._has_distribution(distribution), (scope, MODULE2PACKAGE)


def test_a_foreign_safe_globals_block_cannot_break_our_loads(tmp_path):
    """Leaving torch's ``safe_globals`` context removes the entries it named, ours too (the
    fork's mmengine loads inside one): our loader re-adds them on every load."""
    import torch
    from mmengine.logging import HistoryBuffer

    from parc_mm.utils.checkpoint import torch_load
    b = HistoryBuffer()
    b.update(3.0)
    path = str(tmp_path / 'hub.pth')
    torch.save({'meta': {}, 'state_dict': {}, 'message_hub': b}, path)
    with torch.serialization.safe_globals([HistoryBuffer]):
        pass
    assert torch_load(path)['message_hub'].current() == 3.0


def test_upstream_still_lacks_our_config_scope():
    """mmengine-parc-scope: unpatched, a ``parc_mm::`` base does not resolve."""
    _upstream_still("""
        from mmengine.config.utils import MODULE2PACKAGE
        print('STILL' if 'parc_mm' not in MODULE2PACKAGE else 'FIXED')
    """)


def test_upstream_still_scopes_package_bases():
    """mmengine-unscope-parc-bases: unpatched, a ``pkg::`` base is tagged ``_scope_=pkg``."""
    _upstream_still("""
        from mmengine.config import Config
        _, scope = Config._get_cfg_path('mmdet::_base_/default_runtime.py', 'x.py')
        print('STILL' if scope == 'mmdet' else 'FIXED')
    """)


def test_upstream_still_refuses_its_own_runner_checkpoints(tmp_path):
    """mmengine-checkpoints-weights-only: unpatched, torch's default load refuses a message
    hub's HistoryBuffer."""
    path = str(tmp_path / 'hub.pth')
    _upstream_still(f"""
        import torch
        from mmengine.logging import HistoryBuffer
        b = HistoryBuffer(); b.update(1.0)
        torch.save({{'message_hub': {{'log_scalars': {{'loss': b}}}}}}, {path!r})
        try:
            torch.load({path!r})
            print('FIXED')
        except Exception as e:
            print('STILL' if 'HistoryBuffer' in str(e) else f'OTHER {{e}}')
    """)


def test_upstream_mmdeploy_still_exports_with_torchs_default_exporter():
    """mmdeploy-torchscript-exporter: mmdeploy's export passes no ``dynamo=`` and torch's
    default is the dynamo exporter (which skips mmdeploy's rewriters)."""
    pytest.importorskip('mmdeploy')
    _upstream_still("""
        import importlib, inspect, torch
        m = importlib.import_module('mmdeploy.apis.onnx.export')
        default = inspect.signature(torch.onnx.export).parameters['dynamo'].default
        src = inspect.getsource(m.export)
        print('STILL' if default is True and 'dynamo' not in src else 'FIXED')
    """)


def test_upstream_mmdeploy_still_needs_cast_long():
    """mmdeploy-roi-align-cast-long: torch dropped ``_cast_Long``, mmdeploy's RoIAlign uses
    it."""
    pytest.importorskip('mmdeploy')
    _upstream_still("""
        import inspect
        import torch.onnx.symbolic_opset9 as s
        import mmdeploy.mmcv.ops.roi_align as r
        print('STILL' if not hasattr(s, '_cast_Long') and '_cast_Long' in inspect.getsource(r)
              else 'FIXED')
    """)


_SWIN_AFTER_A_REWRITE = """
    from mmdeploy.codebase import import_codebase
    from mmdeploy.core import RewriterContext
    from mmdeploy.utils import Codebase
    import_codebase(Codebase.MMPRETRAIN)  # (registers its rewriters)
    from mmpretrain.models.utils.attention import ShiftWindowMSA
    with RewriterContext(cfg={}, backend='onnxruntime'):
        pass
    raw = vars(ShiftWindowMSA)['get_attn_mask']
    print('FIXED' if isinstance(raw, staticmethod) else 'STILL')
"""


def test_upstream_mmdeploy_still_loses_staticmethods_on_restore():
    """mmdeploy-rewriter-restores-descriptors: after a rewrite context, mmdeploy puts
    ShiftWindowMSA.get_attn_mask back as a plain function."""
    pytest.importorskip('mmdeploy')
    _upstream_still(_SWIN_AFTER_A_REWRITE)


def test_swin_works_after_an_in_process_mmdeploy_rewrite():
    pytest.importorskip('mmdeploy')
    import torch
    from mmdeploy.codebase import import_codebase
    from mmdeploy.core import RewriterContext
    from mmdeploy.utils import Codebase
    from mmpretrain.models import SwinTransformer
    from mmpretrain.models.utils.attention import ShiftWindowMSA
    import_codebase(Codebase.MMPRETRAIN)
    with RewriterContext(cfg={}, backend='onnxruntime'):
        assert not isinstance(vars(ShiftWindowMSA)['get_attn_mask'], staticmethod)
    assert isinstance(vars(ShiftWindowMSA)['get_attn_mask'], staticmethod)
    assert compat.applied()['mmdeploy-rewriter-restores-descriptors']
    net = SwinTransformer(arch=dict(embed_dims=16, depths=[2, 2, 2, 2], num_heads=[1, 1, 1, 1]))
    assert net(torch.randn(1, 3, 224, 224))[-1].shape == (1, 128, 7, 7)


def test_the_mmdeploy_patches_are_in_place():
    pytest.importorskip('mmdeploy')
    import importlib

    import torch
    import torch.onnx.symbolic_opset9 as s
    m = importlib.import_module('mmdeploy.apis.onnx.export')
    assert compat.applied()['mmdeploy-roi-align-cast-long'] and callable(s._cast_Long)
    assert compat.applied()['mmdeploy-torchscript-exporter'] and m.export._parc_mm
    seen = {}

    def fake_export(*args, **kwargs):
        seen.update(kwargs)
        raise StopIteration  # stop mmdeploy's export right there
    real = torch.onnx.export
    torch.onnx.export = fake_export
    try:
        with pytest.raises(StopIteration):
            m.export(torch.nn.Identity(), torch.zeros(1, 3, 4, 4), 'unused.onnx',
                     backend='onnxruntime')
    finally:
        torch.onnx.export = real
    assert seen.get('dynamo') is False and torch.onnx.export is real


def test_patched_runner_checkpoints_load_with_the_check_on(tmp_path):
    import torch
    from mmengine.logging import HistoryBuffer
    assert compat.ensure('mmengine-checkpoints-weights-only')
    b = HistoryBuffer()
    b.update(2.0)
    torch.save({'hub': b}, str(tmp_path / 'hub.pth'))
    loaded = torch.load(str(tmp_path / 'hub.pth'))  # weights_only=True, torch's default
    assert loaded['hub'].current() == 2.0 and loaded['hub'].mean() == 2.0

    class Evil:
        def __reduce__(self):
            return (print, ('executed',))

    torch.save({'x': Evil()}, str(tmp_path / 'evil.pth'))
    with pytest.raises(Exception, match='Unsupported global'):  # the check is still on
        torch.load(str(tmp_path / 'evil.pth'))


def test_import_parc_mm_is_the_one_trigger_and_imports_nothing():
    """``import parc_mm`` installs the hook without importing torch or mmengine; the patches
    apply when their targets are imported, in any order."""
    p = _clean_python(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        import parc_mm
        from parc_mm import compat
        assert 'torch' not in sys.modules and 'mmengine' not in sys.modules, sorted(sys.modules)
        assert not any(compat.applied().values())
        from mmengine.runner.checkpoint import CheckpointLoader
        from mmengine.config import Config
        import mmengine.logging
        import torch.onnx.symbolic_opset9
        if compat.installed_version('mmdeploy'):
            import mmdeploy.apis.onnx.export
        from parc_mm.utils.checkpoint import load_checkpoint_file
        assert CheckpointLoader._schemes[''] is load_checkpoint_file
        print(sorted(k for k, v in compat.applied().items() if v))
    """)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip() == str(_needed()), p.stdout


def test_a_guard_that_says_no_leaves_the_module_alone(monkeypatch):
    """A patch whose versions do not need it is not applied (e.g. a fixed mmengine)."""
    p = _clean_python(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from parc_mm import compat
        compat._GUARDS['mmengine-parc-scope'] = False  # as if mmengine shipped the fix
        compat.install()
        from mmengine.config.utils import MODULE2PACKAGE
        print('parc_mm' in MODULE2PACKAGE, compat.applied()['mmengine-parc-scope'])
    """)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.split() == ['False', 'False']


def test_version_guards_read_the_installed_versions():
    assert compat.installed_version('mmengine') >= (0, 10)
    assert compat.installed_version('torch') >= (2, 6)
    assert compat.installed_version('no_such_package_here') is None
    by_name = {p.name: p for p in compat.PATCHES}
    assert by_name['mmengine-checkpoints-weights-only'].needed()
    assert not compat._older_than('mmengine', (0, 0, 1))


def test_versions_come_from_the_module_when_metadata_is_missing():
    """mmengine importable without its distribution metadata (a source tree on PYTHONPATH):
    the guards read ``mmengine.__version__``, the patches apply, and applied() says so."""
    p = _clean_python(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from parc_mm import compat
        # as if no distribution metadata named mmengine's (mmengine's own version module,
        # which on the OneDL fork reads its metadata, keeps working)
        compat.DISTRIBUTIONS['mmengine'] = ('no-such-distribution', )
        compat.install()
        from mmengine.config.utils import MODULE2PACKAGE
        print('parc_mm' in MODULE2PACKAGE)
        print(compat.applied(verbose=True)['mmengine-parc-scope'])
    """)
    assert p.returncode == 0, p.stderr[-3000:]
    registered, state = p.stdout.strip().split('\n')
    assert registered == 'True'
    assert state.startswith('applied') and 'mmengine.__version__ = 0.10' in state
    assert 'no distribution metadata' in state

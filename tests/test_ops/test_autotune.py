"""Autotuned impl='auto': exact, cached per configuration, a constant under torch.compile,
saved / loaded per device, the same on every distributed rank."""
import json
import os
import subprocess
import sys

import pytest
import torch

from parc_mm.ops import (
    autotune,
    autotune_cache,
    circular_conv,
    clear_autotune_cache,
    load_autotune_cache,
    save_autotune_cache,
)
from parc_mm.ops import functional as F_
from parc_mm.ops.registry import impl_names
from tests.harness import ENV, PY
from tests.harness import run_py as _run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_autotune_cache()
    yield
    clear_autotune_cache()


def _spy(monkeypatch):
    calls = []
    orig = F_.compute

    def spy(impl, *a):
        calls.append(impl)
        return orig(impl, *a)

    monkeypatch.setattr(F_, 'compute', spy)
    return calls


@pytest.mark.parametrize('groups', [4, 1])
def test_autotuned_auto_is_exact_and_times_once(monkeypatch, groups):
    calls = _spy(monkeypatch)
    x = torch.randn(2, 4, 12, 9, dtype=torch.float64)
    w = torch.randn(4, 4 // groups, 12, 1, dtype=torch.float64)
    with autotune():
        y = circular_conv(x, w, None, 'H', groups, 'auto')
        timed = [c for c in calls[:-1]]
        assert sorted(set(timed)) == sorted(impl_names())  # each impl timed on the real input
        (key, choice), = autotune_cache().items()
        assert '(2, 4, 12, 9)' in key and calls[-1] == choice
        calls.clear()
        y2 = circular_conv(x, w, None, 'H', groups, 'auto')
        assert calls == [choice]  # a lookup: nothing timed again
    for impl in impl_names():
        torch.testing.assert_close(y, circular_conv(x, w, None, 'H', groups, impl),
                                   rtol=1e-10, atol=1e-10)
    assert torch.equal(y, y2)


def test_new_shape_mode_or_dtype_is_a_new_entry():
    w = torch.randn(4, 1, 1, 10)
    with autotune():
        circular_conv(torch.randn(1, 4, 6, 10), w, None, 'W', 4, 'auto')
        circular_conv(torch.randn(3, 4, 6, 10), w, None, 'W', 4, 'auto')
        circular_conv(torch.randn(1, 4, 6, 10, requires_grad=True), w, None, 'W', 4, 'auto')
        with torch.autocast('cpu', dtype=torch.bfloat16):
            circular_conv(torch.randn(1, 4, 6, 10), w, None, 'W', 4, 'auto')
    keys = list(autotune_cache())
    assert len(keys) == 4 and any('train' in k for k in keys) and any('bfloat16' in k
                                                                         for k in keys)


def test_off_means_the_rule(monkeypatch):
    calls = _spy(monkeypatch)
    x, w = torch.randn(1, 4, 30, 5), torch.randn(4, 1, 30, 1)
    circular_conv(x, w, None, 'H', 4, 'auto')
    assert calls == ['fft'] and not autotune_cache()  # the CPU rule at length 30


def test_save_load_makes_a_lookup(tmp_path, monkeypatch):
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 1, 8, 1)
    with autotune():
        circular_conv(x, w, None, 'H', 4, 'auto')
    saved = autotune_cache()
    path = save_autotune_cache(str(tmp_path / 'cache.json'))
    clear_autotune_cache()
    assert load_autotune_cache(path) == 1 and autotune_cache() == saved
    calls = _spy(monkeypatch)
    circular_conv(x, w, None, 'H', 4, 'auto')  # autotune off: the loaded choice, untimed
    assert calls == list(saved.values())
    (tmp_path / 'bad.json').write_text('{"cpu|k": "winograd"}')
    with pytest.raises(ValueError, match='unknown impls'):
        load_autotune_cache(str(tmp_path / 'bad.json'))


def test_compiled_uses_the_cached_choice_as_a_constant(monkeypatch):
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 1, 8, 1)
    with autotune():
        eager = circular_conv(x, w, None, 'H', 4, 'auto')
        choice = next(iter(autotune_cache().values()))
        fn = torch.compile(lambda a, b: circular_conv(a, b, None, 'H', 4, 'auto'),
                           fullgraph=True, backend='eager')
        torch.testing.assert_close(fn(x, w), eager)
        # a configuration not measured yet: the rule inside the graph, never timed there
        y = fn(torch.randn(2, 4, 8, 8), w)
        assert y.shape == (2, 4, 8, 8) and len(autotune_cache()) == 1
    assert choice in impl_names()


DDP = r'''
import os, sys, torch, torch.distributed as dist
sys.path.insert(0, sys.argv[1])
from parc_mm.ops import autotune, autotune_cache, circular_conv, sync_autotune_cache
from parc_mm.ops import autotuner as at
dist.init_process_group('gloo')
rank = dist.get_rank()
with autotune():
    circular_conv(torch.randn(1, 4, 8, 8), torch.randn(4, 1, 8, 1), None, 'H', 4, 'auto')
key = next(iter(autotune_cache()))
at._CACHE[key] = ['direct', 'gemm'][rank]  # make the ranks disagree before the sync
sync_autotune_cache()
with open(os.path.join(sys.argv[2], f'rank{rank}.txt'), 'w') as f:
    f.write(autotune_cache()[key])
dist.destroy_process_group()
'''


def test_distributed_ranks_take_rank0s_choices(tmp_path):
    script = tmp_path / 'ddp.py'
    script.write_text(DDP)
    p = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                        '--master_port=29517', str(script), ROOT, str(tmp_path)],
                       capture_output=True,
                       text=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    choices = [(tmp_path / f'rank{r}.txt').read_text() for r in (0, 1)]
    assert choices == ['direct', 'direct']  # rank 1 had 'gemm' before the sync


def test_hook_autotunes_a_run_and_saves_the_cache(tmp_path):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    import parc_mm.engine.hooks  # noqa: F401
    from parc_mm.models.layers import ParCHW

    class Net(BaseModel):
        def __init__(self):
            super().__init__()
            self.mix = ParCHW(4, 8)

        def forward(self, inputs, mode='loss'):
            return dict(loss=self.mix(inputs).pow(2).mean())

    data = [dict(inputs=torch.randn(4, 8, 8)) for _ in range(4)]
    cache = tmp_path / 'autotune.json'
    runner = Runner(model=Net(), work_dir=str(tmp_path / 'wd'),
                    train_dataloader=dict(dataset=data, batch_size=2,
                                          sampler=dict(type='DefaultSampler', shuffle=False),
                                          collate_fn=dict(type='default_collate')),
                    train_cfg=dict(by_epoch=False, max_iters=2),
                    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
                    custom_hooks=[dict(type='parc_mm.ParCAutotuneHook', cache_file=str(cache))],
                    default_hooks=dict(checkpoint=None), default_scope='mmengine')
    runner.train()
    import json
    saved = json.loads(cache.read_text())
    assert len(saved) == 2 and all('train' in k for k in saved)  # H and W, training mode
    assert set(saved.values()) <= set(impl_names())


def _tuned_one():
    with autotune(), torch.no_grad():
        circular_conv(torch.randn(1, 2, 4, 4), torch.randn(2, 1, 4, 1), None, 'H', 2)
    assert len(autotune_cache()) == 1


def test_damaged_caches_of_any_shape_are_named_and_skipped(tmp_path):
    from parc_mm.ops.autotuner import AutotuneCacheError
    cases = {'deep.json': '[' * 100000 + ']' * 100000, 'list.json': '[1, 2]',
             'values.json': '{"cpu|x": 3}', 'text.json': 'hello', 'bin.json': '\xff\xfe'}
    for name, text in cases.items():
        (tmp_path / name).write_text(text, encoding='latin-1')
        with pytest.raises(AutotuneCacheError, match=name):
            load_autotune_cache(str(tmp_path / name))


def test_a_file_that_is_not_a_cache_is_never_overwritten(tmp_path):
    from parc_mm.ops.autotuner import AutotuneCacheError
    notes = tmp_path / 'notes.txt'
    notes.write_text('my notes')
    _tuned_one()
    with pytest.raises(AutotuneCacheError, match='choose another cache file'):
        save_autotune_cache(str(notes))
    assert notes.read_text() == 'my notes'


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_read_only_cache_folder_is_a_warning_not_a_failed_run(tmp_path):
    _read_only_case(tmp_path)


def test_unwritable_cache_is_a_warning_not_a_failed_run(tmp_path):
    """(As root a read-only folder is writable: a path under a file stands in for it.)"""
    (tmp_path / 'file').write_text('x')
    _read_only_case(tmp_path, str(tmp_path / 'file' / 'autotune.json'))


def _read_only_case(tmp_path, path=None):
    from unittest import mock

    from parc_mm.engine.hooks import ParCAutotuneHook
    if path is None:
        ro = tmp_path / 'ro'
        ro.mkdir()
        ro.chmod(0o555)
        path = str(ro / 'autotune.json')
    hook = ParCAutotuneHook(cache_file=path)
    runner = mock.MagicMock()
    hook.before_run(runner)
    _tuned_one()
    hook.after_run(runner)  # no exception: the training itself succeeded
    assert 'were not saved' in runner.logger.warning.call_args[0][0]


# --- hostile cases: the autotune cache ---

def test_concurrent_autotune_saves_never_corrupt_the_file(tmp_path):
    path = str(tmp_path / 'cache.json')
    code = ('import sys, parc_mm.ops.autotuner as a\n'
            'for r in range(30):\n'
            '    a._CACHE.update({f"cpu|k{sys.argv[1]}-{r}-{i}": "fft" for i in range(40)})\n'
            '    a.save_autotune_cache(sys.argv[2])\n')
    procs = [subprocess.Popen([PY, '-c', code, str(i), path], env=ENV, cwd=ROOT)
             for i in range(4)]
    for p in procs:
        assert p.wait() == 0
    entries = json.load(open(path))  # whole JSON, never a mix of two writes
    # the merge runs under a lock: every choice of every process is kept
    assert len(entries) == 4 * 30 * 40
    assert not [n for n in os.listdir(tmp_path) if n.endswith('.tmp')]


def test_corrupt_autotune_cache_warns_and_the_switch_is_strict(tmp_path):
    from parc_mm.ops import autotuner
    bad = tmp_path / 'cache.json'
    bad.write_text('{"a": "fft", ')
    with pytest.raises(autotuner.AutotuneCacheError, match=str(bad)):
        autotuner.load_autotune_cache(str(bad))
    from unittest import mock

    from parc_mm.engine.hooks import ParCAutotuneHook
    runner = mock.MagicMock()
    hook = ParCAutotuneHook(cache_file=str(bad))
    try:
        hook.before_run(runner)
        assert 'is not a readable ParC autotune cache' in runner.logger.warning.call_args[0][0]
    finally:
        autotuner.enable_autotune(False)
    for value, on in (('true', True), ('YES', True), ('on', True), ('off', False), ('0', False),
                      ('', False)):
        with mock.patch.dict(os.environ, {'PARC_AUTOTUNE': value}):
            assert autotuner._env_flag('PARC_AUTOTUNE') is on
    p = _run(['-c', 'import parc_mm.ops'], check=False, env={**ENV, 'PARC_AUTOTUNE': 'maybe'})
    assert p.returncode != 0 and "PARC_AUTOTUNE='maybe' is not a switch" in p.stderr

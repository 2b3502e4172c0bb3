"""Every ParC family through every runtime whose wheels are small (OpenVINO, MNN, ncnn through
pnnx, ExecuTorch): converts, runs, equals PyTorch; the export command's record and
tools/infer.py per runtime; the form table consulted; the converters install and send nothing.
LiteRT (a 1.2 GB converter) is marked slow."""
import json
import os.path as osp
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.harness import ROOT, demo_checkpoint
from tests.test_ops.test_onnx import _family

pytest.importorskip('onnxruntime')
RUNTIMES = ['openvino', 'mnn', 'ncnn', 'executorch']
FAMILIES = ['convnext', 'resnet', 'mv2', 'parcnetv2', 'parcnet', 'vit', 'swin']


def _needs(runtime):
    from parc_mm.deploy import runtimes
    msg = runtimes.problem(runtime)
    if msg:
        pytest.skip(msg)


class _Out(torch.nn.Module):
    """A backbone's outputs as a tuple of tensors."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x)
        return tuple(out) if isinstance(out, (tuple, list)) else (out, )


CELLS = [(f, r) for f in FAMILIES for r in RUNTIMES] + [
    pytest.param(f, 'litert', marks=pytest.mark.slow) for f in FAMILIES]


def _convert(runtime, model, x, folder):
    """The runtime's files of ``model`` at ``x`` by its route: the ONNX graph converted, or
    the folded torch.export program lowered (patch merging as 4-D reshapes where the runtime
    wants it, as the exporter does). Returns (files, output names, PyTorch outputs)."""
    from parc_mm.deploy import runtimes
    from parc_mm.deploy.onnx import export_module
    from parc_mm.deploy.prepare import prepare
    from parc_mm.deploy.program import export_program
    from parc_mm.deploy.rank4 import rank4_unfold
    rt = runtimes.runtime(runtime)
    if rt.unfold_as_reshapes:
        rank4_unfold(model)
    if rt.route == 'onnx':
        got = export_module(model, (x, ), str(folder / 'm.onnx'))
        source, names, refs = str(folder / 'm.onnx'), got['names'], got['outputs']
    else:
        with torch.no_grad():
            refs = prepare(model)(x)
        names = [f'out{i}' for i in range(len(refs))]
        source = export_program(model, (x, ))
    files = runtimes.convert(runtime, source, str(folder), list(x.shape))
    return files, names, [r.numpy() for r in refs]


@pytest.mark.parametrize('family,runtime', CELLS)
def test_every_family_runs_in_every_runtime(tmp_path, family, runtime):
    """The runtime's form exported by the one exporter (or the folded torch.export program),
    converted, run on the export's input: every output equals PyTorch within the runtime's
    tolerance."""
    from parc_mm.deploy import runtimes
    from parc_mm.ops import set_impl
    _needs(runtime)
    rt = runtimes.runtime(runtime)
    torch.manual_seed(0)
    model = _Out(_family(family))
    if rt.form != 'auto':
        set_impl(model, rt.form)
    x = torch.randn(1, 3, 96, 128)
    files, names, refs = _convert(runtime, model, x, tmp_path)
    net = runtimes.load(runtime, str(tmp_path), files[0], names, threads=2)
    diff = runtimes.check(net, x.numpy(), refs)
    scale = max(float(np.abs(r).max()) for r in refs)
    assert diff <= rt.rtol * max(scale, 1.0), (diff, scale)


def test_a_graph_ncnn_cannot_take_is_refused_with_the_reason(tmp_path):
    """Patch merging's nn.Unfold as exported (Gathers on 6-D tensors, without the exporter's
    rank-4 form) is refused at conversion, naming the ops."""
    from parc_mm.deploy import runtimes
    from parc_mm.deploy.onnx import export_module
    from parc_mm.ops import set_impl
    _needs('ncnn')
    model = _Out(_family('swin'))
    set_impl(model, 'direct')
    x = torch.randn(1, 3, 96, 128)
    got = export_module(model, (x, ), str(tmp_path / 'm.onnx'))
    assert got['max_abs_diff'] < 1e-4
    with pytest.raises(RuntimeError, match='pnnx cannot map Gather.*at most 4-D'):
        runtimes.convert('ncnn', str(tmp_path / 'm.onnx'), str(tmp_path), list(x.shape))



def test_the_form_table_is_consulted(tmp_path):
    """ncnn gets Concat + Conv (its batched MatMul is slow), the others the circulant GEMM
    where the maps are short: the ParC nodes of each runtime's ONNX graph say so; ExecuTorch
    gets the GEMM with its circulants as constants (no arange / remainder / index left)."""
    from parc_mm.deploy import runtimes
    from parc_mm.deploy.onnx import export_config
    from parc_mm.deploy.report import parc_nodes
    ckpt = demo_checkpoint(tmp_path, 'configs/demo/shapes_cls_parc-convnext.py', 'mmpretrain')
    forms = {}
    for runtime in ['onnxruntime'] + RUNTIMES:
        if runtimes.problem(runtime):
            continue
        out = str(tmp_path / runtime)
        rec = export_config(osp.join(ROOT, 'configs/demo/shapes_cls_parc-convnext.py'), ckpt,
                            out, (64, 64), runtime=runtime)
        if runtimes.runtime(runtime).route == 'torch.export':
            assert rec['exporter'] == 'torch.export' and rec['onnx'] is None
            assert not {'arange', 'remainder', 'index'} & set(rec['ops']), rec['ops']
            # the six ParC layers' GEMMs, two directions: 3-D bmm (no broadcast copies)
            assert rec['ops'].get('bmm') == 12 and 'matmul' not in rec['ops'], rec['ops']
            assert not osp.exists(osp.join(out, 'model.onnx'))
            forms[runtime] = {'gemm'}
        else:
            forms[runtime] = {f for f, _ in parc_nodes(osp.join(out, 'model.onnx'))}
        assert rec['runtime']['form'] == runtimes.runtime(runtime).form
        assert rec['backend'] == runtime and rec['model'] == runtimes.runtime(runtime).files[0]
    assert forms['onnxruntime'] == {'gemm'}
    if 'ncnn' in forms:
        assert forms['ncnn'] == {'conv'}
    for runtime in ('openvino', 'mnn', 'executorch'):
        if runtime in forms:
            assert forms[runtime] == {'gemm'}


@pytest.mark.parametrize('runtime', RUNTIMES + [pytest.param('litert', marks=pytest.mark.slow)])
def test_export_command_and_infer_per_runtime(tmp_path, runtime):
    """tools/deploy/export.py --runtime R writes the runtime's files and a record with its
    difference to PyTorch; tools/infer.py runs the folder in that runtime and gives the
    checkpoint's top-5."""
    _needs(runtime)
    from parc_mm.datasets import synthetic
    from parc_mm.deploy import runtimes
    from parc_mm.utils.fileio import verify_folder
    config = 'configs/demo/shapes_cls_parc-convnext.py'
    ckpt = demo_checkpoint(tmp_path, config, 'mmpretrain')
    env = {'PATH': '/usr/bin:/bin', 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '2', 'HOME': '/tmp'}
    out = tmp_path / 'exp'
    p = subprocess.run([sys.executable, 'tools/deploy/export.py', config, ckpt, '--work-dir',
                        str(out), '--shape', '64', '64', '--runtime', runtime],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.load(open(out / 'parc_export.json'))
    rt = runtimes.runtime(runtime)
    assert rec['runtime']['name'] == runtime and rec['runtime']['max_abs_diff_vs_pytorch'] < 1e-3
    man = verify_folder(str(out))
    assert set(rt.files) <= set(man['files']) and not any('pnnx' in f for f in man['files'])
    root = str(tmp_path / 'data')
    synthetic.ensure(root)
    img = sorted(__import__('glob').glob(osp.join(root, 'cls', 'val', '*', '00000.png')))[:2]
    runs = {}
    for kind, model in (('pth', ckpt), (runtime, str(out))):
        p = subprocess.run([sys.executable, 'tools/infer.py', config, model, *img, '--out-dir',
                            str(tmp_path / kind), '--device', 'cpu'], capture_output=True,
                           text=True, cwd=ROOT, env=env)
        assert p.returncode == 0, p.stderr[-3000:]
        runs[kind] = json.load(open(tmp_path / kind / 'predictions.json'))
    for a, b in zip(runs['pth'], runs[runtime]):
        assert [t['label'] for t in a['top5']] == [t['label'] for t in b['top5']]
        assert max(abs(x['score'] - y['score']) for x, y in zip(a['top5'], b['top5'])) < 1e-3


@pytest.mark.parametrize('group', [RUNTIMES, pytest.param(['litert'], marks=pytest.mark.slow)],
                         ids=['small-wheels', 'litert'])
def test_converters_install_and_send_nothing(tmp_path, monkeypatch, group):
    """No socket is opened and no process but the converters' own binaries (pnnx; flatc, the
    flatbuffer compiler ExecuTorch serializes with) is started while converting and running
    for every runtime (MNN's converter script would pip-install a logging SDK and post usage
    logs; its converter function does neither)."""
    from parc_mm.deploy import runtimes
    opened, started = [], []

    def no_connect(self, *a, **k):
        opened.append(a)
        raise OSError('network access refused by the test')

    real_run = subprocess.run

    def run(args, *a, **k):
        started.append(args)
        return real_run(args, *a, **k)

    monkeypatch.setattr(socket.socket, 'connect', no_connect)
    monkeypatch.setattr(subprocess, 'run', run)
    monkeypatch.setattr('os.system', lambda cmd: started.append(cmd) or 1)
    x = torch.randn(1, 3, 64, 64)
    for runtime in group:
        if runtimes.problem(runtime):
            continue
        folder = tmp_path / runtime
        folder.mkdir()
        files, names, _ = _convert(runtime, _Out(_family('convnext')), x, folder)
        runtimes.load(runtime, str(folder), files[0], names)(x.numpy())
    assert opened == []
    assert all(osp.basename(str(cmd[0] if isinstance(cmd, list) else cmd)) in ('pnnx', 'flatc')
               for cmd in started), started
    assert not any(m.startswith('aliyun') or m == 'MNN.tools.utils.log' for m in sys.modules)


def test_a_missing_runtime_names_the_extra(monkeypatch):
    import importlib.util

    from parc_mm.deploy import runtimes
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda n, *a: None if n in ('ncnn', 'pnnx') else real(n, *a))
    msg = runtimes.problem('ncnn')
    assert 'parc_mm[ncnn]' in msg and 'pip install --no-deps pnnx' in msg
    with pytest.raises(ValueError, match='unknown runtime'):
        runtimes.runtime('tensorrt')


def test_the_deployment_benchmark_times_each_runtime(tmp_path, capsys):
    """benchmark_onnx.py over runtimes: a row per runtime with the runtime's form, a matrix,
    JSON and markdown written through the one writer; in ncnn the attention baseline runs in
    its rank-4 form, and the matrix says so."""
    from parc_mm.deploy import runtimes
    from tools.analysis import benchmark_onnx
    have = [r for r in RUNTIMES if not runtimes.problem(r)]
    if not have:
        pytest.skip('no runtime besides ONNX Runtime installed')
    md, js = tmp_path / 'b.md', tmp_path / 'b.json'
    assert benchmark_onnx.main(['--runtimes', *have, '--pairs', 'convnext', 'deit', '--sizes',
                                '64', '--rounds', '2', '--reps', '1', '--json', str(js),
                                '--markdown', str(md)]) == 0
    rows = json.load(open(js))['rows']
    assert {r['runtime'] for r in rows} == set(have)
    text = md.read_text()
    assert text.startswith('<!-- written by parc_mm benchmark_onnx')
    for r in have:
        assert f'| {r} | ParC-ConvNeXt-XT (paper) | 64 | yes | yes |' in text
    if 'ncnn' in have:  # (the baseline's 5-D attention in its rank-4 form, said so)
        assert '| ncnn | ParC-DeiT-S | 64 | yes | yes (rank-4 attention) |' in text
    (tmp_path / 'notes.md').write_text('mine')
    from parc_mm.utils.fileio import ArtefactError
    with pytest.raises(ArtefactError, match='not written by parc_mm'):
        benchmark_onnx.main(['--runtimes', have[0], '--pairs', 'convnext', '--sizes', '64',
                             '--rounds', '1', '--reps', '1', '--markdown',
                             str(tmp_path / 'notes.md')])
    assert (tmp_path / 'notes.md').read_text() == 'mine'

"""One exporter: the export command, the mmdeploy pipeline, the deployment benchmark and the
op report produce the same ParC graph; int8 of plain exports; the record and artefact_of
(what a path holds, never decided by a file suffix); JSON results written by parc_mm only."""
import glob
import json
import os
import os.path as osp
import shutil

import pytest
import torch

pytest.importorskip('onnxruntime')
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/demo/shapes_cls_parc-convnext.py'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    from parc_mm.datasets import synthetic
    root = str(tmp_path_factory.mktemp('shapes'))
    synthetic.ensure(root)
    return root


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    from tests.harness import demo_checkpoint
    return demo_checkpoint(tmp_path_factory.mktemp('ckpt'), CONFIG, 'mmpretrain')


@pytest.fixture(scope='module')
def exported(tmp_path_factory, ckpt, data_root):
    """The demo classifier through the export command's function, with int8."""
    from parc_mm.deploy.onnx import export_config
    out = str(tmp_path_factory.mktemp('exp') / 'e')
    calib = sorted(glob.glob(osp.join(data_root, 'cls', 'val', '*', '0000[0-2].png')))
    rec = export_config(osp.join(ROOT, CONFIG), ckpt, out, (64, 64), int8_images=calib)
    return out, rec


def test_benchmark_op_report_and_export_command_trace_the_same_parc_graph(exported, ckpt):
    """The model the export command wrote, exported again the benchmark's way
    (export_module, which the op report calls too): the same ParC nodes, GEMMs where the
    maps are short (the export form of auto), the same outputs."""
    from mmengine.runner import load_checkpoint

    from parc_mm.apis.tasks import build_model, load_config
    from parc_mm.deploy.onnx import ExportedTask, export_module
    from parc_mm.deploy.report import parc_nodes
    out, rec = exported
    model = build_model(load_config(osp.join(ROOT, CONFIG)))
    load_checkpoint(model, ckpt, map_location='cpu')
    path = osp.join(osp.dirname(out), 'again.onnx')
    got = export_module(ExportedTask(model, 'cls'), (torch.randn(1, 3, 64, 64), ), path)
    mine = parc_nodes(osp.join(out, 'model.onnx'))
    assert mine == parc_nodes(path) and mine
    assert {form for form, _ in mine} == {'gemm'}  # 64x64 input: every map <= 64
    assert got['report']['ops'] == rec['ops']


def test_mmdeploy_traces_the_same_parc_graph(tmp_path, exported, ckpt, data_root):
    pytest.importorskip('mmdeploy')
    from parc_mm.deploy.mmdeploy.pipeline import deploy
    from parc_mm.deploy.report import parc_nodes
    img = sorted(glob.glob(osp.join(data_root, 'cls', 'val', '*', '00000.png')))[0]
    rec = deploy(osp.join(ROOT, 'configs/deploy/classification_onnxruntime_static-64x64.py'),
                 osp.join(ROOT, CONFIG), ckpt, img, str(tmp_path / 'd'))
    assert rec['route'] == 'mmdeploy' and rec['backend'] == 'onnxruntime'
    assert parc_nodes(str(tmp_path / 'd' / rec['model'])) == \
        parc_nodes(osp.join(exported[0], 'model.onnx'))


def test_the_benchmark_times_the_shipped_form():
    """export_pair exports the ParC model as it ships (auto); another form only on request."""
    import tempfile

    from parc_mm.analysis.onnx_benchmark import export_pair
    from parc_mm.deploy.report import parc_nodes
    with tempfile.TemporaryDirectory() as d:
        g = export_pair('ParC-Net-S', 64, d, impls=(None, 'direct'))
        assert {f for f, _ in parc_nodes(g['parc']['path'])} == {'gemm'}
        assert {f for f, _ in parc_nodes(g['parc-direct']['path'])} == {'conv'}
        assert g['parc']['max_abs_diff'] < 1e-4 and g['parc']['report']['non_portable'] == []


@pytest.mark.parametrize('runtime', ['onnxruntime', 'openvino'])
def test_the_profile_says_where_the_time_goes(runtime):
    """benchmark_onnx.py --profile: the runtime's profiler over the same graphs; the ParC
    model spends time in its circulant MatMuls and none in attention Softmax or token GEMMs,
    the baseline in token GEMMs; the op times add up to the total."""
    from parc_mm.analysis.onnx_benchmark import profile_pair, profile_table
    from parc_mm.deploy import runtimes
    if runtimes.problem(runtime):
        pytest.skip(runtimes.problem(runtime))
    prof = profile_pair('ParC-Net-S', 64, threads=1, runs=2, runtime=runtime)
    b, p = prof['baseline'], prof['parc']
    assert p['ops'].get('MatMul', 0) > 0 and 'Softmax' not in p['ops']
    token = {'onnxruntime': 'Gemm', 'openvino': 'FullyConnected'}[runtime]  # token GEMMs
    assert b['ops'].get(token, 0) > 0 and token not in p['ops'], (b['ops'], p['ops'])
    for d in (b, p):
        assert abs(sum(d['ops'].values()) - d['total']) < 1e-6
        assert abs(sum(d['modules'].values()) - d['total']) < 1e-6
        assert d['run'] > 0.5 * d['total']  # (nodes run one after another: ~all of it)
    text = profile_table('ParC-Net-S', 64, prof)
    assert '| MatMul |' in text and '| ParC: module | ms | share |' in text


def test_int8_of_a_plain_export(exported):
    out, rec = exported
    q = rec['int8']
    assert q['onnx'] == 'model_int8.onnx' and osp.isfile(osp.join(out, 'model_int8.onnx'))
    assert q['calibration_images'] > 0 and q['skipped_images'] == []
    assert q['parc'] > 0 and q['parc_int8'] == q['parc'] and q['float_parc'] == []
    from parc_mm.utils.fileio import verify_folder
    assert 'model_int8.onnx' in verify_folder(out)['files']


def test_int8_of_a_plain_export_from_the_command(tmp_path, ckpt, data_root):
    import subprocess
    import sys
    calib = tmp_path / 'calib'
    calib.mkdir()
    for i, f in enumerate(sorted(glob.glob(osp.join(data_root, 'cls', 'val', '*',
                                                    '0000[01].png')))[:3]):
        shutil.copy(f, calib / f'{i}.png')
    (calib / 'broken.png').write_bytes(b'not an image')
    p = subprocess.run([sys.executable, 'tools/deploy/export_onnx.py', CONFIG, ckpt, '--out',
                        str(tmp_path / 'e'), '--shape', '64', '64', '--int8', str(calib)],
                       capture_output=True, text=True, cwd=ROOT,
                       env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': ROOT, 'HOME': '/tmp',
                            'OMP_NUM_THREADS': '2'})
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'model_int8.onnx' in p.stdout and 'skipping' in p.stdout + p.stderr
    q = json.load(open(tmp_path / 'e' / 'parc_export.json'))['int8']
    assert q['calibration_images'] == 3 and q['skipped_images'][0]['image'].endswith('broken.png')


# --- what a path holds --------------------------------------------------------------------
def test_artefact_of_tells_checkpoint_export_and_mmdeploy_apart(tmp_path, exported, ckpt):
    from parc_mm.deploy.record import artefact_of
    from parc_mm.utils.fileio import ArtefactError
    out, _ = exported
    assert artefact_of(ckpt).kind == 'checkpoint'
    a = artefact_of(out)
    assert (a.kind, a.backend, a.verified) == ('export', 'onnxruntime', True)
    assert a.model == osp.join(out, 'model.onnx')
    assert artefact_of(osp.join(out, 'model_int8.onnx')).kind == 'export'
    # suffixes decide nothing: a checkpoint named .onnx is a checkpoint, a graph named .pth
    # is refused unless asked
    odd = tmp_path / 'weights.onnx'
    shutil.copy(ckpt, odd)
    assert artefact_of(str(odd)).kind == 'checkpoint'
    graph = tmp_path / 'graph.pth'
    shutil.copy(osp.join(out, 'model.onnx'), graph)
    with pytest.raises(ArtefactError, match='not a checkpoint'):
        artefact_of(str(graph))
    assert artefact_of(str(graph), allow_unverified=True).record == {}
    # an mmdeploy folder (mmdeploy's own files, no manifest of ours): its backend from
    # detail.json
    md = tmp_path / 'md'
    md.mkdir()
    shutil.copy(osp.join(out, 'model.onnx'), md / 'end2end.onnx')
    (md / 'pipeline.json').write_text('{}')
    (md / 'detail.json').write_text(json.dumps(dict(
        backend_config=dict(type='onnxruntime'), onnx_config=dict(save_file='end2end.onnx'))))
    a = artefact_of(str(md))
    assert (a.kind, a.backend, a.verified) == ('mmdeploy', 'onnxruntime', False)
    assert artefact_of(str(md / 'end2end.onnx')).kind == 'mmdeploy'
    (md / 'deploy.json').write_text('{}')  # mmdeploy's SDK file, not an export record
    assert artefact_of(str(md)).kind == 'mmdeploy'
    other = tmp_path / 'other'
    other.mkdir()
    with pytest.raises(FileNotFoundError, match='not one tools/deploy/export_onnx.py'):
        artefact_of(str(other))


def test_the_record_is_written_atomically_and_merged(tmp_path):
    from parc_mm.deploy.record import RECORD, read_record, write_record
    write_record(str(tmp_path), dict(a=1))
    write_record(str(tmp_path), dict(b=2), update=True)
    assert read_record(str(tmp_path)) == dict(a=1, b=2)
    assert os.listdir(tmp_path) == [RECORD]  # no temporary file left behind
    write_record(str(tmp_path), dict(c=3))
    assert read_record(str(tmp_path)) == dict(c=3)


def test_json_results_never_overwrite_a_file_parc_mm_did_not_write(tmp_path):
    from parc_mm.utils.fileio import ArtefactError, write_result
    mine = tmp_path / 'r.json'
    write_result(str(mine), dict(x=1), 'tool')
    write_result(str(mine), dict(x=2), 'tool')
    assert json.load(open(mine)) == {'written_by': 'parc_mm tool', 'x': 2}
    for body in ('{"x": 1}', 'notes', '[1, 2]'):
        user = tmp_path / 'user.json'
        user.write_text(body)
        with pytest.raises(ArtefactError, match='not written by parc_mm'):
            write_result(str(user), dict(x=1), 'tool')
        assert user.read_text() == body


def test_text_results_never_overwrite_a_file_parc_mm_did_not_write(tmp_path):
    from parc_mm.utils.fileio import ArtefactError, check_result_file, write_text_result
    mine = tmp_path / 'r.md'
    write_text_result(str(mine), '| a |', 'tool')
    write_text_result(str(mine), '| b |', 'tool')
    assert mine.read_text() == '<!-- written by parc_mm tool -->\n| b |\n'
    user = tmp_path / 'notes.md'
    user.write_text('# my notes\n')
    with pytest.raises(ArtefactError, match='not written by parc_mm'):
        check_result_file(str(user))
    with pytest.raises(ArtefactError, match='not written by parc_mm'):
        write_text_result(str(user), 'x', 'tool')
    assert user.read_text() == '# my notes\n'
    with pytest.raises(ArtefactError, match='is a folder'):
        check_result_file(str(tmp_path))

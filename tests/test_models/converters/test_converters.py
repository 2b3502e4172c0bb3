"""The converters: rule tables, and what the converter tool does with a user's files."""
import os
import os.path as osp

import pytest
import torch

from tests.harness import ROOT
from tests.harness import run_py as _run

CONVERT = osp.join(ROOT, 'tools', 'model_converters', 'to_parc.py')


def test_rule_tables_parse_drops_and_refuse_bad_lines():
    from parc_mm.models.converters.core import rule_table
    assert rule_table(r'''
        a\.(\d+)  b.\1
        c\..*     -
    ''') == [(r'a\.(\d+)', r'b.\1'), (r'c\..*', None)]
    with pytest.raises(ValueError, match='needs a regex and a replacement'):
        rule_table('a b c')


# --- hostile cases: the converter ---

@pytest.fixture(scope='module')
def convnext_t_src(tmp_path_factory):
    from mmpretrain.models import ConvNeXt
    torch.manual_seed(0)
    m = ConvNeXt(arch='tiny', out_indices=(0, 1, 2, 3))
    path = str(tmp_path_factory.mktemp('src') / 'convnext_t_upernet.pth')
    sd = {'backbone.' + k: v for k, v in m.state_dict().items()}
    sd['decode_head.conv_seg.weight'] = torch.randn(150, 512, 1, 1)
    torch.save({'state_dict': sd}, path)
    return path


def _convert(capsys, *argv):
    """tools/model_converters/to_parc.py's main() in this process: (exit code, stderr)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('to_parc', CONVERT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    capsys.readouterr()
    rc = tool.main(list(argv))
    return rc, capsys.readouterr().err


def test_converter_never_overwrites_its_source_or_an_existing_file(tmp_path, convnext_t_src,
                                                                    capsys, monkeypatch):
    import shutil
    monkeypatch.chdir(ROOT)
    src = str(tmp_path / 'x' / 'src.pth')
    os.makedirs(osp.dirname(src))
    shutil.copy(convnext_t_src, src)
    data = open(src, 'rb').read()
    link = tmp_path / 'link.pth'
    link.symlink_to(src)
    for dst in (src, osp.join(tmp_path, 'x', '..', 'x', 'src.pth'), './' + osp.relpath(src, ROOT),
                str(link)):
        rc, err = _convert(capsys, 'convnext', src, dst, '--arch', 'tiny')
        assert rc == 2 and 'is the source file itself' in err, err
    assert open(src, 'rb').read() == data
    text = tmp_path / 'notes.txt'
    text.write_text('not a checkpoint')
    rc, err = _convert(capsys, 'convnext', src, str(text), '--arch', 'tiny')
    assert rc == 2 and '--force' in err
    assert text.read_text() == 'not a checkpoint'
    rc, err = _convert(capsys, 'convnext', src, str(tmp_path), '--arch', 'tiny')
    assert rc == 2 and 'is a folder' in err
    out = tmp_path / 'out.pth'
    assert _convert(capsys, 'convnext', src, str(out), '--arch', 'tiny')[0] == 0
    from parc_mm.utils.checkpoint import current_umask
    assert (os.stat(out).st_mode & 0o777) == 0o666 & ~current_umask()  # not mkstemp's 0600
    assert _convert(capsys, 'convnext', src, str(text), '--arch', 'tiny', '--force')[0] == 0
    assert open(text, 'rb').read(2) == b'PK'


def test_converter_on_a_full_or_read_only_file_system_says_so(tmp_path, tmpfs,
                                                                 convnext_t_src):
    full = tmpfs('full', '1m')
    p = _run([CONVERT, 'convnext', convnext_t_src, str(full / 'out.pth'), '--arch', 'tiny'],
             check=False)
    assert p.returncode == 2 and 'no space left' in p.stderr and 'Traceback' not in p.stderr
    assert os.listdir(full) == []  # no hidden temp file keeps the disk full
    ro = tmpfs('ro', '1m', ro=True)
    p = _run([CONVERT, 'convnext', convnext_t_src, str(ro / 'out.pth'), '--arch', 'tiny'],
             check=False)
    assert p.returncode == 2 and 'not writable' in p.stderr and 'Traceback' not in p.stderr


def test_converter_coverage_is_the_backbones_and_a_wrong_arch_is_named(tmp_path,
                                                                       convnext_t_src):
    """A ResNet-50 segmentor given to the ConvNeXt / MV2 converters and a ConvNeXt-T given
    without --arch used to be written with 86-95 % "from the source" (the copied heads)."""
    from mmpretrain.models import ResNet
    torch.manual_seed(0)
    sd = {'backbone.' + k: v for k, v in ResNet(depth=50).state_dict().items()}
    sd['decode_head.bottleneck.conv.weight'] = torch.randn(512, 4096, 3, 3)  # UperNet-sized
    src = str(tmp_path / 'r50_upernet.pth')
    torch.save({'state_dict': sd}, src)
    for family in ('convnext', 'mv2'):
        dst = tmp_path / f'{family}.pth'
        p = _run([CONVERT, family, src, str(dst)], check=False)
        assert p.returncode == 1 and 'backbone parameters' in p.stderr, p.stdout + p.stderr
        assert not dst.exists()
    dst = tmp_path / 'xt.pth'
    p = _run([CONVERT, 'convnext', convnext_t_src, str(dst)], check=False)  # forgot --arch
    assert p.returncode == 1 and 'looks like convnext tiny' in p.stderr and '--arch tiny' in \
        p.stderr, p.stderr
    assert not dst.exists()

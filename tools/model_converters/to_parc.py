"""Convert a checkpoint into a parc_mm ParC model checkpoint, with a report.

Families and the source layouts they read (auto-detected):
  convnext  official ParC-ConvNets (dwconv, gcc_H/gcc_W), the first author's detection
            backbones (gcc_conv_1H/2W, meta_pe, norm0-3), facebook / timm / mmpretrain ConvNeXt
  resnet    official ParC-ResNet50 (parc_H/parc_W), detection fork (gcc_H/gcc_W),
            torchvision / mmpretrain / mmdet ResNet
  mv2       official ParC-MobileNetV2 (features.*), detection fork (layer*.gcc_H),
            torchvision / mmpretrain MobileNetV2
  parcnet   official ParC-Net-S / XS (cvnets edgeformer: conv_1, layer_N, meta_kernel_1_H ...)
  parcnetv2 official ParCNetV2 (timm classifier: stages / norm / head; the official mmdet /
            mmseg backbone: norm0-3; whole official detectors / segmentors keep neck and heads)
  deit      DeiT / ViT: timm and the DeiT release (blocks.N...), mmpretrain / mmseg
            (backbone.layers.N...) -> ParC-ViT; attention, class token and position table are
            dropped (listed), the arch is read from the shapes
  swin      Swin: the original release (layers.N.blocks...), mmpretrain, mmdet and mmseg
            (stages.N.blocks..., whole detectors / segmentors keep their neck and heads)
            -> ParC-Swin; window attention is dropped (listed)

Tensors the source provides are copied; ParC kernels / position embeddings the source lacks
(a plain network -> ParC init) keep a fresh init; ParC tensors of another base size are
resized. Everything not used, left at init or mis-shaped is printed.

    python tools/model_converters/to_parc.py convnext SRC.pth DST.pth --arch xt
    python tools/model_converters/to_parc.py resnet resnet50.pth DST.pth
    python tools/model_converters/to_parc.py parcnet parcnet_s.pt \
        checkpoints/parc-net-s_in1k.pth --arch s
    python tools/model_converters/to_parc.py parcnetv2 parcnetv2_tiny.pth.tar \
        checkpoints/parcnetv2-tiny_in1k.pth --arch tiny
    python tools/model_converters/to_parc.py deit deit_small_patch16_224.pth parc-deit-s.pth
    python tools/model_converters/to_parc.py swin swin_tiny_patch4_window7_224.pth \
        parc-swin-t.pth
"""
import argparse
import os
import os.path as osp
import sys

from parc_mm.models import converters
from parc_mm.utils.checkpoint import CheckpointError, atomic_torch_save, torch_load


def check_destination(src: str, dst: str, force: bool):
    """Why ``dst`` may not be written (None when it may): it is the source (under any
    spelling or link), a folder, or an existing file without ``--force``."""
    if osp.exists(dst) and osp.exists(src) and osp.samefile(src, dst) or \
            osp.realpath(src) == osp.realpath(dst):
        return f'DST {dst} is the source file itself: give another output path.'
    if osp.isdir(dst):
        return f'DST {dst} is a folder: give a file path, e.g. {osp.join(dst, "model.pth")}.'
    if osp.lexists(dst) and not force:
        return f'DST {dst} exists: pass --force to replace it, or give another path.'
    return None


def write_error(e: Exception, dst: str) -> str:
    """One line for a failed write (torch reports a full disk as 'unexpected pos')."""
    import errno
    import shutil
    folder = osp.dirname(osp.abspath(dst))
    code = getattr(e, 'errno', None)
    if code == errno.ENOSPC or 'unexpected pos' in str(e) or 'No space' in str(e):
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            free = -1
        return f'no space left on the file system of {folder} ({free / 2**20:.1f} MiB free)'
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f'{folder} is not writable ({e.strerror})'
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('family', choices=sorted(converters.FAMILIES))
    p.add_argument('src')
    p.add_argument('dst', help='output file (its folder is created; an existing file needs '
                               '--force; never the source itself)')
    p.add_argument('--force', action='store_true', help='replace an existing DST')
    p.add_argument('--arch', default=None,
                   help="ConvNeXt arch ('xt' default, 'tiny', 'small'); "
                        "ParC-Net ('s' default, 'xs'); ParCNetV2 ('tiny' default, 'xt', "
                        "'small', 'base'); deit / swin: read from the shapes "
                        "when not given")
    p.add_argument('--depth', type=int, default=50, help='ResNet depth')
    p.add_argument('--parc-blocks', default=None,
                   help="'paper' (default; deit / swin: 'all', every attention), 'all' or "
                        "'none'")
    p.add_argument('--no-head', action='store_true', help='drop the classifier head')
    p.add_argument('--strict', action='store_true',
                   help='fail if any source tensor is unused or any target tensor missing')
    p.add_argument('--allow-partial', action='store_true',
                   help='write the result even when most of the target stays at its random '
                        f'init (refused by default below {converters.MIN_COVERAGE:.0%})')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='load SRC with weights_only=False: needed for checkpoints that pickle '
                        'Python objects (e.g. an argparse.Namespace); only for trusted files')
    a = p.parse_args(argv)
    problem = check_destination(a.src, a.dst, a.force)
    if problem:
        print(f'error: {problem}', file=sys.stderr)
        return 2
    try:
        src = converters.unwrap_checkpoint(torch_load(a.src, trusted=a.trust_checkpoint))
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    kwargs = dict(head=not a.no_head)
    if a.family in ('convnext', 'parcnet', 'parcnetv2', 'deit', 'swin'):
        kwargs['arch'] = a.arch or {'convnext': 'xt', 'parcnet': 's',
                                    'parcnetv2': 'tiny'}.get(a.family)
    if a.family not in ('parcnet', 'parcnetv2'):
        kwargs['parc_blocks'] = a.parc_blocks or (
            'all' if a.family in ('deit', 'swin') else 'paper')
    if a.family == 'resnet':
        kwargs['depth'] = a.depth
    try:
        out, rep = converters.to_parc(a.family, src, **kwargs)
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(rep.summary())
    if a.strict and (rep.unused or rep.missing or rep.mismatched):
        print('--strict: conversion incomplete, nothing written', file=sys.stderr)
        return 1
    if not a.allow_partial:
        try:
            converters.check_coverage(rep, a.family)
        except ValueError as e:
            print(f'error: {e}', file=sys.stderr)
            given = {k: kwargs[k] for k in ('arch', 'depth') if k in kwargs}
            found = converters.detect_arch(a.family, src, **{
                k: v for k, v in kwargs.items() if k not in ('arch', 'depth')})
            if found is not None and found[1] != given:
                flag = ' '.join(f'--{k} {v}' for k, v in found[1].items())
                print(f'error: the source looks like {a.family} {found[0]} '
                      f'({100 * found[2]:.0f}% of that backbone comes from it), not '
                      f'{" ".join(str(v) for v in given.values())}: pass {flag}',
                      file=sys.stderr)
            return 1
    try:
        os.makedirs(osp.dirname(osp.abspath(a.dst)), exist_ok=True)
        atomic_torch_save({'state_dict': out,
                           'meta': {'converted_from': a.src, 'family': a.family}}, a.dst)
    except (OSError, RuntimeError) as e:
        print(f'error: could not write {a.dst}: {write_error(e, a.dst)}; nothing was written.',
              file=sys.stderr)
        return 2
    print(f'wrote {a.dst}: {len(out)} tensors = {rep.from_source} from the source + '
          f'{len(out) - rep.from_source} at init')
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Convert a checkpoint into a parc_mm ParC model checkpoint, with a report.

Families and the source layouts they read (auto-detected):
  convnext  official ParC-ConvNets (dwconv, gcc_H/gcc_W), the first author's detection
            backbones (gcc_conv_1H/2W, meta_pe, norm0-3), facebook / timm / mmpretrain ConvNeXt
  resnet    official ParC-ResNet50 (parc_H/parc_W), detection fork (gcc_H/gcc_W),
            torchvision / mmpretrain / mmdet ResNet
  mv2       official ParC-MobileNetV2 (features.*), detection fork (layer*.gcc_H),
            torchvision / mmpretrain MobileNetV2
  parcnet   official ParC-Net-S / XS (cvnets edgeformer: conv_1, layer_N, meta_kernel_1_H ...)

Tensors the source provides are copied; ParC kernels / position embeddings the source lacks
(a plain network -> ParC init) keep a fresh init; ParC tensors of another base size are
resized. Everything not used, left at init or mis-shaped is printed.

    python tools/model_converters/to_parc.py convnext SRC.pth DST.pth --arch xt
    python tools/model_converters/to_parc.py resnet resnet50.pth DST.pth
    python tools/model_converters/to_parc.py parcnet parcnet_s.pt checkpoints/parc-net-s_in1k.pth --arch s
"""
import argparse
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from parc_mm.models import converters  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('family', choices=['convnext', 'resnet', 'mv2', 'parcnet'])
    p.add_argument('src')
    p.add_argument('dst')
    p.add_argument('--arch', default=None,
                   help="ConvNeXt arch ('xt' default, 'tiny', 'small'); ParC-Net ('s' default, 'xs')")
    p.add_argument('--depth', type=int, default=50, help='ResNet depth')
    p.add_argument('--parc-blocks', default='paper', help="'paper', 'all' or 'none'")
    p.add_argument('--no-head', action='store_true', help='drop the classifier head')
    p.add_argument('--strict', action='store_true',
                   help='fail if any source tensor is unused or any target tensor missing')
    a = p.parse_args(argv)
    src = converters.unwrap_checkpoint(
        torch.load(a.src, map_location='cpu', weights_only=True))
    head = not a.no_head
    if a.family == 'convnext':
        out, rep = converters.convnext_to_parc(src, a.arch or 'xt', a.parc_blocks, head=head)
    elif a.family == 'parcnet':
        out, rep = converters.parcnet_to_parc(src, a.arch or 's', head=head)
    elif a.family == 'resnet':
        out, rep = converters.resnet_to_parc(src, a.depth, a.parc_blocks, head=head)
    else:
        out, rep = converters.mv2_to_parc(src, a.parc_blocks, head=head)
    print(rep.summary())
    if a.strict and (rep.unused or rep.missing or rep.mismatched):
        print('--strict: conversion incomplete, nothing written', file=sys.stderr)
        return 1
    torch.save({'state_dict': out, 'meta': {'converted_from': a.src, 'family': a.family}},
               a.dst)
    print(f'wrote {a.dst} ({len(out)} tensors)')
    return 0


if __name__ == '__main__':
    sys.exit(main())

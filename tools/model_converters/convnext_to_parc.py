"""Convert a ConvNeXt / ParC-ConvNeXt checkpoint into a parc_mm ParC-ConvNeXt checkpoint.

Sources (auto-detected): the official ParC-Net classification models (ParC_ConvNets: dwconv,
gcc_H/gcc_W), the first author's detection backbones (gcc_conv_1H/2W, meta_pe, norm0-3),
facebook ConvNeXt, timm ConvNeXt and mmpretrain ConvNeXt checkpoints.

The output holds every tensor of ``ParCConvNeXt(arch, parc_blocks)`` (+ the classifier head
when the source has one): tensors the source provides are copied, ParC kernels and position
embeddings the source lacks (plain ConvNeXt -> ParC init) keep a fresh trunc-normal init,
and ParC tensors of another base size are resized. What was not used is printed.

    python tools/model_converters/convnext_to_parc.py SRC.pth DST.pth --arch xt
"""
import argparse
import sys

import torch

from parc_mm.models.converters import convnext_to_parc, unwrap_checkpoint


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('src')
    p.add_argument('dst')
    p.add_argument('--arch', default='xt', help="ParCConvNeXt arch ('xt', 'tiny', 'small')")
    p.add_argument('--parc-blocks', default='paper', help="'paper', 'all' or 'none'")
    p.add_argument('--layout', default=None, choices=['official', 'det', 'timm', 'mmpretrain'])
    p.add_argument('--no-head', action='store_true', help='drop the classifier head')
    p.add_argument('--strict', action='store_true',
                   help='fail if any source tensor is unused or any target tensor missing')
    a = p.parse_args(argv)
    src = unwrap_checkpoint(torch.load(a.src, map_location='cpu', weights_only=True))
    out, rep = convnext_to_parc(src, a.arch, a.parc_blocks, a.layout, head=not a.no_head)
    print(rep.summary())
    if a.strict and (rep.unused or rep.missing or rep.mismatched):
        print('--strict: conversion incomplete, nothing written', file=sys.stderr)
        return 1
    torch.save({'state_dict': out, 'meta': {'converted_from': a.src, 'arch': a.arch}}, a.dst)
    print(f'wrote {a.dst} ({len(out)} tensors)')
    return 0


if __name__ == '__main__':
    sys.exit(main())

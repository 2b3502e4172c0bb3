"""Effective receptive field (RepLKNet-style) of a backbone stage: a ParC model next to its
baseline. Prints the area fraction holding 20% / 50% / 99% of the contribution and writes a
log-scaled heatmap PNG.

    python tools/analysis/erf.py PARC_CONFIG --baseline BASE_CONFIG [--checkpoint CKPT]
        [--baseline-checkpoint CKPT] [--stage -1] [--size 256] [--num-images 8]
        [--images DIR] [--out work_dirs/erf.png]

Images: ``--images`` (a folder, searched recursively, e.g. ImageNet's val/), else the
built-in synthetic scenes under ``--data-root``.
"""
import argparse
import glob
import os.path as osp

from mmengine.config import DictAction


def load_images(data_root, size, n, images=None):
    import numpy as np
    import torch
    from PIL import Image

    if images:
        from parc_mm.apis.images import list_images
        try:
            paths = list_images(images, recursive=True)[:n]
        except FileNotFoundError as e:
            raise SystemExit(f'error: --images: {e}')
    else:
        from parc_mm.datasets import synthetic
        synthetic.ensure(data_root)
        paths = sorted(glob.glob(osp.join(data_root, 'coco', 'val', '*.jpg')))[:n]
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    out = []
    for p in paths:
        img = Image.open(p).convert('RGB').resize((size, size), Image.BILINEAR)
        t = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float()
        out.append((t - mean) / std)
    return out


def backbone_of(config, checkpoint, part, cfg_options=None):
    import torch.nn as nn
    from mmengine.config import Config

    from parc_mm.analysis.complexity import build_from_config
    from parc_mm.apis.tasks import resolve_config
    opts = dict(cfg_options or {})
    btype = str(Config.fromfile(resolve_config(config)).model.backbone.get('type', ''))
    if 'ConvNeXt' in btype:  # classification configs pool inside the backbone: keep the map
        opts.setdefault('model.backbone.gap_before_final_norm', False)
    model, _, _ = build_from_config(config, opts)
    if checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
    else:
        print(f'WARNING: no checkpoint for {config}: this is the ERF of randomly initialised '
              'weights (the architecture\'s prior), not of a trained model. Pass '
              '--checkpoint / --baseline-checkpoint for trained weights.', flush=True)
    if part == 'backbone':
        return model.backbone
    return nn.Sequential(model.backbone, model.neck)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--baseline', default=None)
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--baseline-checkpoint', default=None)
    p.add_argument('--part', default='backbone', choices=['backbone', 'neck'])
    p.add_argument('--stage', type=int, default=-1, help='output index of the part')
    p.add_argument('--size', type=int, default=256)
    p.add_argument('--num-images', type=int, default=8)
    p.add_argument('--data-root', default='data/shapes')
    p.add_argument('--images', default=None,
                   help='a folder of images to average over (e.g. data/imagenet/val)')
    p.add_argument('--out', default='work_dirs/erf.png')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='overrides for both configs, e.g. model.backbone.drop_path_rate=0')
    p.add_argument('--baseline-cfg-options', nargs='+', action=DictAction, default=None,
                   help='overrides for the baseline config only (applied after --cfg-options)')
    a = p.parse_args(argv)
    import numpy as np

    from parc_mm.analysis.complexity import erf_areas, erf_map
    imgs = load_images(a.data_root, a.size, a.num_images, a.images)
    runs = [(osp.basename(a.config), a.config, a.checkpoint, a.cfg_options)]
    if a.baseline:
        runs.append((osp.basename(a.baseline), a.baseline, a.baseline_checkpoint,
                     {**(a.cfg_options or {}), **(a.baseline_cfg_options or {})}))
    results = []
    print('| model | part | stage | 20% area | 50% area | 99% area |\n|---|---|---|---|---|---|')
    for name, cfg, ck, opts in runs:
        m = erf_map(backbone_of(cfg, ck, a.part, opts), imgs, a.stage)
        areas = erf_areas(m)
        results.append((name, m, areas))
        print(f'| {name} | {a.part} | {a.stage} | {areas[0.2]:.4f} | {areas[0.5]:.4f} | '
              f'{areas[0.99]:.4f} |')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 4.2))
    axes = np.atleast_1d(axes)
    for ax, (name, m, areas) in zip(axes, results):
        v = np.log10(m / m.max() + 1e-6)
        im = ax.imshow(v, cmap='RdYlGn', vmin=-4, vmax=0)
        ax.set_title(f'{name[:40]}\n50%: {areas[0.5]:.3f}  99%: {areas[0.99]:.3f}', fontsize=8)
        ax.axis('off')
    fig.colorbar(im, ax=list(axes), fraction=0.03, label='log10 contribution (max = 0)')
    import os
    os.makedirs(osp.dirname(osp.abspath(a.out)), exist_ok=True)
    fig.savefig(a.out, dpi=100)
    plt.close(fig)
    print(f'wrote {a.out}')
    return results


if __name__ == '__main__':
    main()

"""The parc_mm demo: train ParC models on the built-in synthetic data for all three tasks.

    python tools/demo.py [--work-dir work_dirs/demo] [--data-root data/shapes] [--quick]

1. checks the stack (mmcv ops, imports, checkpoint round trip);
2. generates the synthetic shapes data if missing (COCO json, ADE20K pngs, class folders);
3. trains a small ParC-ConvNeXt (ParC in every block) with tools/train.py:
   classification (mmpretrain), then UperNet segmentation (mmseg) and Mask R-CNN (mmdet),
   both initialised from the classification backbone (ImageNet-style pretraining);
4. evaluates each with tools/test.py and the library's own metric (top-1, mIoU, COCO mAP);
5. prints a summary table against chance level and writes loss curves and predictions
   drawn on validation images to the work dir;
6. runs tools/infer.py with each trained checkpoint on validation images (drawn images and
   predictions.json under <work dir>/infer_<task>/).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

DEMOS = [
    # task, config, chance level, what chance means
    ('cls', 'configs/demo/shapes_cls_parc-convnext.py', 100 / 6, 'uniform guess over 6 classes'),
    ('seg', 'configs/demo/shapes_seg_parc-convnext_upernet.py', None,
     'all-background prediction'),
    ('det', 'configs/demo/shapes_det_parc-convnext_mask-rcnn.py', 0.0, 'random boxes'),
]


def run(cmd, log):
    print('$ ' + ' '.join(cmd), flush=True)
    t = time.time()
    with open(log, 'w') as f:
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT,
                           env={**os.environ, 'PYTHONPATH': ROOT})
    if p.returncode:
        with open(log) as f:
            tail = f.read()[-4000:]
        raise SystemExit(f'FAILED ({p.returncode}): {" ".join(cmd)}\n--- log tail ({log}) ---\n'
                         f'{tail}')
    return time.time() - t


def scalars(work_dir):
    """Training losses logged by mmengine (vis_data/scalars.json)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    its, losses = [], []
    if not files:
        return its, losses
    with open(files[-1]) as f:
        for line in f:
            d = json.loads(line)
            if 'loss' in d and 'iter' in d:
                its.append(d['iter'])
                losses.append(d['loss'])
    return its, losses


def seg_chance(data_root):
    """mIoU of predicting 'background' everywhere on the val split (the trivial baseline)."""
    import numpy as np
    from PIL import Image
    n_cls = 7
    inter = np.zeros(n_cls)
    union = np.zeros(n_cls)
    for p in glob.glob(osp.join(data_root, 'ade', 'annotations', 'validation', '*.png')):
        gt = np.array(Image.open(p)).astype(np.int64) - 1  # reduce_zero_label
        valid = gt >= 0
        for c in range(n_cls):
            g = (gt == c) & valid
            pr = valid if c == 0 else np.zeros_like(valid)
            inter[c] += (g & pr).sum()
            union[c] += (g | pr).sum()
    present = union > 0
    return 100 * float((inter[present] / union[present]).mean())


def plot_losses(results, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.5))
    for ax, (name, r) in zip(axes, results.items()):
        ax.plot(r['iters'], r['losses'])
        ax.set_title(f'{name}: training loss')
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--data-root', default='data/shapes')
    p.add_argument('--quick', action='store_true',
                   help='a few iterations per task on a small dataset (a smoke test)')
    p.add_argument('--skip-check', action='store_true', help='skip the stack check')
    p.add_argument('--force', action='store_true',
                   help='replace a work dir parc_mm did not write (its content is moved to a '
                        'sibling folder, not deleted)')
    a = p.parse_args(argv)
    from parc_mm.utils.fileio import ArtefactError, artefact_folder, check_target, expand
    final = expand(a.work_dir)
    try:
        check_target(final, a.force)
    except ArtefactError as e:
        raise SystemExit(f'error: {e}')
    # the run is staged beside the work dir and replaces it whole at the end: a stopped demo
    # leaves the previous one (or nothing), never a mix of two runs
    with artefact_folder(final, 'demo', a.force, relocate=True) as wd:
        results = _run_demo(a, wd)
    for r in results.values():
        r['ckpt'] = r['ckpt'].replace(wd, final)
    print(f'\nplots: {final}/loss_curves.png, {final}/predictions_{{cls,seg,det}}.png; '
          f'inference (tools/infer.py): {final}/infer_{{cls,seg,det}}/{{vis,predictions.json}}; '
          f'summary: {final}/summary.md')
    return results


def _run_demo(a, wd: str) -> dict:
    t0 = time.time()
    py = sys.executable

    if not a.skip_check:
        run([py, '-m', 'parc_mm.utils.collect_env'], osp.join(wd, 'collect_env.log'))
        print('stack check passed', flush=True)
    from parc_mm.datasets import synthetic
    small = dict(num_train=8, num_val=4, cls_per_class=(6, 2)) if a.quick else {}
    synthetic.ensure(osp.abspath(a.data_root), **small)

    results = {}
    cls_ckpt = None
    from parc_mm.apis.tasks import TASKS
    for name, cfg, chance, chance_what in DEMOS:
        task = TASKS[name]
        key = task.metric
        twd = osp.join(wd, name)
        opts = [f'{d}.dataset.data_root={osp.abspath(a.data_root)}/{task.data}'
                for d in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
        if name == 'det':
            opts.append(f'val_evaluator.ann_file={osp.abspath(a.data_root)}'
                        '/coco/annotations/instances_val.json')
            opts.append(f'test_evaluator.ann_file={osp.abspath(a.data_root)}'
                        '/coco/annotations/instances_val.json')
        if a.quick:
            n = 3
            opts += [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
                     f'default_hooks.checkpoint.interval={n}', 'default_hooks.logger.interval=1',
                     'param_scheduler=[]']
            if name == 'det':  # 3 iterations: let the untrained detector's boxes be scored
                opts.append('model.test_cfg.rcnn.score_thr=0.0')
        if cls_ckpt and name != 'cls':
            opts += ['model.backbone.init_cfg.type=Pretrained',
                     f'model.backbone.init_cfg.checkpoint={cls_ckpt}',
                     'model.backbone.init_cfg.prefix=backbone.']
        secs = run([py, 'tools/train.py', cfg, '--work-dir', twd, '--cfg-options'] + opts,
                   osp.join(wd, f'{name}_train.log'))
        ckpt = sorted(glob.glob(osp.join(twd, 'iter_*.pth')),
                      key=lambda s: int(s.rsplit('_', 1)[1][:-4]))[-1]
        if name == 'cls':
            cls_ckpt = ckpt
        mfile = osp.join(twd, 'test_metrics.json')
        run([py, 'tools/test.py', cfg, ckpt, '--work-dir', twd, '--out', mfile,
             '--cfg-options'] + opts, osp.join(wd, f'{name}_test.log'))
        with open(mfile) as f:
            metrics = json.load(f)
        if key not in metrics:  # e.g. a detector with no box above its score threshold
            print(f'{name}: no {key} in the metrics ({sorted(metrics)}): counted as 0',
                  flush=True)
        value = float(metrics.get(key, 0.0)) * task.metric_scale
        if name == 'seg':
            chance = seg_chance(osp.abspath(a.data_root))
        its, losses = scalars(twd)
        results[name] = dict(config=cfg, metric=key, value=value, chance=chance,
                             chance_what=chance_what, train_s=secs, ckpt=ckpt,
                             iters=its, losses=losses, metrics=metrics)
        print(f'{name}: {key} = {value:.2f} (chance {chance:.2f}), trained in {secs:.0f} s',
              flush=True)

    plot_losses(results, osp.join(wd, 'loss_curves.png'))
    from parc_mm.analysis.visualize import draw_predictions
    for name, r in results.items():
        draw_predictions(name, r['config'], r['ckpt'], osp.abspath(a.data_root),
                         osp.join(wd, f'predictions_{name}.png'))

    # the trained checkpoints as users run them: tools/infer.py on validation images
    from parc_mm.analysis.visualize import _val_images
    for name, r in results.items():
        imgs = _val_images(name, osp.abspath(a.data_root), 6)
        run([py, 'tools/infer.py', r['config'], r['ckpt'], *imgs, '--out-dir',
             osp.join(wd, f'infer_{name}')], osp.join(wd, f'{name}_infer.log'))

    lines = ['| task | library | model | metric | value | chance | first loss | last loss |'
             ' train time |', '|---|---|---|---|---|---|---|---|---|']
    model = {'cls': 'ParC-ConvNeXt (ParC in every block)',
             'seg': 'UperNet + ParC-ConvNeXt', 'det': 'Mask R-CNN + ParC-ConvNeXt'}
    for name, r in results.items():
        unit = '' if name == 'cls' else ''
        fl = f'{r["losses"][0]:.3f}' if r['losses'] else '-'
        ll = f'{r["losses"][-1]:.3f}' if r['losses'] else '-'
        lines.append(f'| {name} | {TASKS[name].scope} | {model[name]} | {r["metric"]} | '
                     f'{r["value"]:.2f}{unit} | {r["chance"]:.2f} ({r["chance_what"]}) | '
                     f'{fl} | {ll} | {r["train_s"]:.0f} s |')
    table = '\n'.join(lines)
    with open(osp.join(wd, 'summary.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(wd, 'summary.json'), 'w') as f:
        json.dump({k: {kk: vv for kk, vv in v.items() if kk not in ('iters', 'losses')}
                   for k, v in results.items()}, f, indent=1)
    print('\n' + table)
    print(f'total {time.time() - t0:.0f} s')
    return results


if __name__ == '__main__':
    main()

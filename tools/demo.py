"""The parc_mm demo: train ParC models on the built-in data for all three tasks.

    python tools/demo.py [--work-dir work_dirs/demo] [--tasks cls seg det] [--threads N]
        [--data auto|fashion-mnist|shapes] [--data-root DIR] [--quick]

1. checks the stack (mmcv ops, imports, checkpoint round trip);
2. builds the data if missing: real Fashion-MNIST garments (the system package
   ``dataset-fashion-mnist``; ``parc_mm.datasets.fashion``) where installed, otherwise the
   synthetic shapes (``parc_mm.datasets.synthetic``), said once at the start;
3. trains with tools/train.py and evaluates with tools/test.py (the libraries' own metrics):
   cls: on the garments, the pointer task (the class of the garment a distant arrow points
   at: global context), a small ParC-ConvNeXt with ParC in every block *and* its ConvNeXt
   baseline of the same size and recipe; on the shapes, the ParC model on 6 shape classes;
   seg: UperNet, det: Mask R-CNN, both on ParC-ConvNeXt initialised from the cls backbone;
4. prints a summary against chance level, writes loss curves, drawn predictions and
   ``summary.json`` (each task's metric, value and the data it used);
5. runs tools/infer.py with each trained checkpoint on validation images.

``--threads N`` sets the training processes' intra-op threads (OMP_NUM_THREADS).
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

# data -> task -> (config, chance level, what chance means, baseline config or None)
DEMOS = {
    'fashion-mnist': {
        # a model that reads both garments but not the arrow is right half of the time: the
        # 'local' ceiling is half its garment accuracy, well above 10 %
        'cls': ('configs/fashion/pointer_parc-convnext.py', 10.0, 'uniform guess over 10',
                'configs/fashion/pointer_convnext.py'),
        'seg': ('configs/fashion/scenes_seg_parc-convnext_upernet.py', None,
                'all-background prediction', None),
        'det': ('configs/fashion/scenes_det_parc-convnext_mask-rcnn.py', 0.0, 'random boxes',
                None),
    },
    'shapes': {
        'cls': ('configs/demo/shapes_cls_parc-convnext.py', 100 / 6,
                'uniform guess over 6 classes', None),
        'seg': ('configs/demo/shapes_seg_parc-convnext_upernet.py', None,
                'all-background prediction', None),
        'det': ('configs/demo/shapes_det_parc-convnext_mask-rcnn.py', 0.0, 'random boxes',
                None),
    },
}
DATA_ROOT = {'fashion-mnist': 'data/fashion', 'shapes': 'data/shapes'}
TASK_ORDER = ('cls', 'seg', 'det')
THREADS = None  # --threads: set for the child processes


def run(cmd, log):
    print('$ ' + ' '.join(cmd), flush=True)
    t = time.time()
    with open(log, 'w') as f:
        env = {**os.environ, 'PYTHONPATH': ROOT}
        if THREADS:
            env.update(OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS))
        p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
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


def seg_chance(data_root, n_cls):
    """mIoU of predicting 'background' everywhere on the val split (the trivial baseline)."""
    import numpy as np
    from PIL import Image
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
    import numpy as np
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.5))
    for ax, (name, r) in zip(np.atleast_1d(axes), results.items()):
        ax.plot(r['iters'], r['losses'], label='ParC')
        if r.get('baseline'):
            ax.plot(r['baseline']['iters'], r['baseline']['losses'], label='baseline')
            ax.legend()
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
    p.add_argument('--tasks', nargs='+', default=list(TASK_ORDER), choices=TASK_ORDER,
                   help='which tasks to run (seg / det start from the cls backbone when cls '
                        'runs too)')
    p.add_argument('--threads', type=int, default=None,
                   help="torch's intra-op threads in the training / test processes "
                        '(default: torch\'s own choice, all cores)')
    p.add_argument('--data', default='auto', choices=['auto', *DEMOS],
                   help='auto: the real garments where the system package is installed, '
                        'else the synthetic shapes')
    p.add_argument('--data-root', default=None,
                   help='where the data is built (default data/fashion or data/shapes)')
    p.add_argument('--quick', action='store_true',
                   help='a few iterations per task on a small dataset (a smoke test)')
    p.add_argument('--skip-check', action='store_true', help='skip the stack check')
    p.add_argument('--force', action='store_true',
                   help='replace a work dir parc_mm did not write (its content is moved to a '
                        'sibling folder, not deleted)')
    a = p.parse_args(argv)
    if a.threads is not None and a.threads < 1:
        p.error('--threads must be at least 1')
    global THREADS
    THREADS = a.threads
    from parc_mm.datasets import fashion
    if a.data == 'auto':
        a.data = 'fashion-mnist' if fashion.available() else 'shapes'
        if a.data == 'shapes':
            print('note: the real Fashion-MNIST garments are not installed, so this demo runs '
                  'on the synthetic shapes; to use real images, ' + fashion.INSTALL_HINT,
                  flush=True)
    elif a.data == 'fashion-mnist' and not fashion.available():
        raise SystemExit(f'error: --data fashion-mnist: Fashion-MNIST is not installed under '
                         f'{fashion.source_dir()}: {fashion.INSTALL_HINT}.')
    a.data_root = a.data_root or DATA_ROOT[a.data]
    a.tasks = [t for t in TASK_ORDER if t in a.tasks]
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
        if r.get('baseline'):
            r['baseline']['ckpt'] = r['baseline']['ckpt'].replace(wd, final)
    print(f'\nplots: {final}/loss_curves.png, {final}/predictions_<task>.png; '
          f'inference (tools/infer.py): {final}/infer_<task>/{{vis,predictions.json}}; '
          f'summary: {final}/summary.md, {final}/summary.json')
    return results


def _train_and_test(a, wd, py, name, cfg, tag, opts):
    """tools/train.py then tools/test.py on one config; (metrics, checkpoint, seconds)."""
    twd = osp.join(wd, tag)
    secs = run([py, 'tools/train.py', cfg, '--work-dir', twd, '--cfg-options'] + opts,
               osp.join(wd, f'{tag}_train.log'))
    ckpt = sorted(glob.glob(osp.join(twd, 'iter_*.pth')),
                  key=lambda s: int(s.rsplit('_', 1)[1][:-4]))[-1]
    mfile = osp.join(twd, 'test_metrics.json')
    run([py, 'tools/test.py', cfg, ckpt, '--work-dir', twd, '--out', mfile,
         '--cfg-options'] + opts, osp.join(wd, f'{tag}_test.log'))
    with open(mfile) as f:
        metrics = json.load(f)
    return metrics, ckpt, secs, twd


def _run_demo(a, wd: str) -> dict:
    t0 = time.time()
    py = sys.executable
    data_root = osp.abspath(a.data_root)

    if not a.skip_check:
        run([py, '-m', 'parc_mm.utils.collect_env'], osp.join(wd, 'collect_env.log'))
        print('stack check passed', flush=True)
    from parc_mm.datasets import fashion, synthetic
    if a.data == 'fashion-mnist':
        builder = fashion
        fashion.ensure(data_root, **(dict(pointer=(64, 32), scenes=(8, 4)) if a.quick else {}))
    else:
        builder = synthetic
        small = dict(num_train=8, num_val=4, cls_per_class=(6, 2)) if a.quick else {}
        synthetic.ensure(data_root, **small)
    print(f'data: {a.data} ({data_root}); threads: {a.threads or "torch default"}',
          flush=True)

    results = {}
    cls_ckpt = None
    from parc_mm.apis.tasks import TASKS
    for name in a.tasks:
        cfg, chance, chance_what, baseline_cfg = DEMOS[a.data][name]
        task = TASKS[name]
        key = task.metric
        opts = [f'{d}.dataset.data_root={data_root}/{task.data}'
                for d in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
        if name == 'det':
            opts += [f'{e}.ann_file={data_root}/coco/annotations/instances_val.json'
                     for e in ('val_evaluator', 'test_evaluator')]
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
        metrics, ckpt, secs, twd = _train_and_test(a, wd, py, name, cfg, name, opts)
        if name == 'cls':
            cls_ckpt = ckpt
        if key not in metrics:  # e.g. a detector with no box above its score threshold
            print(f'{name}: no {key} in the metrics ({sorted(metrics)}): counted as 0',
                  flush=True)
        value = float(metrics.get(key, 0.0)) * task.metric_scale
        if name == 'seg':
            chance = seg_chance(data_root, len(builder.metainfo('seg')['classes']))
        its, losses = scalars(twd)
        results[name] = dict(config=cfg, metric=key, value=value, data=a.data, chance=chance,
                             chance_what=chance_what, train_s=secs, ckpt=ckpt,
                             iters=its, losses=losses, metrics=metrics)
        print(f'{name}: {key} = {value:.2f} (chance {chance:.2f}), trained in {secs:.0f} s',
              flush=True)
        if baseline_cfg:
            bm, bckpt, bsecs, btwd = _train_and_test(a, wd, py, name, baseline_cfg,
                                                     f'{name}_baseline', opts)
            bvalue = float(bm.get(key, 0.0)) * task.metric_scale
            bits, blosses = scalars(btwd)
            results[name]['baseline'] = dict(config=baseline_cfg, value=bvalue, train_s=bsecs,
                                             ckpt=bckpt, iters=bits, losses=blosses, metrics=bm)
            print(f'{name} baseline: {key} = {bvalue:.2f}, trained in {bsecs:.0f} s',
                  flush=True)

    plot_losses(results, osp.join(wd, 'loss_curves.png'))
    from parc_mm.analysis.visualize import _val_images, draw_predictions
    for name, r in results.items():
        draw_predictions(name, r['config'], r['ckpt'], data_root,
                         osp.join(wd, f'predictions_{name}.png'), meta=builder.metainfo(name))

    # the trained checkpoints as users run them: tools/infer.py on validation images
    for name, r in results.items():
        imgs = _val_images(name, data_root, 6)
        run([py, 'tools/infer.py', r['config'], r['ckpt'], *imgs, '--out-dir',
             osp.join(wd, f'infer_{name}')], osp.join(wd, f'{name}_infer.log'))

    model = {'cls': 'ParC-ConvNeXt (ParC in every block)',
             'seg': 'UperNet + ParC-ConvNeXt', 'det': 'Mask R-CNN + ParC-ConvNeXt'}
    lines = ['| task | library | data | model | metric | value | chance | first loss | '
             'last loss | train time |', '|---|---|---|---|---|---|---|---|---|---|']

    def row(name, r, label, chance):
        fl = f'{r["losses"][0]:.3f}' if r['losses'] else '-'
        ll = f'{r["losses"][-1]:.3f}' if r['losses'] else '-'
        what = 'pointer task' if a.data == 'fashion-mnist' and name == 'cls' else ''
        return (f'| {name} | {TASKS[name].scope} | {a.data}{" " + what if what else ""} | '
                f'{label} | {results[name]["metric"]} | {r["value"]:.2f} | {chance} | {fl} | '
                f'{ll} | {r["train_s"]:.0f} s |')

    for name, r in results.items():
        lines.append(row(name, r, model[name],
                         f'{r["chance"]:.2f} ({r["chance_what"]})'))
        if r.get('baseline'):
            lines.append(row(name, r['baseline'], 'ConvNeXt baseline (7x7 kernels, same size '
                             'and recipe)', '-'))
    table = '\n'.join(lines)
    with open(osp.join(wd, 'summary.md'), 'w') as f:
        f.write(table + '\n')
    drop = ('iters', 'losses')
    summary = {}
    for k, v in results.items():
        summary[k] = {kk: vv for kk, vv in v.items() if kk not in drop + ('baseline', )}
        if v.get('baseline'):
            summary[k]['baseline'] = {kk: vv for kk, vv in v['baseline'].items()
                                      if kk not in drop}
    summary['_run'] = dict(data=a.data, data_root=data_root, threads=a.threads,
                           tasks=a.tasks, seconds=time.time() - t0)
    with open(osp.join(wd, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print('\n' + table)
    print(f'total {time.time() - t0:.0f} s')
    return results


if __name__ == '__main__':
    main()

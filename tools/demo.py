"""The parc_mm demo: train ParC models on the built-in data for all three tasks.

    python tools/demo.py [--work-dir work_dirs/demo] [--tasks cls seg det] [--threads N]
        [--data auto|fashion-mnist|shapes] [--data-root DIR] [--quick]

1. checks the stack (mmcv ops, imports, checkpoint round trip);
2. builds the data if missing: real Fashion-MNIST garments (the system package
   ``dataset-fashion-mnist``; ``parc_mm.datasets.fashion``) where installed, otherwise the
   synthetic shapes (``parc_mm.datasets.synthetic``), said once at the start;
3. trains with tools/train.py and evaluates with tools/test.py (the libraries' own metrics):
   cls: on the garments, a small ParC-ConvNeXt (ParC in every block) on plain Fashion-MNIST,
   then the pointer task (the class of the garment a distant arrow points at: global
   context) with that ParC model *and* its ConvNeXt baseline of the same size and recipe;
   on the shapes, the ParC model on 6 shape classes;
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

# data -> task -> (config, data folder, chance level, what chance means, pair); pair: ParC
# and its baseline on a global-context task, shown side by side (their data folder, configs)
POINTER = ('cls', 'configs/fashion/pointer_parc-convnext.py', 'configs/fashion/pointer_convnext.py')
DEMOS = {
    'fashion-mnist': {
        # the headline top-1 is plain Fashion-MNIST: its seeds agree within 0.3 points, so the
        # number does not depend on rounding; the pointer task's seeds spread over ~5 points
        'cls': ('configs/fashion/mnist_parc-convnext.py', 'mnist', 10.0,
                'uniform guess over 10', POINTER),
        'seg': ('configs/fashion/scenes_seg_parc-convnext_upernet.py', 'ade', None,
                'all-background prediction', None),
        'det': ('configs/fashion/scenes_det_parc-convnext_mask-rcnn.py', 'coco', 0.0,
                'random boxes', None),
    },
    'shapes': {
        'cls': ('configs/demo/shapes_cls_parc-convnext.py', 'cls', 100 / 6,
                'uniform guess over 6 classes', None),
        'seg': ('configs/demo/shapes_seg_parc-convnext_upernet.py', 'ade', None,
                'all-background prediction', None),
        'det': ('configs/demo/shapes_det_parc-convnext_mask-rcnn.py', 'coco', 0.0,
                'random boxes', None),
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
        for side, rr in (r.get('pointer') or {}).items():
            ax.plot(rr['iters'], rr['losses'], label=f'pointer task, {side}')
        if r.get('pointer'):
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
        for rr in (r.get('pointer') or {}).values():
            rr['ckpt'] = rr['ckpt'].replace(wd, final)
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
        run([py, '-m', 'parc_mm.apis.collect_env'], osp.join(wd, 'collect_env.log'))
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
    cls_ckpt = None  # the backbone seg / det start from
    from parc_mm.apis.tasks import TASKS

    def options(name, folder):
        opts = [f'{d}.dataset.data_root={data_root}/{folder}'
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
            if folder == 'mnist':  # 70,000 garments: a few for a smoke run
                opts += ['train_dataloader.dataset.indices=96',
                         'val_dataloader.dataset.indices=48', 'test_dataloader.dataset.indices=48']
        if cls_ckpt and name != 'cls':
            opts += ['model.backbone.init_cfg.type=Pretrained',
                     f'model.backbone.init_cfg.checkpoint={cls_ckpt}',
                     'model.backbone.init_cfg.prefix=backbone.']
        return opts

    def one(name, cfg, folder, tag):
        key, scale = TASKS[name].metric, TASKS[name].metric_scale
        metrics, ckpt, secs, twd = _train_and_test(a, wd, py, name, cfg, tag,
                                                    options(name, folder))
        if key not in metrics:  # e.g. a detector with no box above its score threshold
            print(f'{tag}: no {key} in the metrics ({sorted(metrics)}): counted as 0',
                  flush=True)
        its, losses = scalars(twd)
        return dict(config=cfg, value=float(metrics.get(key, 0.0)) * scale, train_s=secs,
                    ckpt=ckpt, iters=its, losses=losses, metrics=metrics)

    for name in a.tasks:
        cfg, folder, chance, chance_what, pair = DEMOS[a.data][name]
        r = one(name, cfg, folder, name)
        if name == 'seg':
            chance = seg_chance(data_root, len(builder.metainfo('seg')['classes']))
        r.update(metric=TASKS[name].metric, data=a.data, chance=chance, chance_what=chance_what)
        print(f'{name}: {r["metric"]} = {r["value"]:.2f} (chance {chance:.2f}), trained in '
              f'{r["train_s"]:.0f} s', flush=True)
        if pair:
            pfolder, parc_cfg, base_cfg = pair
            r['pointer'] = {side: one(name, pcfg, pfolder, f'{name}_pointer_{side}')
                            for side, pcfg in (('parc', parc_cfg), ('baseline', base_cfg))}
            print(f'{name}, pointer task: ParC {r["pointer"]["parc"]["value"]:.2f}, baseline '
                  f'{r["pointer"]["baseline"]["value"]:.2f}', flush=True)
        results[name] = r
        if name == 'cls':  # the 3-channel ParC backbone (the pointer one where there is one)
            cls_ckpt = r['pointer']['parc']['ckpt'] if pair else r['ckpt']

    def shown(name, r):
        """The model drawn and run by tools/infer.py: one that reads image files."""
        return r['pointer']['parc'] if r.get('pointer') else r

    plot_losses(results, osp.join(wd, 'loss_curves.png'))
    from parc_mm.analysis.visualize import _val_images, draw_predictions
    for name, r in results.items():
        m = shown(name, r)
        draw_predictions(name, m['config'], m['ckpt'], data_root,
                         osp.join(wd, f'predictions_{name}.png'), meta=builder.metainfo(name))

    # the trained checkpoints as users run them: tools/infer.py on validation images
    for name, r in results.items():
        imgs = _val_images(name, data_root, 6)
        m = shown(name, r)
        run([py, 'tools/infer.py', m['config'], m['ckpt'], *imgs, '--out-dir',
             osp.join(wd, f'infer_{name}')], osp.join(wd, f'{name}_infer.log'))

    model = {'cls': 'ParC-ConvNeXt (ParC in every block)',
             'seg': 'UperNet + ParC-ConvNeXt', 'det': 'Mask R-CNN + ParC-ConvNeXt'}
    lines = ['| task | library | data | model | metric | value | chance | first loss | '
             'last loss | train time |', '|---|---|---|---|---|---|---|---|---|---|']

    def row(name, r, what, label, chance):
        fl = f'{r["losses"][0]:.3f}' if r['losses'] else '-'
        ll = f'{r["losses"][-1]:.3f}' if r['losses'] else '-'
        return (f'| {name} | {TASKS[name].scope} | {what} | {label} | {results[name]["metric"]} '
                f'| {r["value"]:.2f} | {chance} | {fl} | {ll} | {r["train_s"]:.0f} s |')

    for name, r in results.items():
        what = {'cls': 'Fashion-MNIST (10 classes)'}.get(name, 'garment scenes') \
            if a.data == 'fashion-mnist' else 'shapes'
        lines.append(row(name, r, what, model[name], f'{r["chance"]:.2f} ({r["chance_what"]})'))
        if r.get('pointer'):
            for side, label in (('parc', model['cls']),
                                ('baseline', 'ConvNeXt baseline (7x7 kernels, same size and '
                                 'recipe)')):
                lines.append(row(name, r['pointer'][side], 'pointer task (global context)',
                                 label, '10.00 (uniform guess over 10)'))
    table = '\n'.join(lines)
    with open(osp.join(wd, 'summary.md'), 'w') as f:
        f.write(table + '\n')
    drop = ('iters', 'losses')
    summary = {}
    for k, v in results.items():
        summary[k] = {kk: vv for kk, vv in v.items() if kk not in drop + ('pointer', )}
        if v.get('pointer'):
            summary[k]['pointer'] = {side: {kk: vv for kk, vv in rr.items() if kk not in drop}
                                     for side, rr in v['pointer'].items()}
    summary['_run'] = dict(data=a.data, data_root=data_root, threads=a.threads,
                           tasks=a.tasks, seconds=time.time() - t0)
    with open(osp.join(wd, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print('\n' + table)
    print(f'total {time.time() - t0:.0f} s')
    return results


if __name__ == '__main__':
    main()

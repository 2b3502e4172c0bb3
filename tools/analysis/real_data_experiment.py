"""ParC against its baseline on real images (Fashion-MNIST garments), several seeds, with
95 % intervals and the effective receptive field of the trained backbones.

    python tools/analysis/real_data_experiment.py [--work-dir work_dirs/real_data]
        [--seeds 0 1 2] [--dense-seeds 0 1] [--parts pointer control seg det] [--jobs 2]

Parts (configs/fashion/, one recipe per task for every variant, fixed before any run):

* ``pointer``: the global-context task (the class of the garment an arrow points at, two
  garments at the ends of a 48x96 scene): ParC-ConvNeXt with ParC in every block, with the
  paper's placement, and the ConvNeXt baseline of the same size;
* ``control``: plain 10-class Fashion-MNIST (the label is local; no gain expected);
* ``seg`` / ``det``: UperNet / Mask R-CNN on 128x128 garment scenes, each backbone
  starting from its own pointer-task checkpoint of the same seed.

Every run is ``tools/train.py`` + ``tools/test.py`` (the users' commands), one thread each,
``--jobs`` at a time; a run's folder is written whole (a killed experiment keeps the finished
runs, and a second call reuses them). The report (``report.json``, ``report.md``,
``erf_pointer.png``) is written whole into ``<work dir>/report``. ``--tiny``: a few
iterations on a small build of the data (the tool's own test).
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import glob
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = 'configs/fashion'
# part -> variant -> config; the baseline is always the last variant
PARTS = {
    'pointer': {'ParC (all blocks)': f'{CFG}/pointer_parc-convnext.py',
                'ParC (paper placement)': f'{CFG}/pointer_parc-convnext_paper.py',
                'ConvNeXt baseline': f'{CFG}/pointer_convnext.py'},
    'control': {'ParC (all blocks)': f'{CFG}/mnist_parc-convnext.py',
                'ConvNeXt baseline': f'{CFG}/mnist_convnext.py'},
    'seg': {'ParC (all blocks)': f'{CFG}/scenes_seg_parc-convnext_upernet.py',
            'ConvNeXt baseline': f'{CFG}/scenes_seg_convnext_upernet.py'},
    'det': {'ParC (all blocks)': f'{CFG}/scenes_det_parc-convnext_mask-rcnn.py',
            'ConvNeXt baseline': f'{CFG}/scenes_det_convnext_mask-rcnn.py'},
}
METRICS = {'pointer': [('accuracy/top1', 1.0, 'top-1')],
           'control': [('accuracy/top1', 1.0, 'top-1')],
           'seg': [('mIoU', 1.0, 'mIoU')],
           'det': [('coco/bbox_mAP', 100.0, 'bbox mAP'), ('coco/segm_mAP', 100.0, 'mask mAP')]}
DATA = {'pointer': 'cls', 'control': 'mnist', 'seg': 'ade', 'det': 'coco'}
TINY = dict(pointer=(40, 20), scenes=(6, 3))


def slug(text: str) -> str:
    return ''.join(c if c.isalnum() else '_' for c in text.lower()).strip('_')


def t_quantile(n: int) -> float:
    """Two-sided 95 % Student-t quantile for ``n`` samples (n - 1 degrees of freedom)."""
    try:
        from scipy.stats import t
        return float(t.ppf(0.975, n - 1))
    except ImportError:  # the table for the seed counts this tool is used with
        return {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571}.get(n, 1.96)


def summarise(values: List[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return dict(n=n, mean=mean, sd=None, ci95=None, values=values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return dict(n=n, mean=mean, sd=sd, ci95=t_quantile(n) * sd / math.sqrt(n), values=values)


def fmt(s: dict, digits: int = 2) -> str:
    if s['ci95'] is None:
        return f'{s["mean"]:.{digits}f} (n={s["n"]})'
    return f'{s["mean"]:.{digits}f} ± {s["ci95"]:.{digits}f}'


class Run:
    """One training + test run of one config with one seed."""

    def __init__(self, part: str, variant: str, seed: int, work: str, data_root: str,
                 tiny: bool, init_from: Optional['Run'] = None):
        self.part, self.variant, self.seed = part, variant, seed
        self.config = PARTS[part][variant]
        self.name = f'{part}_{slug(variant)}_seed{seed}'
        self.dir = osp.join(work, 'runs', self.name)
        self.data_root, self.tiny, self.init_from = data_root, tiny, init_from

    def options(self) -> List[str]:
        d = osp.join(self.data_root, DATA[self.part])
        opts = [f'randomness.seed={self.seed}']
        opts += [f'{dl}.dataset.data_root={d}'
                 for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
        if self.part == 'det':
            opts += [f'{e}.ann_file={d}/annotations/instances_val.json'
                     for e in ('val_evaluator', 'test_evaluator')]
        if self.init_from is not None:
            opts += ['model.backbone.init_cfg.type=Pretrained',
                     f'model.backbone.init_cfg.checkpoint={self.init_from.checkpoint()}',
                     'model.backbone.init_cfg.prefix=backbone.']
        if self.tiny:
            n = 2
            opts += [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
                     f'default_hooks.checkpoint.interval={n}', 'param_scheduler=[]']
            if self.part == 'det':
                opts.append('model.test_cfg.rcnn.score_thr=0.0')
            if self.part == 'control':  # 70,000 garments: a few for the tool's own test
                opts += ['train_dataloader.dataset.indices=64',
                         'val_dataloader.dataset.indices=32',
                         'test_dataloader.dataset.indices=32']
        return opts

    def checkpoint(self) -> str:
        ckpts = sorted(glob.glob(osp.join(self.dir, 'iter_*.pth')),
                       key=lambda s: int(s.rsplit('_', 1)[1][:-4]))
        if not ckpts:
            raise FileNotFoundError(f'{self.dir} holds no checkpoint (its run failed?)')
        return ckpts[-1]

    def result(self) -> Optional[dict]:
        try:
            with open(osp.join(self.dir, 'test_metrics.json')) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def execute(self) -> dict:
        if self.result() is not None:
            return self.result()
        from parc_mm.utils.fileio import artefact_folder
        env = {**os.environ, 'PYTHONPATH': ROOT, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
        py = sys.executable
        t0 = time.time()
        with artefact_folder(self.dir, 'real-data-experiment', relocate=True) as st:
            opts = self.options()
            for cmd, log in (
                    ([py, 'tools/train.py', self.config, '--work-dir', st, '--cfg-options']
                     + opts, 'train.log'),
                    (None, 'test.log')):
                if cmd is None:
                    ckpt = sorted(glob.glob(osp.join(st, 'iter_*.pth')),
                                  key=lambda s: int(s.rsplit('_', 1)[1][:-4]))[-1]
                    cmd = [py, 'tools/test.py', self.config, ckpt, '--work-dir', st, '--out',
                           osp.join(st, 'test_metrics.json'), '--cfg-options'] + opts
                with open(osp.join(st, log), 'w') as f:
                    p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT,
                                       env=env)
                if p.returncode:
                    with open(osp.join(st, log)) as f:
                        tail = f.read()[-3000:]
                    raise RuntimeError(f'{self.name}: {" ".join(cmd[:3])} failed '
                                       f'({p.returncode}); log tail:\n{tail}')
            with open(osp.join(st, 'run.json'), 'w') as f:
                json.dump(dict(config=self.config, seed=self.seed, seconds=time.time() - t0,
                               init_from=self.init_from.name if self.init_from else None,
                               tiny=self.tiny), f, indent=1)
        print(f'done {self.name} in {time.time() - t0:.0f} s', flush=True)
        return self.result()


def pointer_images(data_root: str, n: int):
    """The first ``n`` validation scenes of the pointer task, normalised as the configs do."""
    import numpy as np
    import torch
    from PIL import Image
    paths = sorted(glob.glob(osp.join(data_root, 'cls', 'val', '*', '*.png')))[:n]
    return [torch.from_numpy((np.asarray(Image.open(p).convert('RGB'), np.float32) - 40.0)
                             / 60.0).permute(2, 0, 1).contiguous() for p in paths]


def trained_erf(runs: List[Run], data_root: str, n_images: int, out_png: str) -> dict:
    """ERF area fractions of each trained pointer backbone at stages 1 and 3 (RepLKNet's
    measure: the smallest centred box holding 20 / 50 / 99 % of the input gradient), and a
    picture of stage 1 of the first seed of each variant."""
    import numpy as np

    from parc_mm.analysis.complexity import erf_areas, erf_map
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
    from erf import backbone_of
    imgs = pointer_images(data_root, n_images)
    out: Dict[str, dict] = {}
    maps = {}
    for r in runs:
        bb = backbone_of(r.config, r.checkpoint(), 'backbone',
                         {'model.backbone.out_indices': [0, 1, 2, 3]})
        for stage in (0, 2):
            m = erf_map(bb, imgs, stage)
            areas = erf_areas(m)
            out.setdefault(r.variant, {}).setdefault(f'stage{stage + 1}', []).append(
                {str(k): v for k, v in areas.items()})
            if stage == 0 and r.variant not in maps:
                maps[r.variant] = (m, areas)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(maps), figsize=(4.2 * len(maps), 2.6))
    axes = np.atleast_1d(axes)
    for ax, (name, (m, areas)) in zip(axes, maps.items()):
        im = ax.imshow(np.log10(m / m.max() + 1e-6), cmap='RdYlGn', vmin=-4, vmax=0)
        ax.set_title(f'{name}, stage 1\n50%: {areas[0.5]:.3f}  99%: {areas[0.99]:.3f}',
                     fontsize=8)
        ax.axis('off')
    fig.colorbar(im, ax=list(axes), fraction=0.03, label='log10 contribution')
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    summary = {}
    for variant, stages in out.items():
        summary[variant] = {st: {k: summarise([a[k] for a in lst]) for k in lst[0]}
                            for st, lst in stages.items()}
    return summary


def report(runs: Dict[str, List[Run]], erf: Optional[dict], args) -> dict:
    rep = dict(command=' '.join(['python', 'tools/analysis/real_data_experiment.py']
                                + sys.argv[1:]),
               seeds=args.seeds, dense_seeds=args.dense_seeds, tiny=args.tiny, parts={})
    for part, rs in runs.items():
        variants = list(PARTS[part])
        base = variants[-1]
        by_variant = {v: [r for r in rs if r.variant == v] for v in variants}
        entry = {}
        for key, scale, label in METRICS[part]:
            vals = {v: [float(r.result().get(key, 0.0)) * scale for r in lst]
                    for v, lst in by_variant.items() if lst}
            row = {v: summarise(x) for v, x in vals.items()}
            for v in vals:
                if v == base or base not in vals:
                    continue
                # paired by seed: the same data order and seed on both sides
                diffs = [a - b for a, b in zip(vals[v], vals[base])]
                row[v]['minus_baseline'] = summarise(diffs)
            entry[label] = row
        entry['configs'] = {v: PARTS[part][v] for v in variants}
        entry['seconds'] = {r.name: _seconds(r) for r in rs}
        rep['parts'][part] = entry
    if erf is not None:
        rep['erf_pointer'] = erf
    return rep


def _seconds(r: Run) -> Optional[float]:
    try:
        with open(osp.join(r.dir, 'run.json')) as f:
            return json.load(f)['seconds']
    except (OSError, ValueError, KeyError):
        return None


def markdown(rep: dict) -> str:
    names = dict(pointer='pointer task (global context)', control='Fashion-MNIST (control)',
                 seg='scenes, UperNet', det='scenes, Mask R-CNN')
    lines = [f'Command: `{rep["command"]}`', '',
             '| task | metric | variant | mean ± 95 % CI | minus baseline (paired) | runs |',
             '|---|---|---|---|---|---|']
    for part, entry in rep['parts'].items():
        for label, row in entry.items():
            if label in ('configs', 'seconds'):
                continue
            for v, s in row.items():
                diff = fmt(s['minus_baseline']) if 'minus_baseline' in s else '-'
                vals = ', '.join(f'{x:.2f}' for x in s['values'])
                lines.append(f'| {names[part]} | {label} | {v} | {fmt(s)} | {diff} | {vals} |')
    if 'erf_pointer' in rep:
        lines += ['', 'ERF of the trained pointer-task backbones (area fraction of the '
                  'smallest centred box holding t of the contribution; mean ± 95 % CI over '
                  'seeds):', '', '| variant | stage | 20 % | 50 % | 99 % |', '|---|---|---|---|---|']
        for v, stages in rep['erf_pointer'].items():
            for st, areas in stages.items():
                lines.append(f'| {v} | {st} | ' + ' | '.join(
                    fmt(areas[k], 3) for k in ('0.2', '0.5', '0.99')) + ' |')
    return '\n'.join(lines) + '\n'


def check_work_dir(work: str, force: bool) -> None:
    """The work dir holds this tool's ``runs``/``report`` (and the writer's staging names)
    or nothing: anything else is someone's, and is refused."""
    from parc_mm.utils.fileio import ArtefactError
    if not osp.lexists(work):
        return
    if osp.islink(work) or not osp.isdir(work):
        raise ArtefactError(f'{work} exists and is not a folder: choose another --work-dir')
    foreign = [e for e in os.listdir(work)
               if e not in ('runs', 'report') and not e.startswith('.report.parc-')]
    if foreign and not force:
        raise ArtefactError(f'{work} holds files this tool did not write ({", ".join(foreign[:3])}'
                            '): choose another --work-dir (nothing was written)')


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', default='work_dirs/real_data')
    p.add_argument('--data-root', default='data/fashion')
    p.add_argument('--parts', nargs='+', default=list(PARTS), choices=list(PARTS))
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                   help='seeds of the classification parts (pointer, control)')
    p.add_argument('--dense-seeds', type=int, nargs='+', default=[0, 1],
                   help='seeds of seg / det (each starts from the pointer run of its seed)')
    p.add_argument('--jobs', type=int, default=2, help='runs at a time (one thread each)')
    p.add_argument('--erf-images', type=int, default=16)
    p.add_argument('--tiny', action='store_true', help='2 iterations per run on a small data '
                   'build (a test of the tool, not an experiment)')
    p.add_argument('--force', action='store_true',
                   help='use a --work-dir that holds other files (they are left alone)')
    a = p.parse_args(argv)
    from parc_mm.datasets import fashion
    from parc_mm.utils.fileio import ArtefactError, artefact_folder, expand
    work = expand(a.work_dir)
    try:
        check_work_dir(work, a.force)
        if a.tiny:
            data_root = fashion.ensure(osp.join(work, 'runs', 'data'), pointer=TINY['pointer'],
                                       scenes=TINY['scenes'])
        else:
            data_root = fashion.ensure(expand(a.data_root))
    except (ArtefactError, fashion.NotOurFolderError, fashion.MissingSourceError) as e:
        raise SystemExit(f'error: {e}')
    data_root = osp.abspath(data_root)
    if set(a.parts) & {'seg', 'det'} and 'pointer' not in a.parts:
        a.parts = ['pointer'] + a.parts  # seg / det start from the pointer checkpoints
    runs: Dict[str, List[Run]] = {}
    for part in ('pointer', 'control'):
        if part in a.parts:
            runs[part] = [Run(part, v, s, work, data_root, a.tiny)
                          for s in a.seeds for v in PARTS[part]]
    ptr = {(r.variant, r.seed): r for r in runs.get('pointer', [])}
    for part in ('seg', 'det'):
        if part in a.parts:
            runs[part] = []
            for s in a.dense_seeds:
                for v in PARTS[part]:
                    src = ptr.get(('ParC (all blocks)' if v.startswith('ParC') else v, s))
                    if src is None:
                        raise SystemExit(f'error: {part} seed {s} starts from the pointer run '
                                         f'of seed {s}: add {s} to --seeds')
                    runs[part].append(Run(part, v, s, work, data_root, a.tiny, init_from=src))
    first = [r for part in ('pointer', 'control') for r in runs.get(part, [])]
    second = [r for part in ('seg', 'det') for r in runs.get(part, [])]
    t0 = time.time()
    for batch in (first, second):
        with cf.ThreadPoolExecutor(max(1, a.jobs)) as pool:
            for fut in cf.as_completed([pool.submit(r.execute) for r in batch]):
                fut.result()
    erf = None
    with artefact_folder(osp.join(work, 'report'), 'real-data-experiment') as st:
        if 'pointer' in runs:
            erf = trained_erf([r for r in runs['pointer'] if r.variant in PARTS['pointer']],
                              data_root, 2 if a.tiny else a.erf_images,
                              osp.join(st, 'erf_pointer.png'))
        rep = report(runs, erf, a)
        rep['wall_seconds'] = time.time() - t0
        with open(osp.join(st, 'report.json'), 'w') as f:
            json.dump(rep, f, indent=1)
        md = markdown(rep)
        with open(osp.join(st, 'report.md'), 'w') as f:
            f.write(md)
    print(md)
    print(f'wrote {work}/report/{{report.json,report.md,erf_pointer.png}}')
    return rep


if __name__ == '__main__':
    main()

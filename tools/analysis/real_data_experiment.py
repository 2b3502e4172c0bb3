"""ParC against its baseline on real images (Fashion-MNIST garments), several seeds, with
95 % intervals and the effective receptive field of the trained backbones.

    python tools/analysis/real_data_experiment.py [--work-dir work_dirs/real_data]
        [--seeds 0 1 2] [--dense-seeds 0 1] [--parts pointer control seg det] [--jobs 2]

Parts (configs/fashion/, one recipe per task for every variant, fixed before any run):

* ``pointer``: the global-context task (the class of the garment an arrow points at, two
  garments at the ends of a 48x96 scene): ParC-ConvNeXt with ParC in every block, with the
  paper's placement, and the ConvNeXt baseline of the same size;
* ``wide``: the same task on a 48x192 canvas (the garments as far from the arrow as the
  deep stages' maps are wider than a 7x7 kernel), ParC in every block and the baseline;
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
    'wide': {'ParC (all blocks)': f'{CFG}/pointer-wide_parc-convnext.py',
             'ConvNeXt baseline': f'{CFG}/pointer-wide_convnext.py'},
    'control': {'ParC (all blocks)': f'{CFG}/mnist_parc-convnext.py',
                'ConvNeXt baseline': f'{CFG}/mnist_convnext.py'},
    'seg': {'ParC (all blocks)': f'{CFG}/scenes_seg_parc-convnext_upernet.py',
            'ConvNeXt baseline': f'{CFG}/scenes_seg_convnext_upernet.py'},
    'det': {'ParC (all blocks)': f'{CFG}/scenes_det_parc-convnext_mask-rcnn.py',
            'ConvNeXt baseline': f'{CFG}/scenes_det_convnext_mask-rcnn.py'},
}
METRICS = {'pointer': [('accuracy/top1', 1.0, 'top-1')],
           'wide': [('accuracy/top1', 1.0, 'top-1')],
           'control': [('accuracy/top1', 1.0, 'top-1')],
           'seg': [('mIoU', 1.0, 'mIoU')],
           'det': [('coco/bbox_mAP', 100.0, 'bbox mAP'), ('coco/segm_mAP', 100.0, 'mask mAP')]}
DATA = {'pointer': 'cls', 'wide': 'cls_wide', 'control': 'mnist', 'seg': 'ade', 'det': 'coco'}
TINY = dict(pointer=(40, 20), scenes=(6, 3), wide=(20, 10))
FULL = dict(wide=(8000, 2000))  # the builder's defaults, plus the wide canvas


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


def latest_checkpoint(folder: str) -> str:
    """The last ``iter_N.pth`` a training run wrote into ``folder``."""
    ckpts = sorted(glob.glob(osp.join(folder, 'iter_*.pth')),
                   key=lambda s: int(s.rsplit('_', 1)[1][:-4]))
    if not ckpts:
        raise FileNotFoundError(f'{folder} holds no checkpoint (its run failed?)')
    return ckpts[-1]


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
        return latest_checkpoint(self.dir)

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

            def call(cmd, log):
                with open(osp.join(st, log), 'w') as f:
                    p = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT,
                                       env=env)
                if p.returncode:
                    with open(osp.join(st, log)) as f:
                        tail = f.read()[-3000:]
                    raise RuntimeError(f'{self.name}: {" ".join(cmd[:3])} failed '
                                       f'({p.returncode}); log tail:\n{tail}')

            call([py, 'tools/train.py', self.config, '--work-dir', st, '--cfg-options'] + opts,
                 'train.log')
            call([py, 'tools/test.py', self.config, latest_checkpoint(st), '--work-dir', st,
                  '--out', osp.join(st, 'test_metrics.json'), '--cfg-options'] + opts,
                 'test.log')
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


def pointer_analysis(runs: List[Run], data_root: str, limit: Optional[int] = None,
                     folder: str = 'cls') -> dict:
    """What each trained pointer model gets right, from the scenes' parts (``val_parts.json``):
    ``garments``: the prediction is one of the scene's two classes; ``selection``: of those,
    the one the arrow points at (0.5 = the arrow is ignored: the 'local' ceiling); top-1 =
    garments x selection. ``selection_no_arrow``: the same with the arrow painted over by
    background (a model that reads the arrow falls to ~0.5 there)."""
    import numpy as np
    import torch
    from mmengine.runner import load_checkpoint
    from PIL import Image

    from parc_mm.apis.tasks import build_model, load_config
    from parc_mm.datasets import fashion
    with open(osp.join(data_root, folder, 'val_parts.json')) as f:
        parts = json.load(f)
    names = sorted(parts)[:limit]
    imgs = np.stack([np.asarray(Image.open(osp.join(data_root, folder, 'val', n)).convert('RGB'))
                     for n in names]).astype(np.float32)
    masked = imgs.copy()
    rng = np.random.default_rng(0)
    for k, n in enumerate(names):
        ax, ay = parts[n]['arrow']
        a = fashion.ARROW
        masked[k, ay:ay + a, ax:ax + a] = np.clip(rng.normal(20, 8, (a, a, 1)), 0, 255).round()
    left = np.array([parts[n]['left'] for n in names])
    right = np.array([parts[n]['right'] for n in names])
    target = np.where([parts[n]['points_left'] for n in names], left, right)
    out: Dict[str, dict] = {}
    for r in runs:
        model = build_model(load_config(r.config))
        load_checkpoint(model, r.checkpoint(), map_location='cpu', logger='silent')
        model.eval()
        stats = {}
        for tag, batch in (('', imgs), ('_no_arrow', masked)):
            preds = []
            with torch.no_grad():
                for i in range(0, len(batch), 100):
                    x = (torch.from_numpy(batch[i:i + 100]).permute(0, 3, 1, 2) - 40.0) / 60.0
                    preds.append(model.head(model.extract_feat(x)).argmax(1).numpy())
            pred = np.concatenate(preds)
            either = (pred == left) | (pred == right)
            stats[f'garments{tag}'] = float(either.mean())
            stats[f'selection{tag}'] = float((pred == target)[either].mean()) if either.any() \
                else 0.0
            stats[f'top1{tag}'] = float((pred == target).mean())
        for k, v in stats.items():
            out.setdefault(r.variant, {}).setdefault(k, []).append(100 * v)
    return {v: {k: summarise(x) for k, x in d.items()} for v, d in out.items()}


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


def report(runs: Dict[str, List[Run]], erf: Optional[dict], args,
           analysis: Optional[dict] = None) -> dict:
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
    if analysis is not None:
        rep['pointer_analysis'] = analysis
    return rep


def _seconds(r: Run) -> Optional[float]:
    try:
        with open(osp.join(r.dir, 'run.json')) as f:
            return json.load(f)['seconds']
    except (OSError, ValueError, KeyError):
        return None


def markdown(rep: dict) -> str:
    names = dict(pointer='pointer task (global context)',
                 wide='pointer task, 48x192 canvas', control='Fashion-MNIST (control)',
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
    if rep.get('pointer_analysis'):
        lines += ['', 'What the pointer models get right (validation scenes; % , mean ± 95 % CI): '
                  'the prediction is one of the two garments, and of those the one the arrow '
                  'points at (50 = the arrow ignored); the same with the arrow painted over:',
                  '', '| task | variant | top-1 | one of the two garments | picks the pointed '
                  'one | picks it, arrow painted over |', '|---|---|---|---|---|---|']
        for part, by_variant in rep['pointer_analysis'].items():
            for v, st in by_variant.items():
                lines.append(f'| {names[part]} | {v} | {fmt(st["top1"])} | '
                             f'{fmt(st["garments"])} | {fmt(st["selection"])} | '
                             f'{fmt(st["selection_no_arrow"])} |')
    if 'erf_pointer' in rep:
        lines += ['', 'ERF of the trained pointer-task backbones (area fraction of the '
                  'smallest centred box holding t of the contribution; mean ± 95 % CI over '
                  'seeds):', '', '| variant | stage | 20 % | 50 % | 99 % |',
                  '|---|---|---|---|---|']
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
    p.add_argument('--wide-seeds', type=int, nargs='+', default=[0, 1],
                   help='seeds of the wide pointer part')
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
            data_root = fashion.ensure(osp.join(work, 'runs', 'data'), **TINY)
        else:
            data_root = fashion.ensure(expand(a.data_root), **FULL)
    except (ArtefactError, fashion.NotOurFolderError, fashion.MissingSourceError) as e:
        raise SystemExit(f'error: {e}')
    data_root = osp.abspath(data_root)
    if set(a.parts) & {'seg', 'det'} and 'pointer' not in a.parts:
        a.parts = ['pointer'] + a.parts  # seg / det start from the pointer checkpoints
    runs: Dict[str, List[Run]] = {}
    for part in ('pointer', 'wide', 'control'):
        if part in a.parts:
            seeds = a.wide_seeds if part == 'wide' else a.seeds
            runs[part] = [Run(part, v, s, work, data_root, a.tiny)
                          for s in seeds for v in PARTS[part]]
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
    first = [r for part in ('pointer', 'wide', 'control') for r in runs.get(part, [])]
    second = [r for part in ('seg', 'det') for r in runs.get(part, [])]
    t0 = time.time()
    for batch in (first, second):
        with cf.ThreadPoolExecutor(max(1, a.jobs)) as pool:
            for fut in cf.as_completed([pool.submit(r.execute) for r in batch]):
                fut.result()
    erf = analysis = None
    with artefact_folder(osp.join(work, 'report'), 'real-data-experiment') as st:
        if 'pointer' in runs:
            erf = trained_erf([r for r in runs['pointer'] if r.variant in PARTS['pointer']],
                              data_root, 2 if a.tiny else a.erf_images,
                              osp.join(st, 'erf_pointer.png'))
        analysis = {part: pointer_analysis(runs[part], data_root, 8 if a.tiny else None,
                                           DATA[part])
                    for part in ('pointer', 'wide') if part in runs}
        rep = report(runs, erf, a, analysis)
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

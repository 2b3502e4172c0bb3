"""Params / FLOPs of every paper row's config beside the paper's numbers, and (given work
dirs) the measured metrics beside the paper's, as markdown tables. The paper's numbers come
from the configs' metafiles (model-index.yml), the only place that holds them. Then the
ViT -> ConvNet conversions (ParC-DeiT, ParC-Swin: no paper numbers) beside their attention
baselines.

    python tools/analysis/paper_tables.py [--tasks cls det seg] [--work-dirs work_dirs]
"""
import argparse
import glob
import json
import os.path as osp


def measured_metrics(work_dirs, config):
    """Last logged value of every val metric in work_dirs/<config name>/*/vis_data."""
    name = osp.splitext(osp.basename(config))[0]
    files = sorted(glob.glob(osp.join(work_dirs, name, '*', 'vis_data', 'scalars.json')))
    found = {}
    for f in files:
        with open(f) as fh:
            for line in fh:
                d = json.loads(line)
                for k, v in d.items():
                    if k not in ('step', 'iter', 'epoch', 'lr', 'data_time', 'time'):
                        found[k] = v
    return found


def fmt(v, nd=2):
    return '-' if v is None else f'{v:.{nd}f}'


def measure(config, h, w):
    """Params / FLOPs of a config's model at 3 x h x w (ParC counted as direct conv)."""
    from parc_mm.analysis.complexity import build_from_config, complexity
    from parc_mm.ops import set_impl
    model, task, _ = build_from_config(config)
    set_impl(model, 'direct')
    return complexity(model, (3, h, w), task)


def conversion_table(task):
    """Rows of the ParC conversions of attention models (metafile ``Baseline``) of ``task``:
    params / FLOPs of each beside its baseline config's, at the task's test size."""
    from parc_mm.apis.tasks import TASKS
    from parc_mm.utils.model_index import conversion_rows
    rows = conversion_rows(task)
    if not rows:
        return []
    h, w = TASKS[task].test_size
    lines = [f'\n### {task}: attention -> ParC conversions (no paper numbers; {h}x{w})\n',
             '| config | baseline | params (M) ours / baseline | FLOPs (G) ours / baseline | '
             'FLOPs ratio |', '|---|---|---|---|---|']
    for r in rows:
        a, b = measure(r['config'], h, w), measure(r['baseline'], h, w)
        lines.append(f'| {osp.basename(r["config"])} | {osp.basename(r["baseline"])} | '
                     f'{a["params"] / 1e6:.2f} / {b["params"] / 1e6:.2f} | '
                     f'{a["flops"] / 1e9:.2f} / {b["flops"] / 1e9:.2f} | '
                     f'{a["flops"] / b["flops"]:.2f}x |')
        print(lines[-1], flush=True)
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--tasks', nargs='+', default=['cls', 'det', 'seg'])
    p.add_argument('--work-dirs', default=None, help='root of the training work dirs')
    p.add_argument('--out', default=None, help='also write the tables to this .md file')
    p.add_argument('--write-readmes', action='store_true',
                   help="regenerate the paper-row table of every family's README from its "
                        'metafile.yml, then stop')
    a = p.parse_args(argv)
    if a.write_readmes:
        from parc_mm.apis.tasks import mim_dir
        from parc_mm.utils.model_index import metafiles, update_readme
        root = mim_dir()
        for mf in metafiles(root):
            changed = update_readme(osp.dirname(mf), root)
            print(f'{osp.dirname(mf)}/README.md: {"updated" if changed else "up to date"}')
        return None
    from parc_mm.apis.tasks import TASKS
    from parc_mm.utils.model_index import paper_rows
    lines = []
    for task in a.tasks:
        lines += [f'\n### {task} (params / FLOPs of the config\'s model; FLOPs = multiply-adds, '
                  'ParC counted as direct conv, the paper convention)\n',
                  '| model | config | input | params (M) ours | params (M) paper | '
                  'FLOPs (G) ours | FLOPs (G) paper | metric | paper | measured |',
                  '|---|---|---|---|---|---|---|---|---|---|']
        for r in paper_rows(task):
            paper = ', '.join(r['metrics']) + ' | ' + \
                ' / '.join(fmt(v) for v in r['metrics'].values())
            if r['config'] is None:
                lines.append(f'| {r["model"]} | {r["why"]} | - | - | {fmt(r["params"], 1)} '
                             f'| - | {fmt(r["flops"], 1)} | {paper} | - |')
                continue
            h, w = r.get('size', TASKS[task].test_size)
            c = measure(r['config'], h, w)
            got = measured_metrics(a.work_dirs, r['config']) if a.work_dirs else {}
            meas = ' / '.join(fmt(got.get('val/' + k, got.get(k))) for k in r['metrics'])
            lines.append(
                f'| {r["model"]} | {osp.basename(r["config"])} | {h}x{w} | '
                f'{c["params"] / 1e6:.2f} | {fmt(r["params"], 1)} | {c["flops"] / 1e9:.2f} | '
                f'{fmt(r["flops"], 1)} | {paper} | {meas} |')
            print(lines[-1], flush=True)
        lines += conversion_table(task)
    text = '\n'.join(lines)
    print(text)
    if a.out:
        with open(a.out, 'w') as f:
            f.write(text + '\n')
    return text


if __name__ == '__main__':
    main()

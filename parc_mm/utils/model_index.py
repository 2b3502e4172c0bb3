"""The paper rows, read from the model index (``model-index.yml`` -> per-family
``metafile.yml``): the one source of the paper's numbers.

A metafile model that reproduces a paper row has ``Metadata: Paper Model`` (the row's label),
optionally ``Paper Parameters (M)`` / ``Paper FLOPs (G)`` / ``Test Size`` (``'HxW'``), and
``Results`` with ``Source: paper``. ``Paper Baseline Without Config`` records a paper baseline
we ship no config for, and why (one, or a list). A model without paper numbers (the ViT -> ConvNet
conversions) names the config it is compared with in ``Metadata: Baseline``.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Optional

# metafile (model-index) metric names -> the keys the libraries' evaluators log
METRIC_KEYS = {'Top 1 Accuracy': 'accuracy/top1', 'box AP': 'coco/bbox_mAP',
               'mask AP': 'coco/segm_mAP', 'mIoU': 'mIoU'}
RESULT_TASKS = {'Image Classification': 'cls', 'Object Detection': 'det',
                'Instance Segmentation': 'det', 'Semantic Segmentation': 'seg'}


def _load(path: str):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


def mim_dir() -> str:
    """``<package>/.mim``: the installed copy of ``configs/`` and ``tools/`` (a checkout
    links it to its own folders)."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim')


def metafiles(root: Optional[str] = None) -> List[str]:
    """The metafiles the model index imports (``root``: a checkout or ``parc_mm/.mim``)."""
    root = root or mim_dir()
    return [osp.join(root, p) for p in _load(osp.join(root, 'model-index.yml'))['Import']]


def paper_rows(task: Optional[str] = None, root: Optional[str] = None) -> List[Dict]:
    """One dict per paper row: ``family``, ``task``, ``model``, ``config`` (None: ``why``),
    ``params`` / ``flops`` (paper, M / G), ``metrics`` ({logged key: paper value}), ``size``
    (optional)."""
    rows = []
    for mf in metafiles(root):
        family = osp.basename(osp.dirname(mf))
        for m in _load(mf).get('Models', []):
            md = m.get('Metadata') or {}
            if 'Paper Model' not in md:
                continue
            results = [r for r in m.get('Results', []) if r.get('Source') == 'paper']
            metrics = {METRIC_KEYS[k]: v for r in results for k, v in r['Metrics'].items()}
            row = dict(family=family, task=RESULT_TASKS[results[0]['Task']],
                       model=md['Paper Model'],
                       config=m['Config'], params=md.get('Paper Parameters (M)'),
                       flops=md.get('Paper FLOPs (G)'), metrics=metrics)
            if md.get('Test Size'):  # 'HxW' (mim search wants strings in Metadata)
                row['size'] = tuple(int(v) for v in str(md['Test Size']).split('x'))
            rows.append(row)
            bases = md.get('Paper Baseline Without Config') or []
            for base in bases if isinstance(bases, list) else [bases]:
                rows.append(dict(family=family, task=row['task'], model=base['Model'],
                                 config=None,
                                 params=None, flops=None, why=base['Why'],
                                 metrics={METRIC_KEYS[k]: v
                                          for k, v in base['Metrics'].items()}))
    return [r for r in rows if task is None or r['task'] == task]


DATA_TASKS = {'ImageNet-1k': 'cls', 'COCO': 'det', 'ADE20K': 'seg'}


def conversion_rows(task: Optional[str] = None, root: Optional[str] = None) -> List[Dict]:
    """One dict per model with a ``Baseline`` (and no paper row): ``family``, ``task``,
    ``config``, ``baseline`` (config paths)."""
    rows = []
    for mf in metafiles(root):
        for m in _load(mf).get('Models', []):
            md = m.get('Metadata') or {}
            if 'Baseline' in md and 'Paper Model' not in md:
                rows.append(dict(family=osp.basename(osp.dirname(mf)),
                                 task=DATA_TASKS[md['Training Data']], config=m['Config'],
                                 baseline=md['Baseline']))
    return [r for r in rows if task is None or r['task'] == task]


BEGIN = ('<!-- paper rows: generated from metafile.yml by '
         'python tools/analysis/paper_tables.py --write-readmes; do not edit -->')
END = '<!-- end of paper rows -->'
_UNIT = {'accuracy/top1': 'top-1', 'coco/bbox_mAP': 'box AP', 'coco/segm_mAP': 'mask AP',
         'mIoU': 'mIoU'}


def readme_table(family_dir: str, root: str) -> str:
    """The generated paper-row table of one config family's README (rows of its metafile)."""
    rows = [r for r in paper_rows(root=root) if r['family'] == osp.basename(family_dir)]
    if not rows:
        return '\n'.join([BEGIN, 'No paper rows: this family is not in the paper.', END])
    lines = ['| task | model | paper | paper params / FLOPs | config |', '|---|---|---|---|---|']
    for r in rows:
        metrics = ', '.join(f'{v} {_UNIT[k]}' for k, v in r['metrics'].items())
        size = '' if r['params'] is None else f"{r['params']}M / {r['flops']}G"
        cfg = (f"[{osp.basename(r['config'])}]({osp.basename(r['config'])})" if r['config']
               else f"no config: {r['why']}")
        lines.append(f"| {r['task']} | {r['model']} | {metrics} | {size} | {cfg} |")
    return '\n'.join([BEGIN] + lines + [END])


def update_readme(family_dir: str, root: str, write: bool = True) -> bool:
    """Put the generated table into the family README (replacing the previous one, or after
    the first paragraph); returns whether the file changed."""
    path = osp.join(family_dir, 'README.md')
    with open(path) as f:
        text = f.read()
    table = readme_table(family_dir, root)
    if BEGIN in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        new = text[:a] + table + text[b:]
    else:
        head, sep, rest = text.partition('\n\n')
        second, sep2, rest2 = rest.partition('\n\n')
        new = head + sep + second + '\n\n' + table + '\n\n' + rest2
    if new != text and write:
        with open(path, 'w') as f:
            f.write(new)
    return new != text

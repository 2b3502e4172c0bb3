"""Deployment speed: ParC models against their attention / ConvNet baselines in each runtime.

Each pair is exported through the one exporter (:func:`parc_mm.deploy.onnx.export_module`:
what ``tools/deploy/export_onnx.py`` and the mmdeploy pipeline export, TorchScript exporter,
opset 17, batch 1; the ParC model as built, so ``auto`` takes its export form, or with
``impls`` another exportable form for comparison), optionally quantized to int8 by the one
recipe (:func:`parc_mm.deploy.quantize.quantize_qdq`), and timed in interleaved rounds: each
round runs every variant ``reps`` times in turn and keeps the median, so drifts of the
machine hit all alike.
The table reports the median of the per-round ratios to the fp32 baseline with a 95 %
bootstrap interval (:func:`parc_mm.analysis.benchmark.bootstrap_ci`), as the PyTorch
benchmark does. The int8 graphs are calibrated on random inputs: this measures speed, not
accuracy (``tools/deploy/deploy.py --int8 CALIB_DIR --eval`` measures that).
"""
from __future__ import annotations

import os
import os.path as osp
import re
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from parc_mm.analysis.benchmark import MODELS, bootstrap_ci

# the pairs of the deployment claim, and the sizes they are timed at by default
PAIRS: Dict[str, Tuple[str, Tuple[int, ...]]] = {
    'deit': ('ParC-DeiT-S', (224, 512)),
    'swin': ('ParC-Swin-T', (224, 512)),
    'parcnet': ('ParC-Net-S', (256, 512)),
    'convnext': ('ParC-ConvNeXt-XT (paper)', (224, )),
    # ParCNetV2 against its official direct form (the baseline is the same network)
    'parcnetv2': ('ParCNetV2-XT (vs official direct)', (224, )),
}


@dataclass
class OrtRow:
    model: str
    size: int
    variant: str  # 'baseline' | 'parc' | 'baseline-int8' | 'parc-int8'
    ms: float
    ratio: float = 1.0  # to the fp32 baseline, median of per-round ratios
    ci: Tuple[float, float] = (1.0, 1.0)
    vs_fp32: float = 1.0  # int8 rows: fp32 / int8 of the same model (the speed-up)
    vs_fp32_ci: Tuple[float, float] = (1.0, 1.0)
    nodes: int = 0
    max_abs_diff: float = 0.0  # fp32 rows: ONNX Runtime vs PyTorch on the timed input
    rounds: List[float] = field(default_factory=list)
    runtime: str = 'onnxruntime'
    note: str = ''  # e.g. the baseline exported with the rank-4 attention


class _Features(nn.Module):
    """A backbone's last output as one tensor (what is exported and timed)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x)
        return out[-1] if isinstance(out, (tuple, list)) else out


def export_pair(name: str, size: int, out_dir: str, int8: bool = False, calib: int = 4,
                impls: Sequence[Optional[str]] = (None, ),
                x: Optional[torch.Tensor] = None, route: str = 'onnx',
                reshape_unfold: bool = False,
                rank4_baseline: bool = False) -> Dict[str, dict]:
    """``{variant: {'path', 'max_abs_diff', 'report'}}`` for the pair ``name`` (a key of the
    PyTorch benchmark's MODELS) at ``size`` x ``size``, exported by the one exporter: the
    baseline, and the ParC model in each form of ``impls`` (None: as it ships, ``auto``;
    a name: that exportable impl set on every ParC layer); ``parc`` is the first,
    ``parc-<impl>`` the others. ``x``: the input traced and checked (default: random).
    ``route='torch.export'``: the folded program instead (``{'program', 'ref', 'nodes'}``,
    what ExecuTorch and LiteRT are made from; no int8). ``reshape_unfold``: patch merging as
    4-D reshapes for both, as the exporter does for such a runtime; ``rank4_baseline``: the
    baseline's attention in its rank-4 form, for a runtime whose tensors are at most 4-D
    (:mod:`parc_mm.deploy.rank4`; ``note`` says so)."""
    from parc_mm.deploy.onnx import export_module
    from parc_mm.deploy.prepare import prepare
    from parc_mm.deploy.program import export_program
    from parc_mm.deploy.quantize import quantize_random
    from parc_mm.ops import set_impl
    build_parc, build_base = MODELS[name]
    x = torch.randn(1, 3, size, size) if x is None else x
    out = {}
    builds = [('baseline', build_base, None)] + [
        ('parc' if i == 0 else f'parc-{impl or "auto"}', build_parc, impl or 'auto')
        for i, impl in enumerate(impls)]
    for variant, build, impl in builds:
        torch.manual_seed(0)
        net = build()
        if impl is not None:
            set_impl(net, impl)
        note = ''
        if reshape_unfold:
            from parc_mm.deploy.rank4 import rank4_unfold
            rank4_unfold(net)
        if rank4_baseline and variant == 'baseline':
            from parc_mm.deploy.rank4 import rank4_attention
            net.eval()  # (mmpretrain's backbones' train() returns None: no chaining)
            note = 'rank-4 attention' if rank4_attention(net) else ''
        if route == 'torch.export':
            module = prepare(_Features(net))
            with torch.no_grad():
                ref = module(x).numpy()
            program = export_program(module, (x, ))
            out[variant] = dict(program=program, ref=ref, max_abs_diff=None, report=None,
                                nodes=sum(n.op == 'call_function' for n in program.graph.nodes),
                                note=note)
            continue
        path = osp.join(out_dir, f'{variant}.onnx')
        got = export_module(_Features(net), (x, ), path, output_names=['output'])
        out[variant] = dict(path=path, max_abs_diff=got['max_abs_diff'], report=got['report'],
                            note=note)
        if int8:
            q = quantize_random(path, x.shape, calib)
            out[variant + '-int8'] = dict(path=q, max_abs_diff=None, report=None)
    return out


def time_pair(name: str, size: int, rounds: int = 10, reps: int = 3, threads: int = 2,
              int8: bool = True, warmup: int = 2,
              impls: Sequence[Optional[str]] = (None, ),
              runtime: str = 'onnxruntime') -> List[OrtRow]:
    """Export, check and time one pair at one size in ``runtime`` (see the module docstring).
    The ParC model gets the runtime's form (:data:`parc_mm.deploy.runtimes.RUNTIMES`) unless
    ``impls`` names others; int8 rows exist for ONNX Runtime only."""
    import onnx

    from parc_mm.deploy import runtimes
    rt = runtimes.require(runtime)
    impls = [rt.form if i is None and rt.form != 'auto' else i for i in impls]
    int8 = int8 and runtime == 'onnxruntime'
    torch_export = rt.route == 'torch.export'
    rows: List[OrtRow] = []
    x = torch.from_numpy(
        np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32))
    with tempfile.TemporaryDirectory() as tmp:
        graphs = export_pair(name, size, tmp, int8=int8, impls=impls, x=x, route=rt.route,
                             reshape_unfold=rt.unfold_as_reshapes,
                             rank4_baseline=rt.max_rank is not None and rt.max_rank <= 4)
        nets = {}
        for v, g in graphs.items():
            try:
                if runtime == 'onnxruntime':  # the exported graph itself
                    folder, model_file = osp.dirname(g['path']), g['path']
                else:
                    folder = osp.join(tmp, v)
                    os.makedirs(folder)
                    model_file = runtimes.convert(runtime, g['program'] if torch_export else
                                                  g['path'], folder, list(x.shape))[0]
                nets[v] = runtimes.load(runtime, folder, model_file, ['output'], threads)
                if torch_export:  # against PyTorch (there is no ONNX graph)
                    g['max_abs_diff'] = runtimes.check(nets[v], x.numpy(), [g['ref']])
                elif runtime != 'onnxruntime' and not v.endswith('-int8'):
                    ref = runtimes.load('onnxruntime', osp.dirname(g['path']), g['path'],
                                        ['output'], threads)(x.numpy())
                    g['max_abs_diff'] = runtimes.check(nets[v], x.numpy(), ref)
            except Exception as e:  # noqa: BLE001 - a baseline the runtime cannot take
                if v.startswith('parc'):
                    raise
                g['failed'] = f'{type(e).__name__}: {str(e)[:200]}'
        if 'baseline' not in nets:
            raise RuntimeError(f'{name}: ParC runs in {runtime} (max diff '
                               f'{graphs["parc"]["max_abs_diff"]:.1e}), the baseline does not '
                               f'({graphs["baseline"]["failed"]})')
        nodes = {v: g['nodes'] if torch_export else len(onnx.load(g['path']).graph.node)
                 for v, g in graphs.items()}
        feed = x.numpy()
        calls: Dict[str, Callable[[], object]] = {
            v: (lambda n=n: n(feed)) for v, n in nets.items()}
        for _ in range(warmup):
            for c in calls.values():
                c()
        times: Dict[str, List[float]] = {v: [] for v in calls}
        for _ in range(rounds):
            for v, c in calls.items():
                per = []
                for _ in range(reps):
                    t = time.perf_counter()
                    c()
                    per.append((time.perf_counter() - t) * 1e3)
                times[v].append(statistics.median(per))
    base = times['baseline']
    for v, ts in times.items():
        ratios = [a / b for a, b in zip(ts, base)]
        row = OrtRow(name, size, v, statistics.median(ts), statistics.median(ratios),
                     bootstrap_ci(ratios), nodes=nodes[v],
                     max_abs_diff=graphs[v]['max_abs_diff'] or 0.0, rounds=ts,
                     runtime=runtime, note=graphs[v].get('note', ''))
        if v.endswith('-int8'):
            fp32 = times[v[:-len('-int8')]]
            speed = [a / b for a, b in zip(fp32, ts)]
            row.vs_fp32, row.vs_fp32_ci = statistics.median(speed), bootstrap_ci(speed)
        rows.append(row)
    return rows


def profile_pair(name: str, size: int, threads: int = 2, runs: int = 20,
                 impls: Sequence[Optional[str]] = (None, ), depth: int = 2,
                 runtime: str = 'onnxruntime') -> Dict[str, Dict[str, dict]]:
    """Where the time goes, from the runtime's own profiler (ONNX Runtime's, or OpenVINO's
    performance counters): the pair's graphs (exported as :func:`time_pair` exports them),
    each run ``runs`` times alone; per variant, the mean ms per run of each op type (``ops``)
    and of each module of the network (``modules``: the first ``depth`` parts of the module
    path in the exporter's node names, e.g. ``layers.3/0``), their sum (``total``) and the
    median whole run (``run``: the nodes plus what lies between them, dispatch and
    thread-pool waits)."""
    if runtime not in ('onnxruntime', 'openvino'):
        raise ValueError(f'profiles come from ONNX Runtime or OpenVINO, not {runtime}')
    x = torch.from_numpy(
        np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32))
    out: Dict[str, Dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        graphs = export_pair(name, size, tmp, impls=impls, x=x)
        for v, g in graphs.items():
            nodes, run_ms = (_ort_profile if runtime == 'onnxruntime' else _ov_profile)(
                g['path'], x.numpy(), threads, runs, osp.join(tmp, v))
            ops: Dict[str, float] = {}
            modules: Dict[str, float] = {}
            for node_name, op, ms in nodes:
                ops[op] = ops.get(op, 0.0) + ms / runs
                path = [c for c in node_name.split('/')[:-1] if c][1:]  # (past the wrapper)
                key = '/'.join(path[:depth]) or '(top level)'
                modules[key] = modules.get(key, 0.0) + ms / runs
            out[v] = dict(ops=dict(sorted(ops.items(), key=lambda kv: -kv[1])),
                          modules=dict(sorted(modules.items(), key=lambda kv: -kv[1])),
                          total=sum(ops.values()), run=statistics.median(run_ms),
                          runtime=runtime)
    return out


def _ort_profile(path, x, threads, runs, prefix):
    """[(node name, op type, ms)] over ``runs`` runs after a warm-up, and each run's ms."""
    import json

    from parc_mm.deploy.runtimes import session
    sess = session(path, threads)
    inp = sess.get_inputs()[0].name
    for _ in range(3):
        sess.run(None, {inp: x})
    sess = session(path, threads, profile=prefix)
    for _ in range(runs):
        sess.run(None, {inp: x})
    with open(sess.end_profiling()) as f:
        trace = json.load(f)
    nodes = [(e['name'][:-len('_kernel_time')], e.get('args', {}).get('op_name', '?'),
              e['dur'] / 1e3) for e in trace
             if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time')]
    return nodes, [e['dur'] / 1e3 for e in trace if e.get('name') == 'model_run']


def _ov_profile(path, x, threads, runs, folder):
    """As :func:`_ort_profile`, from OpenVINO's performance counters (the IR converted as
    ``--runtime openvino`` converts it; fused nodes carry the name of one of theirs)."""
    from parc_mm.deploy import runtimes
    os.makedirs(folder)
    runtimes.convert('openvino', path, folder, list(x.shape))
    req = runtimes.openvino_model(osp.join(folder, 'model.xml'), threads,
                                  profile=True).create_infer_request()
    for _ in range(3):
        req.infer({0: x})
    nodes, run_ms = [], []
    for _ in range(runs):
        t = time.perf_counter()
        req.infer({0: x})
        run_ms.append((time.perf_counter() - t) * 1e3)
        nodes += [(p.node_name, p.node_type, p.real_time.total_seconds() * 1e3)
                  for p in req.profiling_info if p.status == p.Status.EXECUTED]
    return nodes, run_ms


def profile_table(name: str, size: int, prof: Dict[str, Dict[str, dict]], top: int = 8) -> str:
    """Markdown: the op types (and modules) that take the most time in either variant, ms per
    run in the baseline and in ParC, and their difference."""
    b, p = prof['baseline'], prof['parc']
    runs = (f'; whole run: baseline {b["run"]:.1f}, ParC {p["run"]:.1f}, ratio '
            f'{p["run"] / b["run"]:.3f}' if b.get('run') and p.get('run') else '')
    who = {'onnxruntime': "ONNX Runtime's profiler", 'openvino': "OpenVINO's performance "
           'counters'}[b.get('runtime', 'onnxruntime')]
    lines = [f'{name} at {size}: {who}, ms per run (sum over nodes: baseline '
             f'{b["total"]:.1f}, ParC {p["total"]:.1f}, ratio {p["total"] / b["total"]:.3f}'
             f'{runs})', '',
             '| op type | baseline ms | ParC ms | ParC - baseline |', '|---|---|---|---|']
    keys = sorted(set(b['ops']) | set(p['ops']),
                  key=lambda k: -max(b['ops'].get(k, 0), p['ops'].get(k, 0)))[:top]
    for k in keys:
        bo, po = b['ops'].get(k, 0.0), p['ops'].get(k, 0.0)
        lines.append(f'| {k} | {bo:.2f} | {po:.2f} | {po - bo:+.2f} |')
    for variant, d in (('baseline', b), ('ParC', p)):
        lines += ['', f'| {variant}: module | ms | share |', '|---|---|---|']
        for k, ms in list(d['modules'].items())[:top]:
            lines.append(f'| {k} | {ms:.2f} | {100 * ms / max(d["total"], 1e-9):.0f} % |')
    return '\n'.join(lines)


def _ci(m: float, ci: Tuple[float, float]) -> str:
    return f'{m:.3f}x [{ci[0]:.3f}, {ci[1]:.3f}]' + (' ≈' if ci[0] <= 1.0 <= ci[1] else '')


def _groups(rows: Sequence[OrtRow]) -> Dict[tuple, Dict[str, OrtRow]]:
    """``{(runtime, model, size): {variant: row}}``, in the rows' order."""
    groups: Dict[tuple, Dict[str, OrtRow]] = {}
    for r in rows:
        groups.setdefault((r.runtime, r.model, r.size), {})[r.variant] = r
    return groups


def table(rows: Sequence[OrtRow]) -> str:
    """Markdown: one line per (pair, size): fp32 and int8 of both, ratios to the fp32
    baseline, int8 speed-ups."""
    out = ['| runtime | model | input | baseline ms | ParC ms | ParC / baseline (fp32) [95% CI] | '
           'int8: baseline ms | int8: ParC ms | int8 ParC / fp32 baseline | int8 speed-up '
           '(ParC) | int8 speed-up (baseline) |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for (runtime, model, size), g in _groups(rows).items():
        b, p = g['baseline'], g['parc']
        bq, pq = g.get('baseline-int8'), g.get('parc-int8')
        q = (f'{bq.ms:.1f} | {pq.ms:.1f} | {_ci(pq.ratio, pq.ci)} | '
             f'{_ci(pq.vs_fp32, pq.vs_fp32_ci)} | {_ci(bq.vs_fp32, bq.vs_fp32_ci)}'
             if bq and pq else '- | - | - | - | -')
        out.append(f'| {runtime} | {model} | {size} | {b.ms:.1f} | {p.ms:.1f} | '
                   f'{_ci(p.ratio, p.ci)} | {q} |')
    return '\n'.join(out)


def matrix(rows: Sequence[OrtRow], skipped: Sequence[dict] = ()) -> str:
    """Markdown: the portability matrix, one line per (runtime, pair, size): whether ParC and
    its baseline convert and run, their largest difference to the reference (ONNX Runtime,
    ExecuTorch and LiteRT against PyTorch; OpenVINO, MNN and ncnn against ONNX Runtime on the
    same graph), the fp32 ratio
    and the ParC form the runtime got."""
    from parc_mm.deploy.runtimes import RUNTIMES
    out = ['| runtime | model | input | ParC runs | baseline runs | max diff ParC / baseline | '
           'ParC / baseline [95% CI] | ParC form |', '|---|---|---|---|---|---|---|---|']
    for (runtime, model, size), g in _groups(rows).items():
        b, p = g['baseline'], g['parc']
        base = f'yes ({b.note})' if b.note else 'yes'
        out.append(f'| {runtime} | {model} | {size} | yes | {base} | {p.max_abs_diff:.1e} / '
                   f'{b.max_abs_diff:.1e} | {_ci(p.ratio, p.ci)} | {RUNTIMES[runtime].form} |')
    for s in skipped:
        parc = 'ParC runs' in s['why']
        diff = s['why'].split('max diff ')[1].split(')')[0] if parc else '-'
        why = re.sub(r' of \S+\.onnx', '', s['why'].split('does not (')[-1].rstrip(')'))[:110]
        what = 'the baseline does not convert' if parc else 'ParC does not convert'
        out.append(f'| {s["runtime"]} | {s["model"]} | {s["size"]} | {"yes" if parc else "no"} '
                   f'| {"no" if parc else "-"} | {diff} / - | not timed: {what} ({why}) | '
                   f'{RUNTIMES[s["runtime"]].form} |')
    return '\n'.join(out)


def to_json(rows: Sequence[OrtRow]) -> List[dict]:
    return [asdict(r) for r in rows]


__all__ = ['PAIRS', 'OrtRow', 'export_pair', 'matrix', 'profile_pair', 'profile_table', 'table',
           'time_pair', 'to_json']

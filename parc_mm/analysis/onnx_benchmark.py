"""Deployment speed: ParC models against their attention / ConvNet baselines in ONNX Runtime.

Each pair is exported the same way (TorchScript exporter, opset 17, batch 1, the ParC model
after :func:`parc_mm.ops.fix_input_size`, so its kernels are constants of the export size),
optionally quantized to int8 the same way (ONNX Runtime's static QDQ quantization, per-channel
weights, Conv / MatMul / Gemm), and timed in interleaved rounds: each round runs every
variant ``reps`` times in turn and keeps the median, so drifts of the machine hit all alike.
The table reports the median of the per-round ratios to the fp32 baseline with a 95 %
bootstrap interval (:func:`parc_mm.analysis.benchmark.bootstrap_ci`), as the PyTorch
benchmark does. The int8 graphs are calibrated on random inputs: this measures speed, not
accuracy (``tools/deploy/deploy.py --int8 CALIB_DIR --eval`` measures that).
"""
from __future__ import annotations

import os.path as osp
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Sequence, Tuple

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


class _Features(nn.Module):
    """A backbone's last output as one tensor (what is exported and timed)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x)
        return out[-1] if isinstance(out, (tuple, list)) else out


def export_pair(name: str, size: int, out_dir: str, int8: bool = False,
                calib: int = 4, impls: Sequence[str] = ('direct', )) -> Dict[str, str]:
    """``{variant: onnx path}`` for the pair ``name`` (a key of the PyTorch benchmark's
    MODELS) at ``size`` x ``size``: the baseline, and the ParC model in each exportable impl
    of ``impls`` (``parc``: the first; ``parc-<impl>``: the others)."""
    from parc_mm.ops import fix_input_size
    build_parc, build_base = MODELS[name]
    x = torch.randn(1, 3, size, size)
    paths = {}
    builds = [('baseline', build_base, None)] + [
        ('parc' if i == 0 else f'parc-{impl}', build_parc, impl) for i, impl in enumerate(impls)]
    for variant, build, impl in builds:
        torch.manual_seed(0)
        net = build()
        net.eval()  # (some mmpretrain backbones' train() returns None)
        if impl is not None:
            fix_input_size(net, (size, size), impl=impl)
        model = _Features(net)
        model.eval()
        path = osp.join(out_dir, f'{variant}.onnx')
        with torch.no_grad():
            torch.onnx.export(model, (x, ), path, input_names=['input'],
                              output_names=['output'], opset_version=17, dynamo=False)
        paths[variant] = path
        if int8:
            paths[variant + '-int8'] = quantize_random(path, size, calib)
    return paths


def quantize_random(path: str, size: int, n: int = 4) -> str:
    """Static int8 of ``path`` (the recipe of :func:`parc_mm.apis.onnx_runtime.quantize_qdq`)
    calibrated on ``n`` random inputs (speed only)."""
    from parc_mm.apis.onnx_runtime import quantize_qdq
    rng = np.random.default_rng(0)
    batches = ({'input': rng.standard_normal((1, 3, size, size), np.float32)}
               for _ in range(n))
    return quantize_qdq(path, path.replace('.onnx', '-int8.onnx'), batches)


def _session(path: str, threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])


def time_pair(name: str, size: int, rounds: int = 10, reps: int = 3, threads: int = 2,
              int8: bool = True, warmup: int = 2,
              impls: Sequence[str] = ('direct', )) -> List[OrtRow]:
    """Export, check and time one pair at one size (see the module docstring)."""
    import onnx
    rows: List[OrtRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_pair(name, size, tmp, int8=int8, impls=impls)
        x = np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32)
        sessions = {v: _session(p, threads) for v, p in paths.items()}
        nodes = {v: len(onnx.load(p).graph.node) for v, p in paths.items()}
        diffs = {}
        build_parc, build_base = MODELS[name]
        for v, build in [('baseline', build_base)] + [(v, build_parc) for v in paths
                                                       if v.startswith('parc')
                                                       and not v.endswith('-int8')]:
            torch.manual_seed(0)
            net = _Features(build())
            net.eval()
            with torch.no_grad():
                ref = net(torch.from_numpy(x)).numpy()
            diffs[v] = float(np.abs(sessions[v].run(None, {'input': x})[0] - ref).max())
        calls: Dict[str, Callable[[], object]] = {
            v: (lambda s=s: s.run(None, {'input': x})) for v, s in sessions.items()}
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
                     bootstrap_ci(ratios), nodes=nodes[v], max_abs_diff=diffs.get(v, 0.0),
                     rounds=ts)
        if v.endswith('-int8'):
            fp32 = times[v[:-len('-int8')]]
            speed = [a / b for a, b in zip(fp32, ts)]
            row.vs_fp32, row.vs_fp32_ci = statistics.median(speed), bootstrap_ci(speed)
        rows.append(row)
    return rows


def _ci(m: float, ci: Tuple[float, float]) -> str:
    return f'{m:.3f}x [{ci[0]:.3f}, {ci[1]:.3f}]' + (' ≈' if ci[0] <= 1.0 <= ci[1] else '')


def table(rows: Sequence[OrtRow]) -> str:
    """Markdown: one line per (pair, size): fp32 and int8 of both, ratios to the fp32
    baseline, int8 speed-ups."""
    out = ['| model | input | baseline ms | ParC ms | ParC / baseline (fp32) [95% CI] | '
           'int8: baseline ms | int8: ParC ms | int8 ParC / fp32 baseline | int8 speed-up '
           '(ParC) | int8 speed-up (baseline) |', '|---|---|---|---|---|---|---|---|---|---|']
    groups: Dict[tuple, Dict[str, OrtRow]] = {}
    for r in rows:
        groups.setdefault((r.model, r.size), {})[r.variant] = r
    for (model, size), g in groups.items():
        b, p = g['baseline'], g['parc']
        bq, pq = g.get('baseline-int8'), g.get('parc-int8')
        q = (f'{bq.ms:.1f} | {pq.ms:.1f} | {_ci(pq.ratio, pq.ci)} | '
             f'{_ci(pq.vs_fp32, pq.vs_fp32_ci)} | {_ci(bq.vs_fp32, bq.vs_fp32_ci)}'
             if bq and pq else '- | - | - | - | -')
        out.append(f'| {model} | {size} | {b.ms:.1f} | {p.ms:.1f} | {_ci(p.ratio, p.ci)} | '
                   f'{q} |')
    return '\n'.join(out)


def to_json(rows: Sequence[OrtRow]) -> List[dict]:
    return [asdict(r) for r in rows]


__all__ = ['PAIRS', 'OrtRow', 'export_pair', 'quantize_random', 'table', 'time_pair',
           'to_json']

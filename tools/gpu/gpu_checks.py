"""The checks only a GPU can answer, as one JSON report (``tools/gpu/check.sh`` runs it).

    python tools/gpu/gpu_checks.py OUT.json [--device cuda|cpu]

Each check is ``pass`` / ``fail`` (with the error) / ``skipped`` (with the reason: e.g. no
CUDA, where a CPU dry run still exercises the rest):

* ``deterministic``: forward + backward of ParC layers at non-base sizes under
  ``torch.use_deterministic_algorithms(True)`` (mmengine's ``deterministic=True``), per impl;
* ``sync_free_eval``: eval calls in inference mode under
  ``torch.cuda.set_sync_debug_mode('error')`` (a host sync raises), per impl;
* ``graph_capture``: capture and replay of a ParC forward in a CUDA graph, per impl, equal to
  eager;
* ``amp``: under fp16 / bf16 autocast, the output dtype and finite gradients, per impl;
* ``autotune_training_pick``: the autotuner's training choice for one shape against a
  measured forward + backward of every impl (the pick should be the fastest, or within 10%).
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
import time
import traceback

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from parc_mm.models.layers import ParCHW  # noqa: E402
from parc_mm.ops import (  # noqa: E402
    autotune,
    autotune_cache,
    clear_autotune_cache,
    inference_mode,
    parc_impl,
)
from parc_mm.ops.registry import impl_names  # noqa: E402

SHAPES = [(96, 50, 84), (384, 25, 42)]  # ConvNeXt-T stages 2-3 of a 800x1333 input / 4


def _layer(c, device, base=(14, 14)):
    torch.manual_seed(0)
    return ParCHW(c, base).to(device)


def check_deterministic(device):
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        out = {}
        for impl in impl_names():
            m = _layer(96, device)
            x = torch.randn(2, 96, 50, 84, device=device, requires_grad=True)
            with parc_impl(impl):
                grads = []
                for _ in range(2):
                    m.zero_grad()
                    x.grad = None
                    m(x).square().sum().backward()
                    grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
            out[impl] = 'pass' if torch.equal(grads[0], grads[1]) else 'fail: gradients differ'
        return out
    finally:
        torch.use_deterministic_algorithms(old)


def _eval_cases(device):
    """(impl, layer in inference mode, input) for the eval-mode checks."""
    for impl in impl_names():
        yield impl, inference_mode(_layer(96, device)), torch.randn(1, 96, 50, 84, device=device)


def check_sync_free(device):
    if device.type != 'cuda':
        return 'skipped: no CUDA'
    out = {}
    for impl, m, x in _eval_cases(device):
        with torch.no_grad(), parc_impl(impl):
            m(x)  # builds the plan (may sync once)
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode('error')
            try:
                m(x)
                out[impl] = 'pass'
            except RuntimeError as e:
                out[impl] = f'fail: {str(e).splitlines()[0][:200]}'
            finally:
                torch.cuda.set_sync_debug_mode(0)
    return out


def check_graph_capture(device):
    if device.type != 'cuda':
        return 'skipped: no CUDA'
    out = {}
    for impl, m, x in _eval_cases(device):
        try:
            with torch.no_grad(), parc_impl(impl):
                ref = m(x)
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    for _ in range(2):
                        m(x)  # warm-up on the side stream, as torch's docs ask
                torch.cuda.current_stream().wait_stream(s)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    y = m(x)
                g.replay()
                torch.cuda.synchronize()
            out[impl] = 'pass' if torch.allclose(y, ref, rtol=1e-4, atol=1e-4) else \
                'fail: replay differs from eager'
        except Exception as e:  # noqa: BLE001 - a report, not a crash
            out[impl] = f'fail: {type(e).__name__}: {str(e).splitlines()[0][:200]}'
    return out


def check_amp(device):
    dtypes = [torch.bfloat16] + ([torch.float16] if device.type == 'cuda' else [])
    out = {}
    for dt in dtypes:
        for impl in impl_names():
            m = _layer(96, device)
            x = torch.randn(2, 96, 50, 84, device=device, requires_grad=True)
            with parc_impl(impl), torch.autocast(device.type, dtype=dt):
                y = m(x)
            y.float().square().mean().backward()
            finite = all(torch.isfinite(p.grad).all() for p in m.parameters())
            ok = y.dtype == dt and finite and torch.isfinite(x.grad).all()
            out[f'{dt}/{impl}'] = 'pass' if ok else f'fail: dtype {y.dtype}, finite {finite}'
    return out


def _fwd_bwd_ms(m, x, reps=10):
    def step():
        m.zero_grad()
        m(x).sum().backward()

    step()
    if x.device.type == 'cuda':
        torch.cuda.synchronize(x.device)
    best = float('inf')
    for _ in range(reps):
        t = time.perf_counter()
        step()
        if x.device.type == 'cuda':
            torch.cuda.synchronize(x.device)
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def check_autotune_pick(device):
    out = {}
    for c, h, w in SHAPES:
        m = _layer(c, device)
        x = torch.randn(2, c, h, w, device=device, requires_grad=True)
        clear_autotune_cache()
        with autotune():
            m(x).sum().backward()
        picks = sorted(set(autotune_cache().values()))
        times = {}
        for impl in impl_names():
            with parc_impl(impl):
                times[impl] = _fwd_bwd_ms(m, x)
        best = min(times, key=times.get)
        worst_pick = max(times[p] for p in picks)
        out[f'{c}x{h}x{w}'] = dict(picked=picks, ms={k: round(v, 3) for k, v in times.items()},
                                   fastest=best, ok=worst_pick <= 1.10 * times[best])
    clear_autotune_cache()
    return out


CHECKS = dict(deterministic=check_deterministic, sync_free_eval=check_sync_free,
              graph_capture=check_graph_capture, amp=check_amp,
              autotune_training_pick=check_autotune_pick)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    a = p.parse_args(argv)
    device = torch.device(a.device)
    report = dict(device=str(device), torch=torch.__version__,
                  gpu=torch.cuda.get_device_name(device) if device.type == 'cuda' else None)
    for name, fn in CHECKS.items():
        t = time.time()
        try:
            report[name] = fn(device)
        except Exception as e:  # noqa: BLE001 - every check reports, none stops the others
            report[name] = f'fail: {type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}'
        print(f'{name} ({time.time() - t:.1f} s): {json.dumps(report[name])[:400]}', flush=True)
    with open(a.out, 'w') as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())

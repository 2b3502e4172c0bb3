"""A small, deterministic mmengine training run that saves a ~16 MB checkpoint every
iteration through ``parc_mm.SafeCheckpointHook``; the fault-injection tests SIGKILL it
mid-save and resume it (only mmengine + torch are imported: a run starts in ~2 s).

    python tests/fault_train.py WORK_DIR MAX_ITERS [--resume] [--hook CheckpointHook]
                                [--tmpl 'ckpts/iter_{}.pth'] [--best] [--keep N]
                                [--out-dir DIR]

``--best``: validate every iteration with a score that rises each time, so the hook saves a
new best checkpoint (``save_best``) at every iteration as well.
"""
import argparse
import os.path as osp

import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner


class Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 1)
        self.big = nn.Parameter(torch.zeros(4_000_000))  # makes each save take a while

    def forward(self, inputs, labels, mode='loss'):
        x, y = inputs, labels  # (B, 8), (B,) from default_collate
        pred = self.lin(x).squeeze(-1) + self.big[:4].sum()
        loss = ((pred - y)**2).mean()
        return dict(loss=loss) if mode == 'loss' else pred


def data():
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(64, 8, generator=g)
    ys = xs @ torch.arange(8.) / 8
    return [dict(inputs=x, labels=y) for x, y in zip(xs, ys)]


def kill_when(args, work_dir, prefixes, delay, timeout=120):
    """Run ``python tests/fault_train.py WORK_DIR *args`` and SIGKILL it ``delay`` s after a
    file starting with one of ``prefixes`` appears in ``work_dir`` (a save's temporary file,
    or the final file of an in-place save); its exit code."""
    import os
    import signal
    import subprocess
    import sys
    import time
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, osp.abspath(__file__), str(work_dir), *args],
                            env={**os.environ, 'PYTHONPATH': root, 'OMP_NUM_THREADS': '1'},
                            cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_end = time.time() + timeout
    try:
        while time.time() < t_end and proc.poll() is None:
            if osp.isdir(work_dir) and any(n.startswith(tuple(prefixes))
                                           for n in os.listdir(work_dir)):
                time.sleep(delay)
                break
            time.sleep(0.0005)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode


class RisingScore:
    """A metric that improves at every validation (each one makes a new best checkpoint)."""

    def __new__(cls):
        from mmengine.evaluator import BaseMetric, Evaluator

        class _Rising(BaseMetric):
            calls = 0

            def process(self, data_batch, data_samples):
                self.results.append(1)

            def compute_metrics(self, results):
                type(self).calls += 1
                return dict(score=float(type(self).calls))

        return Evaluator([_Rising()])


def main():
    p = argparse.ArgumentParser()
    p.add_argument('work_dir')
    p.add_argument('max_iters', type=int)
    p.add_argument('--resume', action='store_true')
    p.add_argument('--hook', default='parc_mm.SafeCheckpointHook')
    p.add_argument('--tmpl', default=None, help='the hook\'s filename_tmpl')
    p.add_argument('--best', action='store_true', help='save_best every iteration')
    p.add_argument('--keep', type=int, default=1, help='max_keep_ckpts')
    p.add_argument('--out-dir', default=None, help="the hook's out_dir")
    a = p.parse_args()
    import parc_mm.engine.hooks  # noqa: F401  (registers the hook)
    from parc_mm import compat
    compat.ensure('mmengine-checkpoints-weights-only')
    loader = dict(dataset=data(), sampler=dict(type='DefaultSampler', shuffle=False),
                  batch_size=4, collate_fn=dict(type='default_collate'))
    torch.manual_seed(0)  # the model is built before the Runner seeds anything
    ckpt = dict(type=a.hook, interval=1, by_epoch=False, max_keep_ckpts=a.keep)
    if a.tmpl:
        ckpt['filename_tmpl'] = a.tmpl
    if a.out_dir:
        ckpt['out_dir'] = a.out_dir
    val = {}
    if a.best:
        ckpt.update(save_best='score', rule='greater')
        val = dict(val_dataloader=dict(loader, dataset=data()[:4]), val_cfg=dict(),
                   val_evaluator=RisingScore())
    runner = Runner(
        model=Toy(), work_dir=a.work_dir, train_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=a.max_iters, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        default_hooks=dict(checkpoint=ckpt, logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), resume=a.resume, default_scope='mmengine', **val)
    runner.train()
    torch.save({k: v.detach().clone() for k, v in runner.model.state_dict().items()},
               osp.join(a.work_dir, 'final_state.pt'))


if __name__ == '__main__':
    main()

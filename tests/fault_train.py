"""A small, deterministic mmengine training run that saves a ~16 MB checkpoint every
iteration through ``parc_mm.SafeCheckpointHook``; the fault-injection tests SIGKILL it
mid-save and resume it (only mmengine + torch are imported: a run starts in ~2 s).

    python tests/fault_train.py WORK_DIR MAX_ITERS [--resume] [--hook CheckpointHook]
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument('work_dir')
    p.add_argument('max_iters', type=int)
    p.add_argument('--resume', action='store_true')
    p.add_argument('--hook', default='parc_mm.SafeCheckpointHook')
    a = p.parse_args()
    import parc_mm.hooks  # noqa: F401  (registers the hook)
    from parc_mm.utils.compat import allow_mmengine_checkpoints
    allow_mmengine_checkpoints()
    loader = dict(dataset=data(), sampler=dict(type='DefaultSampler', shuffle=False),
                  batch_size=4, collate_fn=dict(type='default_collate'))
    torch.manual_seed(0)  # the model is built before the Runner seeds anything
    runner = Runner(
        model=Toy(), work_dir=a.work_dir, train_dataloader=loader,
        train_cfg=dict(by_epoch=False, max_iters=a.max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type=a.hook, interval=1, by_epoch=False,
                                           max_keep_ckpts=1),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), resume=a.resume, default_scope='mmengine')
    runner.train()
    torch.save({k: v.detach().clone() for k, v in runner.model.state_dict().items()},
               osp.join(a.work_dir, 'final_state.pt'))


if __name__ == '__main__':
    main()

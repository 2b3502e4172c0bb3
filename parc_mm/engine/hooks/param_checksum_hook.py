"""ParamChecksumHook: a checksum of the parameters of every rank after training."""
import hashlib
import json
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from parc_mm.registry import HOOKS


@HOOKS.register_module()
class ParamChecksumHook(Hook):
    """After training, every rank writes a checksum of its model parameters to
    ``work_dir/param_checksum_rank<r>.json``: DDP replicas must agree bit for bit."""

    priority = 'VERY_LOW'

    def after_train(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        h = hashlib.sha256()
        total = 0.0
        for name, p in sorted(model.state_dict().items()):
            if torch.is_tensor(p) and p.is_floating_point():
                t = p.detach().cpu().contiguous()
                h.update(name.encode())
                h.update(t.numpy().tobytes())
                total += float(t.double().sum())
        rank = get_rank()
        with open(osp.join(runner.work_dir, f'param_checksum_rank{rank}.json'), 'w') as f:
            json.dump(dict(rank=rank, sha256=h.hexdigest(), sum=total, iter=runner.iter), f)

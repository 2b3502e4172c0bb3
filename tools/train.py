"""Train with any mmdet / mmseg / mmpretrain config (the library is the config's default_scope).

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]
                          [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]
"""
import argparse
import os

from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a parc_mm / OpenMMLab model')
    p.add_argument('config', help='train config file path')
    p.add_argument('--work-dir', help='the dir to save logs and models')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision (GPU)')
    p.add_argument('--auto-scale-lr', action='store_true', help='scale lr by batch size')
    p.add_argument('--resume', nargs='?', type=str, const='auto',
                   help='resume from CKPT, or (no value) from the latest in the work dir')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value (mmengine DictAction)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='load checkpoints with weights_only=False (pickled Python objects); '
                        'only for files you trust')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmengine.runner import Runner

    from parc_mm import compat
    from parc_mm.apis.runner import (
        adapt_to_device,
        check_datasets,
        init_cpu_distributed,
        load_config,
    )
    from parc_mm.utils.checkpoint import trust_checkpoints
    compat.ensure('mmengine-checkpoints-weights-only')
    trust_checkpoints(args.trust_checkpoint)

    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError('--amp needs a CUDA GPU (mmengine AmpOptimWrapper); '
                               'drop --amp to train in fp32 on CPU')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        import os.path as osp
        cfg.resume = True
        cfg.load_from = args.resume
        if osp.isdir(args.resume):  # a folder (with or without a trailing slash)
            from parc_mm.utils.checkpoint import CheckpointError, newest_loadable_checkpoint
            chosen = newest_loadable_checkpoint(args.resume)
            if chosen is None:
                raise CheckpointError(
                    f'--resume {args.resume}: a folder without a checkpoint that loads. Give a '
                    'checkpoint file, or --resume without a value to resume the work dir\'s '
                    'latest.')
            print(f'--resume {args.resume} is a folder: resuming from its newest checkpoint '
                  f'that verifies, {chosen}')
            cfg.load_from = chosen
    adapt_to_device(cfg)
    check_datasets(cfg)
    init_cpu_distributed(args.launcher)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    from parc_mm.utils.checkpoint import CheckpointError
    try:
        main()
    except (CheckpointError, FileNotFoundError) as e:
        raise SystemExit(f'error: {e}')

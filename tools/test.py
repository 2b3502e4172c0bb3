"""Evaluate a checkpoint with any mmdet / mmseg / mmpretrain config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--tta]
                         [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

--tta: test-time augmentation as the config's library defines it (``tta_model`` and
``tta_pipeline``: mmseg's multi-scale + flip ADE20K test, mmdet's flip test).
"""
import argparse
import os

from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test (evaluate) a parc_mm / OpenMMLab model')
    p.add_argument('config', help='test config file path')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--work-dir', help='the dir to save the evaluation logs')
    p.add_argument('--out', help='dump the metrics to this json file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value (mmengine DictAction)')
    p.add_argument('--allow-partial', action='store_true',
                   help='evaluate even if the checkpoint does not fit the model')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='load checkpoints with weights_only=False (pickled Python objects); '
                        'only for files you trust')
    p.add_argument('--tta', action='store_true',
                   help="test-time augmentation with the config's tta_model / tta_pipeline "
                        '(e.g. the multi-scale + flip mIoU of segmentation papers)')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main(argv=None):
    args = parse_args(argv)
    import json

    from mmengine.runner import Runner

    from parc_mm import compat
    from parc_mm.apis.runner import (
        adapt_to_device,
        check_checkpoint_fits,
        check_datasets,
        init_cpu_distributed,
        load_config,
    )
    from parc_mm.utils.checkpoint import trust_checkpoints
    compat.ensure('mmengine-checkpoints-weights-only')
    trust_checkpoints(args.trust_checkpoint)

    from parc_mm.utils.checkpoint import verify_checkpoint
    verify_checkpoint(args.checkpoint)  # missing / empty / damaged: refuse before building
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)
    cfg.load_from = args.checkpoint
    adapt_to_device(cfg)
    if args.tta:
        if cfg.get('tta_model') is None or cfg.get('tta_pipeline') is None:
            lacks = 'tta_model' if cfg.get('tta_model') is None else 'tta_pipeline'
            raise SystemExit(f'error: --tta needs tta_model and tta_pipeline in the config; '
                             f'{args.config} has no {lacks} (mmseg / mmdet dataset configs '
                             'define both)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    check_datasets(cfg, loaders=('test_dataloader', ))
    init_cpu_distributed(args.launcher)
    runner = Runner.from_cfg(cfg)
    net = runner.model.module if args.tta else runner.model  # the TTA wrapper holds the model
    check_checkpoint_fits(net, args.checkpoint, args.allow_partial)
    from parc_mm.engine.hooks import ParCInferenceModeHook
    runner.register_hook(ParCInferenceModeHook())  # kernels as constants while testing
    metrics = runner.test()
    if args.out:
        with open(args.out, 'w') as f:
            json.dump({k: float(v) if isinstance(v, (int, float)) else str(v)
                       for k, v in metrics.items()}, f, indent=1)
    return metrics


if __name__ == '__main__':
    from parc_mm.utils.checkpoint import CheckpointError
    try:
        main()
    except (CheckpointError, FileNotFoundError) as e:
        raise SystemExit(f'error: {e}')

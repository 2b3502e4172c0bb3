"""Deploy a trained model with mmdeploy to ONNX Runtime, checked against PyTorch.

The arguments are mmdeploy's ``tools/deploy.py`` (which its wheel does not ship); the deploy
configs in ``configs/deploy/`` also work with mmdeploy's own script, since they import
``parc_mm.deploy.mmdeploy``.

    python tools/deploy/deploy.py DEPLOY_CFG MODEL_CFG CHECKPOINT IMG --work-dir DIR
        [--test-img IMG ...] [--int8 CALIB_DIR] [--eval] [--device cpu] [--force]
        [--trust-checkpoint]

Written to DIR: ``end2end.onnx`` and mmdeploy's SDK files (``deploy.json``, ``pipeline.json``,
``detail.json``); ``parc_export.json`` with PyTorch vs ONNX Runtime on IMG / --test-img
(top-5, pixel agreement, box / mask IoU), the graph's op report, and with --int8 the
quantized graph check (``end2end_int8.onnx``); with --eval the test-set metrics of PyTorch,
the fp32 and the int8 graph side by side. ``tools/infer.py MODEL_CFG DIR IMAGES`` runs DIR.

DIR is written whole (staged beside it, swapped in at the end, with a manifest of every file's
size and sha256 that tools/infer.py verifies): a folder parc_mm did not write is refused
(--force moves its content aside), a failed deploy leaves the previous one as it was, and a
re-deploy without --int8 leaves no int8 graph of an earlier run behind.
"""
import argparse
import json
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('deploy_cfg', help='deploy config (configs/deploy/...)')
    p.add_argument('model_cfg', help='model config')
    p.add_argument('checkpoint', help='checkpoint of the model config')
    p.add_argument('img', help='image the export traces (and the first check runs on)')
    p.add_argument('--work-dir', required=True, help='folder for the deployed files')
    p.add_argument('--test-img', nargs='*', default=[], help='more images to compare on')
    p.add_argument('--int8', metavar='CALIB_DIR', default=None,
                   help='also write end2end_int8.onnx, calibrated on the images in CALIB_DIR (and '
                   'its subfolders)')
    p.add_argument('--int8-images', type=int, default=64,
                   help='calibrate on this many images of CALIB_DIR, evenly spaced (default 64)')
    p.add_argument('--eval', action='store_true',
                   help="test-set metrics (the model config's test_dataloader / evaluator) of "
                   'PyTorch, fp32 and int8 ONNX Runtime')
    p.add_argument('--score-thr', type=float, default=0.3,
                   help='detections compared from this score on (default 0.3)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--force', action='store_true',
                   help='replace a work dir parc_mm did not write (its content is moved to a '
                        'sibling folder, not deleted)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='load the checkpoint with weights_only=False (pickled Python objects '
                        'such as an argparse.Namespace; only for files you trust)')
    a = p.parse_args(argv)
    if str(a.device).startswith('cuda'):
        import torch
        if not torch.cuda.is_available():
            print(f'error: --device {a.device}: this machine has no usable CUDA device; '
                  'use --device cpu', file=sys.stderr)
            return 2
    from parc_mm.deploy.mmdeploy.pipeline import deploy, evaluate, quantize_int8
    from parc_mm.deploy.quantize import calibration_images
    from parc_mm.deploy.record import read_record, write_record
    from parc_mm.utils.checkpoint import CheckpointError, trust_checkpoints
    from parc_mm.utils.fileio import artefact_folder
    trust_checkpoints(a.trust_checkpoint)
    try:
        # (the writer refuses a work dir it did not make on entry, before any work)
        with artefact_folder(a.work_dir, 'deploy', a.force) as stage:
            calib = calibration_images(a.int8, a.int8_images) if a.int8 else []
            deploy(a.deploy_cfg, a.model_cfg, a.checkpoint, a.img, stage,
                   test_imgs=a.test_img, device=a.device, score_thr=a.score_thr)
            if a.int8:
                quantize_int8(stage, calib, a.deploy_cfg, a.model_cfg, a.device)
            if a.eval:
                import os.path as osp

                rec = read_record(stage)
                graphs = {'fp32': rec['model']}
                if a.int8:
                    graphs['int8'] = rec['int8']['onnx']
                metrics = {'pytorch': evaluate(a.deploy_cfg, a.model_cfg, a.checkpoint,
                                               osp.join(stage, 'eval'), a.device,
                                               backend=False)}
                for k, f in graphs.items():
                    metrics[f'{rec["backend"]}_{k}'] = evaluate(
                        a.deploy_cfg, a.model_cfg, osp.join(stage, f), osp.join(stage, 'eval'),
                        a.device)
                write_record(stage, dict(test_metrics=metrics), update=True)
            rec = read_record(stage)
    except (FileNotFoundError, ValueError, RuntimeError, CheckpointError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(json.dumps({k: rec[k] for k in ('task', 'onnx', 'input_shape_wh', 'vs_pytorch',
                                          'non_portable', 'int8', 'test_metrics')
                      if k in rec}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Run a trained (or converted) model on images: drawn results and a JSON of predictions.

The task (detection / segmentation / classification) follows the config's library
(``default_scope``); mmdet's DetInferencer, mmseg's MMSegInferencer or mmpretrain's
ImageClassificationInferencer do the work.

    python tools/infer.py CONFIG CHECKPOINT INPUT [--out-dir DIR] [--device cpu|cuda]
                          [--score-thr 0.3]
    python tools/infer.py CONFIG EXPORT_DIR|model.onnx INPUT ...   # in the export's runtime

An exported classifier or segmentor (tools/deploy/export.py) runs in the runtime its folder
was exported for (ONNX Runtime, OpenVINO, MNN, ncnn, ExecuTorch, LiteRT: the record says
which) with the config's own pre- and post-processing: the same drawings and
predictions.json. Detectors' plain exports hold backbone + neck features in every runtime and
are refused here (whole detectors: tools/deploy/deploy.py, mmdeploy, ONNX Runtime).

INPUT is an image or a folder of images. Written: DIR/vis/<image> (drawn) and
DIR/predictions.json (boxes / classes / scores, class pixel fractions, or labels).
"""
import argparse
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file (or parc_mm::family/name.py)')
    p.add_argument('checkpoint', help='checkpoint file (trained, or from to_parc.py), or an '
                   'exported model.onnx / the folder tools/deploy/export.py wrote')
    p.add_argument('input', nargs='+', help='image file(s) or folder(s)')
    p.add_argument('--out-dir', default='work_dirs/infer')
    p.add_argument('--device', default=None, help='cpu or cuda (default: cuda if available)')
    p.add_argument('--score-thr', type=float, default=0.3, help='detection score threshold')
    p.add_argument('--allow-partial', action='store_true',
                   help='run even if the checkpoint does not fit the model')
    p.add_argument('--max-pixels', type=float, default=64,
                   help='skip images larger than this many megapixels (default 64)')
    p.add_argument('--allow-random-weights', action='store_true',
                   help='run an export made without a checkpoint (its record says "random '
                        'init"; refused by default)')
    p.add_argument('--allow-unverified', action='store_true',
                   help='run an .onnx file that no tools/deploy/export_onnx.py run wrote '
                        '(nothing about it can be checked)')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='load the checkpoint with weights_only=False (trusted files only)')
    a = p.parse_args(argv)
    import torch

    from parc_mm.apis.inference import infer
    from parc_mm.utils.checkpoint import trust_checkpoints
    trust_checkpoints(a.trust_checkpoint)
    device = a.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    skipped = []
    try:
        results = infer(a.config, a.checkpoint, a.input, a.out_dir, device, a.score_thr,
                        allow_partial=a.allow_partial, max_pixels=int(a.max_pixels * 2**20),
                        skipped=skipped, allow_random_weights=a.allow_random_weights,
                        allow_unverified=a.allow_unverified)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    for r in results:
        if r['task'] == 'cls':
            print(f'{r["image"]}: {r["pred_class"]} ({r["pred_score"]:.3f})')
        elif r['task'] == 'det':
            print(f'{r["image"]}: {len(r["scores"])} objects '
                  f'{sorted(set(r["classes"]))}')
        else:
            top = sorted(r['class_fractions'].items(), key=lambda kv: -kv[1])[:3]
            print(f'{r["image"]}: ' + ', '.join(f'{k} {v:.1%}' for k, v in top))
    for s in skipped:
        print(f'skipped {s["image"]}: {s["reason"]}', file=sys.stderr)
    print(f'wrote {a.out_dir}/vis/ and {a.out_dir}/predictions.json' +
          (f'; {len(skipped)} skipped (listed in {a.out_dir}/skipped.json)' if skipped else ''))
    return 1 if skipped and not results else 0


if __name__ == '__main__':
    sys.exit(main())

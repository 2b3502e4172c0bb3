"""Export a trained (or converted) model to ONNX at one input size and check it against
PyTorch in ONNX Runtime.

    python tools/deploy/export_onnx.py CONFIG [CHECKPOINT] --out DIR [--shape H W]
                                       [--dynamo] [--opset 17] [--allow-partial] [--force]

Written: DIR/model.onnx and DIR/parc_export.json (task, the input size traced, mean / std /
channel order, outputs and their sizes, classes, the checkpoint's sha256 or "random init", the
ONNX op counts and the largest difference to PyTorch), and DIR's manifest (every file's size
and sha256; tools/infer.py verifies it). DIR is written whole: a folder parc_mm did not write
is refused (--force moves its content aside), a failed or refused export leaves the previous
one as it was. Classifiers and
segmentors export their logits; detectors their backbone + neck features (whole detectors need
mmdeploy, not shipped in this release). ParC graphs hold kernels as long as the feature maps:
export once per input size (no dynamic height / width).
"""
import argparse
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='weights (default: random init, e.g. to check a graph or time it)')
    p.add_argument('--out', required=True, help='output folder')
    p.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='input size (default: the task\'s test size)')
    p.add_argument('--dynamo', action='store_true', help="torch's dynamo exporter "
                   '(needs onnxscript) instead of the TorchScript one')
    p.add_argument('--opset', type=int, default=17)
    p.add_argument('--allow-partial', action='store_true',
                   help='export even if the checkpoint does not fit the model')
    p.add_argument('--trust-checkpoint', action='store_true',
                   help='load the checkpoint with weights_only=False (pickled Python objects '
                        'such as an argparse.Namespace; only for files you trust)')
    p.add_argument('--force', action='store_true',
                   help='replace an output folder parc_mm did not write (its content is moved '
                        'to a sibling folder, not deleted)')
    a = p.parse_args(argv)
    from parc_mm.apis.deploy import export_onnx
    from parc_mm.utils.checkpoint import CheckpointError, trust_checkpoints
    trust_checkpoints(a.trust_checkpoint)
    try:
        rec = export_onnx(a.config, a.checkpoint, a.out, a.shape, a.dynamo, a.opset,
                          a.allow_partial, force=a.force)
    except (CheckpointError, FileNotFoundError, ValueError, RuntimeError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if a.checkpoint is None:
        print('note: no checkpoint given: the graph holds random weights (recorded; '
              'tools/infer.py refuses it without --allow-random-weights)', file=sys.stderr)
    print(f'wrote {a.out}/model.onnx ({rec["exported"]}, input {rec["input"]["shape"]}) and '
          f'{a.out}/parc_export.json; ONNX Runtime vs PyTorch: max |diff| '
          f'{rec["max_abs_diff_vs_pytorch"]:.1e}; ops: ' +
          ', '.join(f'{k} {v}' for k, v in rec['ops'].items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Export a trained (or converted) model to ONNX at one input size and check it against
PyTorch in ONNX Runtime.

    python tools/deploy/export_onnx.py CONFIG [CHECKPOINT] --out DIR [--shape H W]
                                       [--dynamo] [--opset 17] [--allow-partial]

Written: DIR/model.onnx and DIR/deploy.json (task, input size, mean / std / channel order,
outputs, classes, the ONNX op counts and the largest difference to PyTorch). Classifiers and
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
    a = p.parse_args(argv)
    from parc_mm.apis.deploy import export_onnx
    from parc_mm.utils.checkpoint import CheckpointError
    try:
        rec = export_onnx(a.config, a.checkpoint, a.out, a.shape, a.dynamo, a.opset,
                          a.allow_partial)
    except (CheckpointError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'wrote {a.out}/model.onnx ({rec["exported"]}, input {rec["input"]["shape"]}) and '
          f'{a.out}/deploy.json; ONNX Runtime vs PyTorch: max |diff| '
          f'{rec["max_abs_diff_vs_pytorch"]:.1e}; ops: ' +
          ', '.join(f'{k} {v}' for k, v in rec['ops'].items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())

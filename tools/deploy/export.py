"""Export a trained (or converted) model for one runtime at one input size, checked against
PyTorch in that runtime.

    python tools/deploy/export.py CONFIG [CHECKPOINT] --work-dir DIR [--shape H W]
        [--runtime {onnxruntime,openvino,mnn,ncnn,executorch,litert}] [--impl IMPL]
        [--int8 CALIB_DIR]
        [--dynamo] [--opset 17] [--allow-partial] [--force]

(``tools/deploy/export_onnx.py ... --out DIR`` is the same command for ONNX Runtime.)
OpenVINO, MNN and ncnn start from the one exporter's ONNX graph and convert it with their own
converter in this process: model.xml / model.bin (OpenVINO), model.mnn (MNN),
model.ncnn.param / model.ncnn.bin (ncnn, through pnnx), next to model.onnx. ExecuTorch and
LiteRT start from the torch.export program, every tensor derived from the parameters only
(circulant matrices, resized kernels, position-embedding constants) folded into a constant:
model.pte (ExecuTorch, XNNPACK delegate), model.tflite (LiteRT); no model.onnx. The ParC
form is the runtime's (parc_mm.deploy.runtimes.RUNTIMES: the circulant GEMM up to 64 taps,
Concat + Conv for ncnn; --impl overrides it), and the export is run in the runtime on its
input and compared with PyTorch before the folder is written.

Written: DIR/model.onnx (and the runtime's files) and DIR/parc_export.json (task, the input
size traced, mean / std / channel order, outputs and their sizes, classes, the checkpoint's
sha256 or "random init", the ONNX op counts, the runtime, its ParC form and its largest
difference to PyTorch), and DIR's manifest (every file's size and sha256; tools/infer.py
verifies it). DIR is written whole: a folder parc_mm did not write is refused (--force moves
its content aside), a failed or refused export leaves the previous one as it was. Classifiers
and segmentors export their logits; detectors their backbone + neck features (whole
detectors: tools/deploy/deploy.py, mmdeploy). --int8 CALIB_DIR (ONNX Runtime) also writes
DIR/model_int8.onnx (static QDQ quantization calibrated on the images of CALIB_DIR
preprocessed as at inference; the record says how many ParC layers run in int8). ParC graphs
hold kernels as long as the feature maps: export once per input size (no dynamic height /
width). This is the exporter the deployment benchmark and the op report call: what they
measure is this graph.
"""
import argparse
import sys


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='weights (default: random init, e.g. to check a graph or time it)')
    from parc_mm.deploy.runtimes import RUNTIMES
    from parc_mm.ops import impl_choices
    p.add_argument('--work-dir', '--out', dest='out', required=True, help='output folder')
    p.add_argument('--runtime', default='onnxruntime', choices=list(RUNTIMES),
                   help='the runtime to export for (default onnxruntime)')
    p.add_argument('--impl', default=None, choices=impl_choices(exportable=True),
                   help="the ParC form (default: the runtime's, from measurement)")
    p.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='input size (default: the task\'s test size)')
    p.add_argument('--int8', metavar='CALIB_DIR', default=None,
                   help='also write model_int8.onnx, calibrated on the images in CALIB_DIR (and '
                        'its subfolders)')
    p.add_argument('--int8-images', type=int, default=64,
                   help='calibrate on this many images of CALIB_DIR, evenly spaced (default 64)')
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
    from parc_mm.deploy.onnx import export_config
    from parc_mm.utils.checkpoint import CheckpointError, trust_checkpoints
    trust_checkpoints(a.trust_checkpoint)
    try:
        calib = []
        if a.int8:
            from parc_mm.deploy.quantize import calibration_images
            calib = calibration_images(a.int8, a.int8_images)
            if not calib:
                raise ValueError(f'--int8 {a.int8}: no images there to calibrate on')
        rec = export_config(a.config, a.checkpoint, a.out, a.shape, a.dynamo, a.opset,
                            a.allow_partial, force=a.force, int8_images=calib,
                            runtime=a.runtime, impl=a.impl)
    except (CheckpointError, FileNotFoundError, ValueError, RuntimeError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if a.checkpoint is None:
        print('note: no checkpoint given: the graph holds random weights (recorded; '
              'tools/infer.py refuses it without --allow-random-weights)', file=sys.stderr)
    rt = rec['runtime']
    print(f'wrote {a.out}/{", ".join(rt["files"])} ({rec["exported"]}, input '
          f'{rec["input"]["shape"]}, ParC form {rt["form"]}) and {a.out}/parc_export.json; '
          f'{rt["name"]} vs PyTorch: max |diff| {rt["max_abs_diff_vs_pytorch"]:.1e}; '
          f'{"ONNX" if rec.get("onnx") else rec["exporter"]} ops: ' +
          ', '.join(f'{k} {v}' for k, v in rec['ops'].items()))
    if 'int8' in rec:
        q = rec['int8']
        print(f'wrote {a.out}/model_int8.onnx: calibrated on {q["calibration_images"]} images, '
              f'ParC layers in int8: {q["parc_int8"]} of {q["parc"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

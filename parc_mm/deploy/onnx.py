"""The one ONNX exporter.

Every route exports through here: the export command (``tools/deploy/export_onnx.py``:
:func:`export_config`), the mmdeploy pipeline (:func:`prepare` before mmdeploy's own
``export`` with its rewriters), the deployment benchmark and the op report
(:func:`export_module`). So the graph that is timed and reported is the graph users get.

ParC layers need no surgery: :func:`prepare` puts the model in inference mode, and inside
the export :mod:`parc_mm.ops.dispatch` takes each layer's export form (``auto``; an explicit
impl that cannot export is refused), the kernels and position embeddings are resized to the
traced size and folded into constants outside the trace. A graph is valid for the size it
was traced at (the kernels are as long as the feature maps): one export per input size;
dynamic height / width are refused.
"""
from __future__ import annotations

import os.path as osp
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from parc_mm.apis.tasks import TASKS
from parc_mm.deploy.prepare import prepare
from parc_mm.deploy.record import EXPORT_TOOL, RANDOM_INIT, write_record

MODEL_FILE, INT8_FILE = 'model.onnx', 'model_int8.onnx'


class ExportedTask(nn.Module):
    """The part of a task model that is exported, as a plain ``forward(x)``: a classifier's or
    segmentor's logits, a detector's backbone + neck features (its heads need data samples:
    whole detectors deploy with mmdeploy)."""

    def __init__(self, model: nn.Module, task: str):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, x: torch.Tensor):
        if TASKS[self.task].exports == 'features':
            return tuple(self.model.extract_feat(x))
        return self.model(x, mode='tensor')


def export_module(module: nn.Module, inputs: Tuple[torch.Tensor, ...], path: str,
                  input_names: Sequence[str] = ('input', ),
                  output_names: Optional[Sequence[str]] = None, opset: int = 17,
                  dynamo: bool = False) -> dict:
    """Export ``module(*inputs)`` to ``path`` and run it in ONNX Runtime on the same inputs.
    Returns ``dict(outputs=[PyTorch outputs], max_abs_diff=..., report=op report)``."""
    from parc_mm.deploy.report import onnx_op_report
    from parc_mm.deploy.runtimes import session
    prepare(module)
    with torch.no_grad():
        ref = module(*inputs)
    refs = tuple(ref) if isinstance(ref, (tuple, list)) else (ref, )
    names = list(output_names) if output_names else [f'out{i}' for i in range(len(refs))]
    with torch.no_grad():
        torch.onnx.export(module, tuple(inputs), path, input_names=list(input_names),
                          output_names=names, opset_version=opset, dynamo=dynamo)
    sess = session(path)
    feed = {i.name: t.detach().cpu().numpy() for i, t in zip(sess.get_inputs(), inputs)}
    outs = sess.run(None, feed)
    diff = max(float(np.abs(o - r.detach().cpu().numpy()).max()) for o, r in zip(outs, refs))
    return dict(outputs=refs, names=names, max_abs_diff=diff, report=onnx_op_report(path))


def preprocessing(model: nn.Module) -> dict:
    """Mean / std / channel order of a model's data preprocessor (what the graph does not
    hold and a runtime must do)."""
    pre = getattr(model, 'data_preprocessor', None)
    out = {}
    for name in ('mean', 'std'):
        t = getattr(pre, name, None)
        if torch.is_tensor(t):
            out[name] = [float(v) for v in t.flatten()]
    for flag in ('_channel_conversion', 'bgr_to_rgb', 'to_rgb'):
        if hasattr(pre, flag):
            out['bgr_to_rgb'] = bool(getattr(pre, flag))
            break
    return out


def export_config(config: str, checkpoint: Optional[str], out_dir: str,
                  shape: Optional[Sequence[int]] = None, dynamo: bool = False,
                  opset: int = 17, allow_partial: bool = False, atol: float = 1e-4,
                  force: bool = False, int8_images: Sequence[str] = (),
                  runtime: str = 'onnxruntime', impl: Optional[str] = None) -> dict:
    """Export the config's model to ``out_dir/model.onnx`` at ``shape`` (H, W; default: the
    task's test size), compare ONNX Runtime with PyTorch on a random input, convert it for
    ``runtime`` (:mod:`parc_mm.deploy.runtimes`: its files next to the ONNX graph, run in that
    runtime and compared with PyTorch too), optionally quantize it to int8 calibrated on
    ``int8_images`` (``model_int8.onnx``, ONNX Runtime), and write the record
    (:mod:`parc_mm.deploy.record`). The ParC form is the runtime's (its ``form``), or
    ``impl``. The folder is written whole
    (:func:`parc_mm.utils.fileio.artefact_folder`): a folder parc_mm did not write is refused
    (``force``: its content is moved aside), an export that fails leaves the previous one
    untouched, a kill leaves the old folder or the new one. Returns the record; raises (and
    writes nothing) when the outputs differ by more than ``atol`` or the graph holds
    non-portable ops."""
    from parc_mm.deploy import runtimes
    from parc_mm.utils.fileio import artefact_folder
    rt = runtimes.require(runtime)
    if int8_images and runtime != 'onnxruntime':
        raise ValueError(f'--int8 quantizes for ONNX Runtime (QDQ); the {runtime} runtime has '
                         'its own int8 tools: export for onnxruntime to get an int8 graph')
    with artefact_folder(out_dir, EXPORT_TOOL, force) as stage:
        return _export(config, checkpoint, stage, shape, dynamo, opset, allow_partial, atol,
                       list(int8_images), rt, impl)


def _export(config, checkpoint, out_dir, shape, dynamo, opset, allow_partial, atol,
            int8_images, rt, impl) -> dict:
    from parc_mm.apis.runner import check_checkpoint_fits
    from parc_mm.apis.tasks import build_model, load_config, task_of
    from parc_mm.deploy.report import onnx_input
    from parc_mm.utils.fileio import sha256_file
    cfg = load_config(config)
    task = task_of(cfg)
    h, w = tuple(shape) if shape else TASKS[task].test_size
    model = build_model(cfg)
    meta = {}
    if checkpoint is not None:
        from mmengine.runner import load_checkpoint

        from parc_mm.utils.checkpoint import verify_checkpoint
        verify_checkpoint(checkpoint)
        check_checkpoint_fits(model, checkpoint, allow_partial)
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', strict=not allow_partial)
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    form = impl or rt.form
    if form != 'auto':
        from parc_mm.ops import set_impl
        set_impl(model, form)
    rank4 = 0
    if rt.unfold_as_reshapes:  # patch merging (see Runtime.unfold_as_reshapes)
        from parc_mm.deploy.rank4 import rank4_unfold
        rank4 = rank4_unfold(model)
    features = TASKS[task].exports == 'features'
    torch.manual_seed(0)
    x = torch.randn(1, 3, h, w)
    common = dict(
        task=task, config=config, checkpoint=checkpoint, backend=rt.name,
        checkpoint_sha256=sha256_file(checkpoint) if checkpoint else RANDOM_INIT,
        input=dict(name='input', shape=[1, 3, h, w], **preprocessing(model)),
        exported='backbone + neck features' if features else 'logits',
        classes=list((meta.get('dataset_meta') or {}).get('classes', [])),
        torch=torch.__version__)
    if rt.route == 'torch.export':
        record = _export_program(ExportedTask(model, task), x, out_dir, rt, form, features)
        if rank4:
            record['runtime']['rank4_unfold'] = rank4
        return write_record(out_dir, dict(common, **record))
    path = osp.join(out_dir, MODEL_FILE)
    got = export_module(ExportedTask(model, task), (x, ), path,
                        output_names=None if features else ['logits'], opset=opset,
                        dynamo=dynamo)
    import onnxruntime as ort
    report, diff, names = got['report'], got['max_abs_diff'], got['names']
    graph_in = onnx_input(path)[1]
    if graph_in != [1, 3, h, w]:
        raise RuntimeError(f'{path} was traced with input {graph_in}, not [1, 3, {h}, {w}]')
    if report['non_portable']:
        raise RuntimeError(f'{path} holds non-portable ops {report["non_portable"]}')
    if diff > atol:
        raise RuntimeError(f'{path}: ONNX Runtime differs from PyTorch by {diff:.2e} '
                           f'(> {atol:.0e})')
    runtime = dict(name=rt.name, form=form, files=[MODEL_FILE],
                   max_abs_diff_vs_pytorch=diff)
    if rank4:
        runtime['rank4_unfold'] = rank4
    if rt.name != 'onnxruntime':
        runtime.update(_convert_and_check(rt, path, out_dir, x, got['outputs'], names))
        runtime['files'] += [MODEL_FILE]
    record = dict(
        common, model=runtime['files'][0], onnx=MODEL_FILE, route='parc_mm', runtime=runtime,
        traced_input_shape=graph_in,
        outputs={n: list(r.shape) for n, r in zip(names, got['outputs'])},
        exporter='dynamo' if dynamo else 'torchscript', opset=opset,
        max_abs_diff_vs_pytorch=diff, ops=report['ops'], non_portable=report['non_portable'],
        onnxruntime=ort.__version__)
    if int8_images:
        record['int8'] = _int8(cfg, model, path, graph_in, int8_images)
    write_record(out_dir, record)  # only for an export that passed
    return record


def _export_program(module, x, out_dir, rt, form, features) -> dict:
    """The ``torch.export`` route (ExecuTorch, LiteRT): the folded program
    (:func:`parc_mm.deploy.program.export_program`) lowered for ``rt``, run there on ``x`` and
    compared with PyTorch; refused if a parameter-derived tensor is still rebuilt per call."""
    from parc_mm.deploy.program import export_program, program_ops, rebuilt_per_call
    prepare(module)
    with torch.no_grad():
        refs = module(x)
    refs = tuple(refs) if isinstance(refs, (tuple, list)) else (refs, )
    names = [f'out{i}' for i in range(len(refs))] if features else ['logits']
    program = export_program(module, (x, ))
    ops = program_ops(program)
    left = rebuilt_per_call(program)
    if left:
        raise RuntimeError(f'the torch.export program still computes {", ".join(left)} from '
                           'the parameters on every call after folding: report this model')
    runtime = dict(name=rt.name, form=form, **_convert_and_check(rt, program, out_dir, x,
                                                                 refs, names))
    return dict(model=runtime['files'][0], onnx=None, route='parc_mm', runtime=runtime,
                traced_input_shape=list(x.shape),
                outputs={n: list(r.shape) for n, r in zip(names, refs)},
                exporter='torch.export', max_abs_diff_vs_pytorch=runtime[
                    'max_abs_diff_vs_pytorch'], ops=ops, non_portable=[])


def _convert_and_check(rt, source, out_dir, x, refs, names) -> dict:
    """The runtime's files from ``source`` (the ONNX graph's path, or the folded program),
    run in that runtime on the export's input and compared with PyTorch (refused beyond the
    runtime's tolerance)."""
    from parc_mm.deploy import runtimes
    files = runtimes.convert(rt.name, source, out_dir, list(x.shape))
    net = runtimes.load(rt.name, out_dir, files[0], names)
    refs = [r.detach().cpu().numpy() for r in refs]
    diff = runtimes.check(net, x.numpy(), refs)
    scale = max(float(np.abs(r).max()) for r in refs)
    if diff > rt.rtol * max(scale, 1.0):
        raise RuntimeError(f'{rt.name} differs from PyTorch by {diff:.2e} (outputs up to '
                           f'{scale:.2e}; tolerance {rt.rtol:.0e} of that)')
    import importlib.metadata as md
    versions = {}
    for m in rt.modules:
        try:
            versions[m] = md.version({'_tools': 'MNN'}.get(m, m))
        except md.PackageNotFoundError:
            pass
    return dict(files=files, max_abs_diff_vs_pytorch=diff, versions=versions)


def _int8(cfg, model, fp32: str, want, images) -> dict:
    """``model_int8.onnx`` calibrated on ``images`` preprocessed as at inference, and its
    graph check (how many ParC layers run in int8)."""
    from parc_mm.deploy.quantize import calibration_batches, pipeline_preprocessor, quantize_qdq
    from parc_mm.deploy.report import int8_graph_check
    used, skipped = calibration_batches(images, pipeline_preprocessor(cfg, model), want)
    out = quantize_qdq(fp32, osp.join(osp.dirname(fp32), INT8_FILE),
                       ({'input': b} for b in used))
    return dict(onnx=INT8_FILE, calibration_images=len(used), skipped_images=skipped,
                **int8_graph_check(out))


__all__ = ['ExportedTask', 'export_config', 'export_module', 'prepare', 'preprocessing']

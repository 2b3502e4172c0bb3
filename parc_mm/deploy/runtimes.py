"""The runtimes an export runs in, and the ParC form each one gets.

Two routes (``Runtime.route``): ONNX Runtime, OpenVINO, MNN and ncnn start from the one
exporter's ONNX graph (:mod:`parc_mm.deploy.onnx`) and convert it with the runtime's own
converter; ExecuTorch and LiteRT start from the ``torch.export`` program
(:mod:`parc_mm.deploy.program`, parameter-derived tensors folded into constants). Every
converter runs in this process (no converter script: MNN's ``mnnconvert`` script installs
packages and posts usage logs; its converter function does neither). What each runtime is
given is chosen per runtime from measurement (:data:`RUNTIMES`, ``form``; the numbers are in
docs/benchmarks.md): ``auto`` is the circulant GEMM up to 64 taps and Concat + Conv beyond;
``direct`` is Concat + Conv everywhere, for a runtime whose batched MatMul is slow (ncnn).
``tools/deploy/export.py --runtime R`` writes the runtime's files, checks them against
PyTorch in that runtime and records the largest difference; :func:`load` runs a folder in its
runtime (``tools/infer.py``, the deployment benchmark).
"""
from __future__ import annotations

import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

# a runtime's network: NCHW float32 batch of 1 -> its outputs, in the export's output order
Network = Callable[[np.ndarray], List[np.ndarray]]


@dataclass(frozen=True)
class Runtime:
    """One runtime.

    name: what ``--runtime`` takes; modules: what must be importable (the first names the
    pip package of ``extra``); extra: the ``parc_mm[...]`` extra that installs it; form: the
    ParC implementation exported for it (``'auto'`` or an exportable impl); why: the
    measurement behind ``form``; files: what :func:`convert` writes (the first is the model
    file); rtol: the check's tolerance relative to the output's largest magnitude (MNN and
    ncnn: 1e-3, their activations and reductions are approximations; the baselines' outputs
    differ from PyTorch as much)."""

    name: str
    modules: Sequence[str]
    extra: str
    form: str
    why: str
    files: Sequence[str]
    rtol: float = 1e-4
    route: str = 'onnx'
    max_rank: Optional[int] = None
    unfold_as_reshapes: bool = False


RUNTIMES: Dict[str, Runtime] = {r.name: r for r in (
    Runtime('onnxruntime', ('onnxruntime', ), 'deploy', 'auto',
            'the circulant GEMM is faster than Concat + Conv up to 64 taps',
            ('model.onnx', )),
    Runtime('openvino', ('openvino', ), 'openvino', 'auto',
            'as ONNX Runtime: its MatMul runs the constant circulants well',
            ('model.xml', 'model.bin')),
    Runtime('mnn', ('MNN', '_tools'), 'mnn', 'auto',
            'as ONNX Runtime', ('model.mnn', ), rtol=1e-3),
    Runtime('ncnn', ('ncnn', 'pnnx'), 'ncnn', 'direct',
            "ncnn's batched MatMul is several times slower than its depthwise Conv",
            ('model.ncnn.param', 'model.ncnn.bin'), rtol=1e-3, max_rank=4,
            unfold_as_reshapes=True),
    Runtime('executorch', ('executorch', ), 'executorch', 'auto',
            'the folded circulant GEMM runs in the XNNPACK delegate (Concat + Conv beyond 64 '
            'taps, as ONNX Runtime)', ('model.pte', ), route='torch.export',
            unfold_as_reshapes=True),
    Runtime('litert', ('litert_torch', 'ai_edge_litert', 'executorch'), 'litert', 'auto',
            'the folded circulant GEMM; Concat + Conv is the slow form in LiteRT',
            ('model.tflite', ), route='torch.export', unfold_as_reshapes=True),
)}


def runtime(name: str) -> Runtime:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise ValueError(f'unknown runtime {name!r}; choose one of {tuple(RUNTIMES)}') from None


def problem(name: str) -> Optional[str]:
    """Why ``name`` cannot run here (a package missing, with the install command), or None."""
    rt = runtime(name)
    missing = [m for m in rt.modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (f'the {name} runtime needs {", ".join(missing)}: pip install "parc_mm[{rt.extra}]"'
            + (' (about 1.2 GB: its converter brings jax and transformers)'
               if name == 'litert' else '')
            + (' then pip install --no-deps pnnx (its metadata asks for a second torch)'
               if 'pnnx' in missing else ''))


def require(name: str) -> Runtime:
    msg = problem(name)
    if msg:
        raise RuntimeError(msg)
    return runtime(name)


# --- conversion ---------------------------------------------------------------------------
def convert(name: str, source, out_dir: str, shape: Sequence[int]) -> List[str]:
    """Convert ``source`` (input ``shape``, NCHW) into ``out_dir`` for runtime ``name``:
    the ONNX graph's path for the ONNX route, the folded ``torch.export`` program
    (:func:`parc_mm.deploy.program.export_program`) for the other. Returns the files written
    (relative to ``out_dir``)."""
    rt = require(name)
    is_path = isinstance(source, (str, os.PathLike))
    if is_path != (rt.route == 'onnx'):
        want = "the ONNX graph's path" if rt.route == 'onnx' else 'a torch.export program'
        raise TypeError(f'the {name} runtime converts {want}, got {type(source).__name__}')
    {'onnxruntime': _to_onnxruntime, 'openvino': _to_openvino, 'mnn': _to_mnn,
     'ncnn': _to_ncnn, 'executorch': _to_executorch, 'litert': _to_litert,
     }[name](source, out_dir, list(shape))
    for f in rt.files:
        if not osp.isfile(osp.join(out_dir, f)):
            raise RuntimeError(f'the {name} converter did not write {f}')
    return list(rt.files)


def _to_onnxruntime(onnx_path, out_dir, shape):
    dst = osp.join(out_dir, 'model.onnx')
    if osp.abspath(onnx_path) != osp.abspath(dst):
        shutil.copyfile(onnx_path, dst)


def _to_openvino(onnx_path, out_dir, shape):
    import openvino as ov
    # fp32 weights: save_model compresses them to fp16 unless told not to
    ov.save_model(ov.convert_model(onnx_path), osp.join(out_dir, 'model.xml'),
                  compress_to_fp16=False)


def _to_mnn(onnx_path, out_dir, shape):
    import _tools  # MNN's converter itself (not MNN.tools.mnnconvert: it logs usage remotely)
    code = _tools.mnnconvert(['mnnconvert', '-f', 'ONNX', '--modelFile', onnx_path,
                              '--MNNModel', osp.join(out_dir, 'model.mnn'),
                              '--bizCode', 'parc_mm'])
    if code not in (None, 0, True):
        raise RuntimeError(f'MNN could not convert {onnx_path} (status {code})')


# pnnx stalls on some graphs (Swin's window attention: minutes, gigabytes) instead of failing
PNNX_TIMEOUT_S = 300


def _to_ncnn(onnx_path, out_dir, shape):
    import pnnx
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.pnnx-') as tmp:
        src = osp.join(tmp, 'model.onnx')
        shutil.copyfile(onnx_path, src)
        names = {k: osp.join(tmp, f'model.{k}') for k in (
            'pnnxparam', 'pnnxbin', 'pnnxpy', 'pnnxonnx', 'ncnnpy')}
        args = [pnnx.EXEC_PATH, src, f'inputshape={shape}'.replace(' ', ''),
                f'ncnnparam={osp.join(out_dir, "model.ncnn.param")}',
                f'ncnnbin={osp.join(out_dir, "model.ncnn.bin")}',
                *(f'{k}={v}' for k, v in names.items())]
        try:
            p = subprocess.run(args, capture_output=True, text=True, cwd=tmp,
                               timeout=PNNX_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f'pnnx did not finish converting {onnx_path} in '
                               f'{PNNX_TIMEOUT_S} s (it stalls on some graphs, e.g. Swin\'s '
                               'window attention): this model does not convert to ncnn') from None
        if p.returncode:
            raise RuntimeError(f'pnnx could not convert {onnx_path}: {p.stderr[-2000:]}')
        # ops pnnx leaves out of the ncnn graph ("ignore <op> ..."): the graph would not load
        ignored = sorted({ln.split()[1] for ln in (p.stdout + p.stderr).splitlines()
                          if ln.startswith('ignore ') and len(ln.split()) > 1})
        if ignored:
            raise RuntimeError(
                f'pnnx cannot map {", ".join(ignored)} of {onnx_path} to ncnn layers (ncnn '
                'tensors are at most 4-D; e.g. an nn.Unfold exports as Gathers on 6-D tensors): '
                'this model does not run in ncnn')


def lower_executorch(program):
    """The folded program lowered to ExecuTorch's edge dialect with the XNNPACK delegate
    (``.exported_program().graph`` shows what runs outside the delegate)."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    return to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])


def _to_executorch(program, out_dir, shape):
    with open(osp.join(out_dir, 'model.pte'), 'wb') as f:
        f.write(lower_executorch(program).to_executorch().buffer)


def _to_litert(program, out_dir, shape):
    import litert_torch
    example = tuple(program.example_inputs[0])  # (the input torch.export traced)
    module = program.module()
    for m in module.modules():  # (exported in eval mode; the unlifted module says train and
        m.training = False      # refuses .eval(): the converter would warn of training mode)
    litert_torch.convert(module, example).export(osp.join(out_dir, 'model.tflite'))


# --- running ------------------------------------------------------------------------------
def session(path: str, threads: Optional[int] = None, device: str = 'cpu',
            profile: Optional[str] = None):
    """An ONNX Runtime session of ``path`` with every graph optimisation (``threads``: its
    intra-op threads, one inter-op thread; CUDA first where asked and available;
    ``profile``: the prefix of its profiler's trace file, written by ``end_profiling()``)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = profile
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ['CPUExecutionProvider']
    if str(device).startswith('cuda') and \
            'CUDAExecutionProvider' in ort.get_available_providers():
        providers.insert(0, 'CUDAExecutionProvider')
    return ort.InferenceSession(path, so, providers=providers)


def load(name: str, folder: str, model_file: str, output_names: Sequence[str],
         threads: Optional[int] = None) -> Network:
    """The network of an export folder in runtime ``name`` (``model_file``: its model file;
    ``output_names``: the export's outputs, in order)."""
    require(name)
    run = {'onnxruntime': _run_onnxruntime, 'openvino': _run_openvino, 'mnn': _run_mnn,
           'ncnn': _run_ncnn, 'executorch': _run_executorch, 'litert': _run_litert}[name]
    return run(osp.join(folder, osp.basename(model_file)), list(output_names), threads)


def _run_onnxruntime(path, names, threads):
    sess = session(path, threads)
    inp = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {inp: np.ascontiguousarray(x, np.float32)})


def openvino_model(path: str, threads: Optional[int] = None, profile: bool = False):
    """OpenVINO's compiled model of ``path`` as every export runs it (fp32 inference;
    ``profile``: with its per-node performance counters)."""
    import openvino as ov
    config = {'INFERENCE_PRECISION_HINT': 'f32'}  # (bf16 where the CPU has it, otherwise)
    if threads:
        config['INFERENCE_NUM_THREADS'] = int(threads)
    if profile:
        config['PERF_COUNT'] = 'YES'
    return ov.Core().compile_model(path, 'CPU', config)


def _run_openvino(path, names, threads):
    model = openvino_model(path, threads)
    outs = list(model.outputs)

    def run(x):
        result = model(np.ascontiguousarray(x, np.float32))
        return [np.asarray(result[o]) for o in outs]

    return run


def _run_mnn(path, names, threads):
    import MNN
    interp = MNN.Interpreter(path)
    sess = interp.createSession({'numThread': int(threads or os.cpu_count() or 1)})
    inp = interp.getSessionInput(sess)

    def run(x):
        x = np.ascontiguousarray(x, np.float32)
        inp.copyFrom(MNN.Tensor(x.shape, MNN.Halide_Type_Float, x,
                                MNN.Tensor_DimensionType_Caffe))
        interp.runSession(sess)
        outs = interp.getSessionOutputAll(sess)
        result = []
        for n in names:
            t = outs[n]
            host = MNN.Tensor(t.getShape(), MNN.Halide_Type_Float,
                              np.zeros(t.getShape(), np.float32), MNN.Tensor_DimensionType_Caffe)
            t.copyToHostTensor(host)
            result.append(np.array(host.getNumpyData(), copy=True))
        return result

    return run


def _run_ncnn(path, names, threads):
    import ncnn
    net = ncnn.Net()
    net.opt.num_threads = int(threads or os.cpu_count() or 1)
    net.opt.use_vulkan_compute = False
    if hasattr(net.opt, 'openmp_blocktime'):
        net.opt.openmp_blocktime = 0  # its OpenMP spin-wait collapses under CPU contention
    for flag in ('use_fp16_packed', 'use_fp16_storage', 'use_fp16_arithmetic',
                 'use_bf16_storage', 'use_int8_inference'):
        if hasattr(net.opt, flag):  # fp32 as the other runtimes (ncnn stores fp16 by default)
            setattr(net.opt, flag, False)
    base = path[:-len('.param')] if path.endswith('.param') else path
    if net.load_param(base + '.param') or net.load_model(base + '.bin'):
        raise RuntimeError(f'ncnn cannot load {base}.param / .bin')
    if not net.input_names() or not net.output_names():
        raise RuntimeError(f'{base}.param has no input or output blob: pnnx could not map the '
                           'graph to ncnn layers')
    inp, outs = net.input_names()[0], list(net.output_names())

    def run(x):
        ex = net.create_extractor()
        ex.input(inp, ncnn.Mat(np.ascontiguousarray(x[0], np.float32)).clone())
        result = []
        for n in outs:
            _, m = ex.extract(n)
            result.append(np.array(m)[None].copy())
        return result

    return run


def _run_executorch(path, names, threads):
    import torch
    from executorch.runtime import Runtime as _ET
    if threads:  # the XNNPACK delegate's thread pool (process-wide: set before running)
        from executorch.extension.pybindings import portable_lib
        portable_lib._unsafe_reset_threadpool(int(threads))
    method = _ET.get().load_program(path).load_method('forward')

    def run(x):
        outs = method.execute([torch.from_numpy(np.ascontiguousarray(x, np.float32))])
        return [np.array(o.numpy(), copy=True) for o in outs]

    return run


def _run_litert(path, names, threads):
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=path, num_threads=int(threads or os.cpu_count() or 1))
    runner = interp.get_signature_runner()
    (arg, ) = runner.get_input_details()  # (one input; its name)

    def run(x):
        outs = runner(**{arg: np.ascontiguousarray(x, np.float32)})
        # output_0, output_1, ..., output_10: the program's output order
        return [np.array(outs[k], copy=True) for k in sorted(outs, key=lambda k: (len(k), k))]

    return run


def check(net: Network, x: np.ndarray, refs: Sequence[np.ndarray]) -> float:
    """The largest absolute difference between the runtime's outputs and ``refs``."""
    outs = net(x)
    if len(outs) != len(refs):
        raise RuntimeError(f'the runtime gives {len(outs)} outputs, PyTorch {len(refs)}')
    diff = 0.0
    for o, r in zip(outs, refs):
        o = np.asarray(o).reshape(np.shape(r)) if np.size(o) == np.size(r) else o
        if np.shape(o) != np.shape(r):
            raise RuntimeError(f'the runtime gives an output of shape {np.shape(o)}, PyTorch '
                               f'{np.shape(r)}')
        diff = max(diff, float(np.abs(o - r).max()))
    return diff


__all__ = ['RUNTIMES', 'Runtime', 'check', 'convert', 'load', 'lower_executorch', 'openvino_model',
           'problem', 'require', 'runtime', 'session']

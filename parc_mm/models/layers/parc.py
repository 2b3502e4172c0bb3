"""The ParC layers that hold parameters: one direction (:class:`ParCConv2d`), a standalone
position embedding (:class:`ParCPosEmbed`) and the H/W channel-split mixer (:class:`ParCHW`)."""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn

from parc_mm.ops.dispatch import check_impl
from parc_mm.ops.functional import autocast_out_dtype, circular_conv, compute, resolve_impl
from parc_mm.ops.registry import generation
from parc_mm.ops.resize import DIRECTIONS, axis, resize_on_load, resize_to, resized_param
from parc_mm.ops.tracing import compiling, tracing_onnx, untraced


def halves(x: torch.Tensor):
    """The two channel halves of ``x`` (ParC's H / W split), as slices: ``torch.chunk``
    exports as a ``Split`` that torch's dynamo exporter writes invalidly at opset 17."""
    half = x.shape[1] // 2
    return x[:, :half], x[:, half:]


class InferencePlanMixin:
    """Explicit inference mode of a ParC module (:func:`parc_mm.ops.inference_mode`).

    Off by default: every forward resizes and transforms the parameters afresh, so any write
    to them, ``.data`` writes, EMA / mean-teacher updates and weight surgery included, is
    seen at the next call. Switched on (by ``tools/test.py``, ``tools/infer.py``, the export
    and the benchmark, or by the user), an eval-mode forward without autograd keeps what it
    derives from the parameters (resized kernels, their spectrum / circulant matrix, the
    folded position-embedding + bias constant, the chosen impl) per input size: the
    parameters are then treated as constants. ``train()``, ``load_state_dict`` and
    ``resize_`` switch the mode off; in-place updates that bump a version counter (optimizer
    steps, ``copy_``) also drop the plan; a ``.data`` write in inference mode is not seen
    (switch the mode off, or call ``inference_mode`` again, after such surgery). The plan is
    never pickled or deep-copied.
    """

    _inference = False

    def set_inference(self, enabled: bool) -> None:
        self._inference = bool(enabled)
        self.drop_plan()

    def drop_plan(self) -> None:
        self.__dict__.pop('_cache', None)
        self.__dict__.pop('_cache_stamp', None)

    def train(self, mode: bool = True):
        if mode:
            self.set_inference(False)
        return super().train(mode)

    def __getstate__(self):
        state = super().__getstate__() if hasattr(super(), '__getstate__') else self.__dict__
        state = dict(state)
        state.pop('_cache', None)
        state.pop('_cache_stamp', None)
        return state

    def _inference_plan(self, key: tuple, params, build) -> Optional[dict]:
        """In inference mode, eval, without autograd, not tracing: ``build()`` (a dict of
        tensors derived from ``params``), computed once and reused until ``key`` (input size,
        dtype, device) or a parameter's version / storage / dtype changes. None otherwise."""
        if not self._inference or self.training or torch.is_grad_enabled() or compiling():
            return None
        stamp = key + tuple(None if p is None else (p._version, p.data_ptr(), p.dtype)
                            for p in params)
        if self.__dict__.get('_cache_stamp') != stamp:
            self._cache = build()
            self._cache_stamp = stamp
        return self._cache


def _inference_cache(layer, n: int, x: torch.Tensor, names, extra=()) -> Optional[dict]:
    """A ParC layer's parameters ``names`` resized to length ``n`` (and, filled by
    :func:`circular_conv` and the eval plan, the kernel's spectrum / circulant matrix and the
    folded constant), kept as :meth:`InferencePlanMixin._inference_plan` says; ``extra``: further
    parameters the plan depends on (the bias)."""
    params = [getattr(layer, name) for name in names]
    return layer._inference_plan((n, x.dtype, x.device), params + list(extra), lambda: {
        name: None if p is None else resize_to(p, n, layer.direction)
        for name, p in zip(names, params)})


class ParCConv2d(InferencePlanMixin, nn.Module):
    """One ParC direction: position embedding + global circular conv along H or W.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        direction: ``'H'`` (kernel global along height) or ``'W'``.
        base_size: kernel / position-embedding length the parameters are stored at (the
            feature size at the training resolution); resized to the input every forward.
        groups: ``in_channels`` for depthwise (default), 1 for dense.
        use_pe: add a learned position embedding ``(1, C, base, 1)`` before the conv.
        bias: learn a per-channel bias.
        impl: ``'auto' | 'direct' | 'fft' | 'gemm'`` (:mod:`parc_mm.ops.dispatch`).
        init_std: std of the truncated-normal init of kernel and PE (None: conv default).

    Parameter names (``weight``, ``bias``, ``pe``) and shapes (conv2d layout) follow the
    official code so checkpoints convert by renaming only.
    """

    def __init__(self,
                 in_channels: int,
                 direction: str = 'H',
                 base_size: int = 14,
                 out_channels: Optional[int] = None,
                 groups: Optional[int] = None,
                 use_pe: bool = True,
                 bias: bool = True,
                 impl: str = 'auto',
                 init_std: Optional[float] = 0.02) -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"ParCConv2d direction must be 'H' or 'W', got {direction!r}")
        out_channels = in_channels if out_channels is None else out_channels
        groups = in_channels if groups is None else groups
        for name, v in (('in_channels', in_channels), ('out_channels', out_channels),
                        ('groups', groups), ('base_size', base_size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f'ParCConv2d {name} must be a positive int, got {v!r}')
        if in_channels % groups or out_channels % groups:
            raise ValueError(f'in_channels ({in_channels}) and out_channels ({out_channels}) '
                             f'must be divisible by groups ({groups})')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.direction = direction
        self.base_size = base_size
        self.groups = groups
        self.impl = check_impl(impl)
        self.init_std = init_std
        kshape = (base_size, 1) if direction == 'H' else (1, base_size)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *kshape))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.pe = nn.Parameter(torch.empty(1, in_channels, *kshape)) if use_pe else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.init_std is None:
            nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
            if self.bias is not None:
                fan_in = self.weight[0].numel()
                bound = 1 / math.sqrt(fan_in)
                nn.init.uniform_(self.bias, -bound, bound)
        else:
            nn.init.trunc_normal_(self.weight, std=self.init_std)
            if self.bias is not None:
                nn.init.zeros_(self.bias)
        if self.pe is not None:
            nn.init.trunc_normal_(self.pe, std=0.02 if self.init_std is None else self.init_std)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, direction={self.direction}, '
                f'base_size={self.base_size}, groups={self.groups}, '
                f'pe={self.pe is not None}, bias={self.bias is not None}, impl={self.impl}')

    def forward(self, x: torch.Tensor, impl: Optional[str] = None) -> torch.Tensor:
        """``impl``: this call's implementation instead of ``self.impl`` (a block that knows
        better for its shapes, e.g. the token mixer)."""
        if x.dim() != 4:
            raise ValueError(f'ParCConv2d expects (B, C, H, W), got shape {tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'ParCConv2d-{self.direction} built for {self.in_channels} channels '
                             f'got an input with {x.shape[1]} (shape {tuple(x.shape)})')
        n = x.shape[axis(self.direction)]
        cache = _inference_cache(self, n, x, ('weight', 'pe'), extra=(self.bias, ))
        if cache is not None and x.shape[0]:
            return self._cached_forward(x, cache, impl or self.impl)
        if tracing_onnx() and x.shape[0]:
            return self._traced_forward(x, n, impl or self.impl)
        # training, autograd or tracing (or an empty batch): resize and add the PE afresh
        w = resize_to(self.weight, n, self.direction)
        pe = None if self.pe is None else resize_to(self.pe, n, self.direction)
        if pe is not None:
            x = x + pe.to(x.dtype)
        return circular_conv(x, w, self.bias, self.direction, self.groups, impl or self.impl)

    def _traced_forward(self, x: torch.Tensor, n: int, impl: str) -> torch.Tensor:
        """What an ONNX export (TorchScript tracing) holds: ``conv(x) + (conv(pe) + b)``,
        the kernel and that constant derived outside the trace (constants of the graph):
        one conv and one broadcast add, no pass over the input for the PE."""
        with untraced():
            w = resize_to(self.weight, n, self.direction).detach().to(x.dtype)
            const = None
            if self.pe is not None:
                pe = resize_to(self.pe, n, self.direction).to(x.dtype)
                const = circular_conv(pe, w, self.bias, self.direction, self.groups, impl)
            elif self.bias is not None:
                const = self.bias.view(1, -1, 1, 1).to(x.dtype)
            const = None if const is None else const.detach()
        y = circular_conv(x, w, None, self.direction, self.groups, impl)
        return y if const is None else y + const

    def _cached_forward(self, x: torch.Tensor, cache: dict, impl: str) -> torch.Tensor:
        """Eval-mode inference: ``conv(x + pe) + b = conv(x) + (conv(pe) + b)``, and the
        second term is a constant of the layer, computed once per impl and dtype; the impl
        ``auto`` resolves to is kept per input configuration. Each call is one conv and one
        add: the PE and bias passes over the activation and the per-call dispatch are gone."""
        out_dtype = autocast_out_dtype(x, self.weight)
        w = cache['weight']
        impls = cache.setdefault('impls', {})
        key = (impl, generation(), x.shape, x.dtype, out_dtype)
        resolved = impls.get(key)
        if resolved is None:
            if len(impls) >= 256:  # many input shapes (detection, stale autotuner states)
                impls.clear()
            resolved = impls[key] = resolve_impl(impl, x, w, self.groups, self.direction,
                                                 out_dtype, cache)
        consts = cache.setdefault('consts', {})
        if (resolved, out_dtype) not in consts:
            pe, const = cache['pe'], None
            if pe is not None:  # (1, C, n, 1) / (1, C, 1, n): a valid input of the same conv
                const = circular_conv(pe, w, self.bias, self.direction, self.groups, resolved,
                                      kernel_cache=cache)
            elif self.bias is not None:
                const = self.bias.view(1, -1, 1, 1)
            consts[resolved, out_dtype] = None if const is None else const.to(out_dtype)
        const = consts[resolved, out_dtype]
        y = compute(resolved, x, w, self.groups, self.direction, out_dtype, cache)
        return y if const is None else y.add_(const)  # y is this call's own fresh tensor

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        self.set_inference(False)
        resize_on_load(self, ('weight', 'pe'), state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    @torch.no_grad()
    def resize_(self, size: int) -> 'ParCConv2d':
        """Permanently resample kernel and PE to ``size`` (e.g. to export at a fixed
        resolution, or to adopt a checkpoint trained at another base size)."""
        self.set_inference(False)
        self.weight = resized_param(self.weight, size, self.direction)
        if self.pe is not None:
            self.pe = resized_param(self.pe, size, self.direction)
        self.base_size = size
        return self


class ParCPosEmbed(InferencePlanMixin, nn.Module):
    """A learned position embedding ``(1, C, base, 1)`` (H) or ``(1, C, 1, base)`` (W) added
    to the input, resized to the input like the ParC kernels. For blocks that normalise
    between the embedding and the conv (ParC-Net's ``x + pe -> BN -> ParC``); otherwise use
    ``ParCConv2d(use_pe=True)``.
    """

    def __init__(self, channels: int, direction: str = 'H', base_size: int = 14,
                 init_std: float = 0.02) -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"ParCPosEmbed direction must be 'H' or 'W', got {direction!r}")
        if isinstance(base_size, bool) or not isinstance(base_size, int) or base_size < 1:
            raise ValueError(f'ParCPosEmbed base_size must be a positive int, got {base_size!r}')
        self.channels = channels
        self.direction = direction
        self.base_size = base_size
        kshape = (base_size, 1) if direction == 'H' else (1, base_size)
        self.weight = nn.Parameter(torch.empty(1, channels, *kshape))
        nn.init.trunc_normal_(self.weight, std=init_std)

    def extra_repr(self) -> str:
        return f'{self.channels}, direction={self.direction}, base_size={self.base_size}'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f'ParCPosEmbed-{self.direction} built for (B, {self.channels}, H, W)'
                             f' got {tuple(x.shape)}')
        n = x.shape[axis(self.direction)]
        cache = _inference_cache(self, n, x, ('weight', ))
        pe = resize_to(self.weight, n, self.direction) if cache is None else cache['weight']
        return x + pe.to(x.dtype)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        self.set_inference(False)
        resize_on_load(self, ('weight',), state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    @torch.no_grad()
    def resize_(self, size: int) -> 'ParCPosEmbed':
        """Permanently resample the embedding to ``size``."""
        self.set_inference(False)
        self.weight = resized_param(self.weight, size, self.direction)
        self.base_size = size
        return self


class ParCHW(nn.Module):
    """The ParC mixer of ParC-ConvNets: channels split in half, the first half convolved
    globally along H, the second along W, then concatenated (official ``gcc_H``/``gcc_W``).

    Args:
        channels: input = output channels (even).
        base_size: int or (base_h, base_w).
        dense: dense (groups=1) kernels on each half, as ParC-ResNet50; default depthwise.
        Other args as :class:`ParCConv2d`.
    """

    def __init__(self,
                 channels: int,
                 base_size: Union[int, Sequence[int]] = 14,
                 dense: bool = False,
                 use_pe: bool = True,
                 bias: bool = True,
                 impl: str = 'auto',
                 init_std: Optional[float] = 0.02) -> None:
        super().__init__()
        if channels % 2:
            raise ValueError('ParCHW splits channels in half: channels must be even, got '
                             f'{channels}')
        bh, bw = (base_size, base_size) if isinstance(base_size, int) else tuple(base_size)
        half = channels // 2
        g = 1 if dense else half
        self.channels = channels
        self.parc_h = ParCConv2d(half, 'H', bh, groups=g, use_pe=use_pe, bias=bias, impl=impl,
                                 init_std=init_std)
        self.parc_w = ParCConv2d(half, 'W', bw, groups=g, use_pe=use_pe, bias=bias, impl=impl,
                                 init_std=init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f'ParCHW built for (B, {self.channels}, H, W) got {tuple(x.shape)}')
        xh, xw = halves(x)
        return torch.cat([self.parc_h(xh), self.parc_w(xw)], dim=1)

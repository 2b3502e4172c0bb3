"""ParC: position-aware circular convolution (ParC-Net, ECCV'22) and Fast-ParC.

The operator is a circular *cross-correlation* along one spatial axis with a kernel as long
as that axis (a global kernel)::

    xp = x + pe
    y[o, i] = b[o] + sum_{c in group(o)} sum_{s=0}^{n-1} k[o, c, s] * xp[c, (i + s) mod n]

Three exact implementations compute it:

* ``direct``: ``conv2d`` on ``cat(xp, xp[:n-1])`` along the axis (what the official code does);
* ``fft``:    ``irfft(rfft(xp) * conj(rfft(k)), n)`` (Fast-ParC), always in float32;
* ``gemm``:   ``M @ xp`` with the circulant matrix ``M[o, c, i, j] = k[o, c, (j - i) mod n]``.

``auto`` picks one per call from the shape, device and dtype (see :func:`select_impl`).

Parameters are stored at a *base* size and resized to the actual length on every forward with
``F.interpolate(bilinear, align_corners=True)`` (a no-op at the base size), as the first
author's detection/segmentation code does; ImageNet checkpoints therefore load unchanged.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

IMPLS = ('direct', 'fft', 'gemm')
_ALL_IMPLS = IMPLS + ('auto', )
_DIRECTIONS = ('H', 'W')

# Global override of ``impl='auto'`` (None = use the measured rule). See ``parc_impl``.
_GLOBAL_IMPL: Optional[str] = None


def _check_impl(impl: str) -> str:
    if impl not in _ALL_IMPLS:
        raise ValueError(f'Unknown ParC impl {impl!r}; choose one of {_ALL_IMPLS}.')
    return impl


def set_default_impl(impl: Optional[str]) -> None:
    """Force every ParC module built with ``impl='auto'`` to use ``impl`` (None restores
    the measured rule). Modules built with an explicit impl are not affected."""
    global _GLOBAL_IMPL
    _GLOBAL_IMPL = None if impl is None else _check_impl(impl)
    if _GLOBAL_IMPL == 'auto':
        _GLOBAL_IMPL = None


@contextlib.contextmanager
def parc_impl(impl: Optional[str]) -> Iterator[None]:
    """Context manager form of :func:`set_default_impl`."""
    old = _GLOBAL_IMPL
    set_default_impl(impl)
    try:
        yield
    finally:
        set_default_impl(old)


def select_impl(n: int, other: int, channels: int, device: torch.device,
                dtype: torch.dtype, dense: bool = False) -> str:
    """The fastest exact implementation for one ParC call (``impl='auto'``).

    Args:
        n: length of the global axis (the kernel length after resizing).
        other: length of the other spatial axis.
        channels: input channels of this ParC call.
        dense: True for dense (groups=1) kernels as ParC-ResNet50 uses.

    The rule is measured (``tools/analysis/benchmark_parc.py``; README "Choosing the
    implementation"), not guessed:

    * CPU (2-core x86, torch 2.14, fp32; sweep in the README): for global lengths
      ``n >= 24`` the FFT is fastest (2-3x over direct at n=96-128, 10x for dense kernels);
      below that the three are within ~20%: the circulant GEMM wins on small maps
      (``channels * n * other <= 20k``), oneDNN's direct conv on larger ones. Dense kernels
      (C x C x n): direct below 24, FFT above (the dense GEMM is 10-80x slower).
    * CUDA: cuDNN direct wins on small maps (launch-bound); FFT/GEMM have a ~0.18 ms
      floor, so they win once ``n * other * channels`` is large (stage 1-2 of detection
      inputs). GEMM is preferred in reduced precision (tensor cores; cuFFT half needs
      power-of-two sizes, so the FFT path runs in float32 anyway).
    """
    if _GLOBAL_IMPL is not None:
        return _GLOBAL_IMPL
    if device.type == 'cuda':
        work = n * other * channels
        if work < 1_500_000:
            return 'direct'
        if dtype in (torch.float16, torch.bfloat16):
            return 'gemm'
        return 'fft' if (n >= 128 or dense) else 'gemm'
    # CPU (and anything else)
    if n >= 24:
        return 'fft'
    if dense:
        return 'direct'
    return 'gemm' if channels * n * other <= 20_000 else 'direct'


def _axis(direction: str) -> int:
    return 2 if direction == 'H' else 3


def resize_to(param: torch.Tensor, n: int, direction: str) -> torch.Tensor:
    """Resize a kernel ``(O, I, K, 1)``/``(O, I, 1, K)`` or position embedding
    ``(1, C, K, 1)``/``(1, C, 1, K)`` to length ``n`` along its global axis
    (bilinear, align_corners=True; identity when already of length ``n``)."""
    ax = _axis(direction)
    if param.shape[ax] == n:
        return param
    size = (n, 1) if direction == 'H' else (1, n)
    # interpolate has no float64/half kernels on every backend for 'bilinear' under
    # autocast; keep the parameter's dtype.
    return F.interpolate(param, size=size, mode='bilinear', align_corners=True)


def _circulant(k: torch.Tensor) -> torch.Tensor:
    """(..., n) -> (..., n, n) with M[..., i, j] = k[..., (j - i) mod n]."""
    n = k.shape[-1]
    ar = torch.arange(n, device=k.device)
    idx = (ar.view(1, n) - ar.view(n, 1)) % n
    return k[..., idx]


def _direct(x: torch.Tensor, w: torch.Tensor, groups: int, direction: str) -> torch.Tensor:
    # NCHW-contiguous: conv on a channels_last-strided concat is 5-50x slower.
    x = x.contiguous()
    if direction == 'H':
        xp = torch.cat([x, x[:, :, :-1]], dim=2) if x.shape[2] > 1 else x
    else:
        xp = torch.cat([x, x[:, :, :, :-1]], dim=3) if x.shape[3] > 1 else x
    return F.conv2d(xp, w, None, 1, 0, 1, groups)


def _fft(x: torch.Tensor, w: torch.Tensor, groups: int, direction: str) -> torch.Tensor:
    b, c, h, wd = x.shape
    o, ci = w.shape[0], w.shape[1]
    ax = _axis(direction)
    n = x.shape[ax]
    k = w.reshape(o, ci, n)
    xf = torch.fft.rfft(x, n=n, dim=ax)
    kf = torch.fft.rfft(k, n=n, dim=-1).conj()
    nf = kf.shape[-1]
    if ci == 1 and o == c:  # depthwise: a broadcast product
        kf = kf.reshape(1, o, nf, 1) if direction == 'H' else kf.reshape(1, o, 1, nf)
        yf = xf * kf
    else:
        co = o // groups
        kf = kf.reshape(groups, co, ci, nf)
        if direction == 'H':
            yf = torch.einsum('bgifw,goif->bgofw', xf.reshape(b, groups, ci, nf, wd), kf)
            yf = yf.reshape(b, o, nf, wd)
        else:
            yf = torch.einsum('bgihf,goif->bgohf', xf.reshape(b, groups, ci, h, nf), kf)
            yf = yf.reshape(b, o, h, nf)
    return torch.fft.irfft(yf, n=n, dim=ax)


def _gemm(x: torch.Tensor, w: torch.Tensor, groups: int, direction: str) -> torch.Tensor:
    b, c, h, wd = x.shape
    o, ci = w.shape[0], w.shape[1]
    n = h if direction == 'H' else wd
    m = _circulant(w.reshape(o, ci, n))  # (O, Ci, n_i, n_j)
    if ci == 1 and o == c:  # depthwise: a batch of (n x n) matrices, one per channel
        m = m.reshape(o, n, n)
        if direction == 'H':
            return torch.matmul(m, x)
        return torch.matmul(x, m.transpose(-1, -2))
    co = o // groups
    # (G, Co*n_i, Ci*n_j)
    m = m.reshape(groups, co, ci, n, n).permute(0, 1, 3, 2, 4).reshape(groups, co * n, ci * n)
    if direction == 'H':
        xg = x.reshape(b, groups, ci * n, wd)
        return torch.matmul(m, xg).reshape(b, o, n, wd)
    xg = x.reshape(b, groups, ci, h, n).permute(0, 1, 3, 2, 4).reshape(b, groups, h, ci * n)
    y = torch.matmul(xg, m.transpose(-1, -2))  # (B, G, H, Co*n)
    return y.reshape(b, groups, h, co, n).permute(0, 1, 3, 2, 4).reshape(b, o, h, n)


def _autocast_out_dtype(x: torch.Tensor, w: torch.Tensor) -> torch.dtype:
    dev = x.device.type
    if torch.is_autocast_enabled(dev) and x.is_floating_point():
        return torch.get_autocast_dtype(dev)
    return torch.promote_types(x.dtype, w.dtype)


def circular_conv(x: torch.Tensor,
                  weight: torch.Tensor,
                  bias: Optional[torch.Tensor] = None,
                  direction: str = 'H',
                  groups: int = 1,
                  impl: str = 'auto') -> torch.Tensor:
    """Circular cross-correlation of ``x`` along H or W with a global kernel.

    Args:
        x: ``(B, C, H, W)``.
        weight: ``(O, C // groups, H, 1)`` for direction H, ``(O, C // groups, 1, W)`` for W;
            its global length must equal the input's (use :func:`resize_to` first).
        bias: ``(O,)`` or None.
        direction: ``'H'`` or ``'W'``.
        groups: conv groups (C for depthwise, 1 for dense).
        impl: ``'direct' | 'fft' | 'gemm' | 'auto'``.

    Returns:
        ``(B, O, H, W)``. The FFT path runs in float32 (also under autocast) and returns the
        dtype the direct path would.
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be 'H' or 'W', got {direction!r}")
    if x.dim() != 4:
        raise ValueError(f'ParC expects a 4-D (B, C, H, W) input, got shape {tuple(x.shape)}')
    if weight.dim() != 4:
        raise ValueError(f'ParC weight must be 4-D, got shape {tuple(weight.shape)}')
    if not isinstance(groups, int) or groups < 1 or weight.shape[0] % groups:
        raise ValueError(f'ParC-{direction} groups must be a positive int dividing the '
                         f'{weight.shape[0]} output channels, got {groups!r}')
    ax = _axis(direction)
    n = x.shape[ax]
    if weight.shape[ax] != n or weight.shape[5 - ax] != 1:
        raise ValueError(
            f'ParC-{direction} weight {tuple(weight.shape)} does not fit input {tuple(x.shape)}: '
            f'expected (O, C/groups, {n if ax == 2 else 1}, {1 if ax == 2 else n}); '
            'resize it with parc_mm.ops.resize_to first.')
    if x.shape[1] != weight.shape[1] * groups:
        raise ValueError(f'ParC-{direction} expects {weight.shape[1] * groups} input channels '
                         f'(weight {tuple(weight.shape)}, groups={groups}), got {x.shape[1]}')
    if bias is not None and bias.shape != (weight.shape[0], ):
        raise ValueError(f'ParC-{direction} bias must have shape ({weight.shape[0]},) (one per '
                         f'output channel), got {tuple(bias.shape)}')
    impl = _check_impl(impl)
    out_dtype = _autocast_out_dtype(x, weight)
    if x.shape[0] == 0:  # empty batch: every impl returns an empty tensor
        return x.new_zeros((0, weight.shape[0], x.shape[2], x.shape[3]), dtype=out_dtype)
    if impl == 'auto':
        impl = select_impl(n, x.shape[5 - ax], x.shape[1], x.device, x.dtype,
                           dense=weight.shape[1] > 1)
    if impl == 'fft':
        # cuFFT in half precision only takes power-of-two sizes: compute in float32.
        cdt = torch.float64 if torch.float64 in (x.dtype, weight.dtype) else torch.float32
        with torch.autocast(x.device.type, enabled=False):
            y = _fft(x.to(cdt), weight.to(cdt), groups, direction)
    else:
        # Outside autocast mixed input / weight dtypes follow type promotion (an fp16 input
        # into an fp32 module computes and returns fp32), the same for every impl.
        if not torch.is_autocast_enabled(x.device.type):
            x, weight = x.to(out_dtype), weight.to(out_dtype)
        fn = _direct if impl == 'direct' else _gemm
        y = fn(x, weight, groups, direction)
        y = _nan_where_not_finite(y, x, groups, ax)
    y = y.to(out_dtype)
    if bias is not None:
        y = y + bias.to(y.dtype).view(1, -1, 1, 1)
    return y


def _nan_where_not_finite(y: torch.Tensor, x: torch.Tensor, groups: int, ax: int) -> torch.Tensor:
    """Non-finite inputs give NaN in every output that sums over them (the whole row or column
    of the global axis, all output channels of the group): what the FFT computes. Without this
    direct/gemm give +-inf there, and ``auto`` would change the result with the map size."""
    finite = torch.isfinite(x).all(dim=ax, keepdim=True)  # (B, C, 1, W) or (B, C, H, 1)
    b, c = x.shape[:2]
    if groups != c or y.shape[1] != c:  # dense / grouped: any channel of the group
        finite = finite.reshape(b, groups, c // groups, *finite.shape[2:]).all(2, keepdim=True)
        finite = finite.expand(b, groups, y.shape[1] // groups, *finite.shape[3:])
        finite = finite.reshape(b, y.shape[1], *finite.shape[3:])
    return torch.where(finite, y, torch.full((), float('nan'), dtype=y.dtype, device=y.device))


def _resize_on_load(module: nn.Module, names: Sequence[str], state_dict: dict,
                    prefix: str) -> None:
    """A checkpoint trained at another base size (e.g. kernels of 16 loaded into a model built
    with base 14): resample its kernel / PE tensors to the module's base size and say so."""
    ax = _axis(module.direction)
    for name in names:
        key = prefix + name
        ours = getattr(module, name)
        theirs = state_dict.get(key)
        if ours is None or theirs is None or theirs.dim() != 4:
            continue
        same_rest = all(theirs.shape[d] == ours.shape[d] for d in range(4) if d != ax)
        if theirs.shape[ax] != ours.shape[ax] and same_rest and theirs.shape[5 - ax] == 1:
            from mmengine.logging import print_log
            print_log(f'ParC: resized {key} from length {theirs.shape[ax]} to the model\'s '
                      f'base size {ours.shape[ax]} (bilinear, align_corners=True)',
                      logger='current')
            state_dict[key] = resize_to(theirs.to(ours.dtype), ours.shape[ax], module.direction)


def _resized_param(p: nn.Parameter, size: int, direction: str) -> nn.Parameter:
    """A resampled copy of ``p`` that keeps its ``requires_grad`` (frozen stays frozen)."""
    return nn.Parameter(resize_to(p.data, size, direction), requires_grad=p.requires_grad)


class ParCConv2d(nn.Module):
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
        impl: ``'auto' | 'direct' | 'fft' | 'gemm'`` (see :func:`select_impl`).
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
        if direction not in _DIRECTIONS:
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
        self.impl = _check_impl(impl)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f'ParCConv2d expects (B, C, H, W), got shape {tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'ParCConv2d-{self.direction} built for {self.in_channels} channels '
                             f'got an input with {x.shape[1]} (shape {tuple(x.shape)})')
        n = x.shape[_axis(self.direction)]
        if self.pe is not None:
            x = x + resize_to(self.pe, n, self.direction).to(x.dtype)
        w = resize_to(self.weight, n, self.direction)
        return circular_conv(x, w, self.bias, self.direction, self.groups, self.impl)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        _resize_on_load(self, ('weight', 'pe'), state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    @torch.no_grad()
    def resize_(self, size: int) -> 'ParCConv2d':
        """Permanently resample kernel and PE to ``size`` (e.g. to export at a fixed
        resolution, or to adopt a checkpoint trained at another base size)."""
        self.weight = _resized_param(self.weight, size, self.direction)
        if self.pe is not None:
            self.pe = _resized_param(self.pe, size, self.direction)
        self.base_size = size
        return self


class ParCPosEmbed(nn.Module):
    """A learned position embedding ``(1, C, base, 1)`` (H) or ``(1, C, 1, base)`` (W) added
    to the input, resized to the input like the ParC kernels. For blocks that normalise
    between the embedding and the conv (ParC-Net's ``x + pe -> BN -> ParC``); otherwise use
    ``ParCConv2d(use_pe=True)``.
    """

    def __init__(self, channels: int, direction: str = 'H', base_size: int = 14,
                 init_std: float = 0.02) -> None:
        super().__init__()
        if direction not in _DIRECTIONS:
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
        n = x.shape[_axis(self.direction)]
        return x + resize_to(self.weight, n, self.direction).to(x.dtype)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        _resize_on_load(self, ('weight',), state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    @torch.no_grad()
    def resize_(self, size: int) -> 'ParCPosEmbed':
        """Permanently resample the embedding to ``size``."""
        self.weight = _resized_param(self.weight, size, self.direction)
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
        xh, xw = torch.chunk(x, 2, dim=1)
        return torch.cat([self.parc_h(xh), self.parc_w(xw)], dim=1)


def set_impl(module: nn.Module, impl: str) -> nn.Module:
    """Set ``impl`` on every ParCConv2d inside ``module`` (per-model override)."""
    _check_impl(impl)
    for m in module.modules():
        if isinstance(m, ParCConv2d):
            m.impl = impl
    return module


def fix_input_size(module: nn.Module, size: Tuple[int, int], impl: str = 'direct') -> nn.Module:
    """Prepare a model for export at a fixed input resolution.

    Runs one dummy forward to record every ParC layer's actual map size, permanently
    resamples kernels/PEs to it (so no interpolation is traced) and selects ``impl``
    (``direct`` exports to plain ONNX Pad-free Concat+Conv; ``gemm`` to MatMul).
    """
    sizes = {}
    hooks = []
    resizable = (ParCConv2d, ParCPosEmbed)
    for name, m in module.named_modules():
        if isinstance(m, resizable):
            hooks.append(m.register_forward_pre_hook(
                lambda mod, args, _n=name: sizes.__setitem__(
                    _n, args[0].shape[_axis(mod.direction)])))
    param = next(module.parameters())
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, *size, device=param.device, dtype=param.dtype))
    finally:
        for h in hooks:
            h.remove()
        module.train(was_training)
    for name, m in module.named_modules():
        if isinstance(m, resizable):
            if name not in sizes:
                raise RuntimeError(f'ParC layer {name} was not used in the forward at {size}')
            m.resize_(sizes[name])
            if isinstance(m, ParCConv2d):
                m.impl = impl
    return module

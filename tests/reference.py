"""Independent functional references of the official ParC models, written from the operator
definition (the circular cross-correlation in parc_mm/ops/functional.py): they read the *official*
state-dict layout directly and compute ParC with explicit ``torch.roll`` sums, sharing no code
with parc_mm."""
from __future__ import annotations

import json
import os.path as osp
from typing import Dict, List

import torch
import torch.nn.functional as F

# copy of shared/fixtures/official_parc_state_dicts.json (key names/shapes, param counts)
FIXTURE = osp.join(osp.dirname(__file__), 'data', 'official_parc_state_dicts.json')


def fixture(name: str) -> dict:
    with open(FIXTURE) as f:
        return json.load(f)[name]


def random_state_dict(name: str, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random tensors with the official key names and shapes (norm weights around 1)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in fixture(name)['state_dict'].items():
        if k.endswith('num_batches_tracked'):
            sd[k] = torch.tensor(0)
        elif k.endswith('running_var'):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        else:
            t = torch.randn(shape, generator=g) * 0.1
            if len(shape) == 1 and ('norm' in k or 'bn' in k) and k.endswith('weight'):
                t = t + 1
            sd[k] = t
    # ParC-Net registers its last downsampling block twice (``residual`` is ``layer_5.0``):
    # a real checkpoint holds the same values under both names.
    for k in [k for k in sd if k.startswith('residual.')]:
        alias = 'layer_5.0.' + k[len('residual.'):]
        if alias in sd:
            sd[k] = sd[alias]
    return sd


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def to_f64(model: torch.nn.Module, sd: Dict[str, torch.Tensor]):
    """``model`` and a state dict in float64 (random BN statistics blow activations up, so
    the reference comparisons run in double precision)."""
    return model.double(), {k: v.double() if v.is_floating_point() else v
                            for k, v in sd.items()}


def _resize(p: torch.Tensor, n: int, dim: int) -> torch.Tensor:
    if p.shape[dim] == n:
        return p
    # linear interpolation with align_corners=True, written out
    k = p.shape[dim]
    if n == 1:
        pos = torch.zeros(1, dtype=torch.float64)
    else:
        pos = torch.arange(n, dtype=torch.float64) * (k - 1) / (n - 1)
    lo = pos.floor().long().clamp(max=max(k - 2, 0))
    hi = (lo + 1).clamp(max=k - 1)
    frac = (pos - lo).to(p.dtype)
    a, b = p.index_select(dim, lo), p.index_select(dim, hi)
    shape = [1] * p.dim()
    shape[dim] = n
    return a * (1 - frac.view(shape)) + b * frac.view(shape)


def parc_roll(x, weight, bias, pe, dim: int):
    """Depthwise or dense ParC along ``dim`` (2=H, 3=W) by explicit rolls."""
    n = x.shape[dim]
    if pe is not None:
        x = x + _resize(pe, n, dim)
    w = _resize(weight, n, dim)
    o, ci = w.shape[:2]
    k = w.reshape(o, ci, n)
    c = x.shape[1]
    groups = c // ci
    co = o // groups
    out = torch.zeros(x.shape[0], o, x.shape[2], x.shape[3], dtype=x.dtype)
    for s in range(n):
        xs = torch.roll(x, -s, dims=dim)  # xs[..., i] = x[..., (i + s) mod n]
        if ci == 1:
            out += k[:, 0, s].view(1, o, 1, 1) * xs
        else:
            xg = xs.reshape(x.shape[0], groups, ci, x.shape[2], x.shape[3])
            kg = k[:, :, s].reshape(groups, co, ci)
            out += torch.einsum('bgihw,goi->bgohw', xg, kg).reshape(out.shape)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def _ln_cf(x, w, b, eps=1e-6):
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    return w.view(1, -1, 1, 1) * (x - u) / torch.sqrt(s + eps) + b.view(1, -1, 1, 1)


def official_convnext(sd: Dict[str, torch.Tensor], x: torch.Tensor, det: bool = False,
                      depths=(3, 3, 9, 3)) -> List[torch.Tensor]:
    """Forward of the official ParC-ConvNeXt (classification: returns [logits]; detection
    fork: returns the 4 normalised stage outputs)."""
    outs = []
    for i in range(4):
        p = f'downsample_layers.{i}.'
        if i == 0:
            x = F.conv2d(x, sd[p + '0.weight'], sd[p + '0.bias'], stride=4)
            x = _ln_cf(x, sd[p + '1.weight'], sd[p + '1.bias'])
        else:
            x = _ln_cf(x, sd[p + '0.weight'], sd[p + '0.bias'])
            x = F.conv2d(x, sd[p + '1.weight'], sd[p + '1.bias'], stride=2)
        for j in range(depths[i]):
            b = f'stages.{i}.{j}.'
            inp = x
            if b + 'dwconv.weight' in sd:
                x = F.conv2d(x, sd[b + 'dwconv.weight'], sd[b + 'dwconv.bias'], padding=3,
                             groups=x.shape[1])
            else:
                xh, xw = torch.chunk(x, 2, dim=1)
                if det:
                    h = (sd[b + 'gcc_conv_1H.weight'], sd[b + 'gcc_conv_1H.bias'],
                         sd[b + 'gcc_conv_1H.meta_pe'])
                    w = (sd[b + 'gcc_conv_2W.weight'], sd[b + 'gcc_conv_2W.bias'],
                         sd[b + 'gcc_conv_2W.meta_pe'])
                else:
                    h = (sd[b + 'gcc_H.gcc_conv.weight'], sd[b + 'gcc_H.gcc_conv.bias'],
                         sd[b + 'gcc_H.pe'])
                    w = (sd[b + 'gcc_W.gcc_conv.weight'], sd[b + 'gcc_W.gcc_conv.bias'],
                         sd[b + 'gcc_W.pe'])
                x = torch.cat([parc_roll(xh, *h, dim=2), parc_roll(xw, *w, dim=3)], dim=1)
            x = x.permute(0, 2, 3, 1)
            x = F.layer_norm(x, (x.shape[-1], ), sd[b + 'norm.weight'], sd[b + 'norm.bias'],
                             eps=1e-6)
            x = F.linear(x, sd[b + 'pwconv1.weight'], sd[b + 'pwconv1.bias'])
            x = F.gelu(x)
            x = F.linear(x, sd[b + 'pwconv2.weight'], sd[b + 'pwconv2.bias'])
            x = x * sd[b + 'gamma']
            x = inp + x.permute(0, 3, 1, 2)
        if det:
            outs.append(_ln_cf(x, sd[f'norm{i}.weight'], sd[f'norm{i}.bias']))
    if det:
        return outs
    x = x.mean([-2, -1])
    x = F.layer_norm(x, (x.shape[-1], ), sd['norm.weight'], sd['norm.bias'], eps=1e-6)
    return [F.linear(x, sd['head.weight'], sd['head.bias'])]


def _bn(x, sd, p):
    return F.batch_norm(x, sd[p + '.running_mean'], sd[p + '.running_var'], sd[p + '.weight'],
                        sd[p + '.bias'], False, 0.0, 1e-5)


def official_resnet50(sd: Dict[str, torch.Tensor], x: torch.Tensor, det: bool = False,
                      depths=(3, 4, 6, 3)) -> List[torch.Tensor]:
    """Forward (eval-mode BN) of the official ParC-ResNet50 (``parc_H``/``parc_W``) or the
    detection fork (``gcc_H``/``gcc_W``, returns the 4 stage outputs)."""
    x = F.relu(_bn(F.conv2d(x, sd['conv1.weight'], stride=2, padding=3), sd, 'bn1'))
    x = F.max_pool2d(x, 3, 2, 1)
    outs = []
    for i, d in enumerate(depths):
        for j in range(d):
            p = f'layer{i + 1}.{j}.'
            stride = 2 if (j == 0 and i > 0) else 1
            idt = x
            out = F.relu(_bn(F.conv2d(x, sd[p + 'conv1.weight']), sd, p + 'bn1'))
            tag = 'gcc' if det else 'parc'
            if p + f'{tag}_H.pe' in sd:
                a, b = torch.chunk(out, 2, dim=1)
                h = (sd[p + f'{tag}_H.gcc_conv.weight'], sd[p + f'{tag}_H.gcc_conv.bias'],
                     sd[p + f'{tag}_H.pe'])
                w = (sd[p + f'{tag}_W.gcc_conv.weight'], sd[p + f'{tag}_W.gcc_conv.bias'],
                     sd[p + f'{tag}_W.pe'])
                out = torch.cat([parc_roll(a, *h, dim=2), parc_roll(b, *w, dim=3)], 1)
            else:
                out = F.conv2d(out, sd[p + 'conv2.weight'], stride=stride, padding=1)
            out = F.relu(_bn(out, sd, p + 'bn2'))
            out = _bn(F.conv2d(out, sd[p + 'conv3.weight']), sd, p + 'bn3')
            if p + 'downsample.0.weight' in sd:
                idt = _bn(F.conv2d(x, sd[p + 'downsample.0.weight'], stride=stride), sd,
                          p + 'downsample.1')
            x = F.relu(out + idt)
        outs.append(x)
    if det:
        return outs
    x = x.mean([-2, -1])
    return [F.linear(x, sd['fc.weight'], sd['fc.bias'])]


def official_mv2(sd: Dict[str, torch.Tensor], x: torch.Tensor, det: bool = False
                 ) -> List[torch.Tensor]:
    """Forward (eval BN) of the official ParC-MobileNetV2 (``features.N``; returns [logits])
    or the detection fork (``layerX.Y``; returns outputs 1, 2, 4, 7)."""
    cfg = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]
    stem = 'conv1.' if det else 'features.0.'
    x = F.relu6(_bn(F.conv2d(x, sd[stem + '0.weight'], stride=2, padding=1), sd, stem + '1'))
    outs = []
    n = 1
    for li, (t, c, reps, s) in enumerate(cfg):
        for b in range(reps):
            p = f'layer{li + 1}.{b}.' if det else f'features.{n}.'
            stride = s if b == 0 else 1
            inp = x
            if p + 'gcc_H.gcc_conv.weight' in sd:
                h = F.relu6(_bn(F.conv2d(x, sd[p + 'pw_expand.0.weight']), sd, p + 'pw_expand.1'))
                a, bb = torch.chunk(h, 2, dim=1)
                a = parc_roll(a, sd[p + 'gcc_H.gcc_conv.weight'], sd[p + 'gcc_H.gcc_conv.bias'],
                              sd.get(p + 'gcc_H.pe'), dim=2)
                bb = parc_roll(bb, sd[p + 'gcc_W.gcc_conv.weight'],
                               sd[p + 'gcc_W.gcc_conv.bias'], sd.get(p + 'gcc_W.pe'), dim=3)
                h = F.relu6(_bn(torch.cat([a, bb], 1), sd, p + 'bn'))
                h = _bn(F.conv2d(h, sd[p + 'pw_linear.0.weight']), sd, p + 'pw_linear.1')
            elif t == 1:
                w = sd[p + 'conv.0.0.weight']
                h = F.relu6(_bn(F.conv2d(x, w, stride=stride, padding=1, groups=w.shape[0]),
                                sd, p + 'conv.0.1'))
                h = _bn(F.conv2d(h, sd[p + 'conv.1.weight']), sd, p + 'conv.2')
            else:
                h = F.relu6(_bn(F.conv2d(x, sd[p + 'conv.0.0.weight']), sd, p + 'conv.0.1'))
                w = sd[p + 'conv.1.0.weight']
                h = F.relu6(_bn(F.conv2d(h, w, stride=stride, padding=1, groups=w.shape[0]),
                                sd, p + 'conv.1.1'))
                h = _bn(F.conv2d(h, sd[p + 'conv.2.weight']), sd, p + 'conv.3')
            x = inp + h if (stride == 1 and inp.shape[1] == h.shape[1]) else h
            n += 1
        if li in (1, 2, 4):
            outs.append(x)
    last = 'conv2.' if det else f'features.{n}.'
    x = F.relu6(_bn(F.conv2d(x, sd[last + '0.weight']), sd, last + '1'))
    if det:
        return outs + [x]
    return [F.linear(x.mean([-2, -1]), sd['classifier.1.weight'], sd['classifier.1.bias'])]


def official_parcnet(sd: Dict[str, torch.Tensor], x: torch.Tensor) -> List[torch.Tensor]:
    """Forward (eval BN) of the official ParC-Net-S / XS (cvnets ``edgeformer`` layout),
    written from the block description: returns the outputs of layers 1-5, the final 1x1
    conv and the logits. Fusion (concat / add) and groups are read off the weight shapes.
    On non-square inputs H kernels / PEs follow H and W ones W (the official code only
    runs square inputs, where both are the same)."""
    act = F.silu

    def cbr(x, p, stride=1, padding=0, use_act=True, dilation=1):
        w = sd[p + '.block.conv.weight']
        groups = x.shape[1] // w.shape[1]
        x = F.conv2d(x, w, stride=stride, padding=padding, groups=groups, dilation=dilation)
        if p + '.block.norm.weight' in sd:
            x = _bn(x, sd, p + '.block.norm')
        return act(x) if use_act else x

    def mv2(x, p, stride):
        h = cbr(x, p + '.block.exp_1x1')
        h = cbr(h, p + '.block.conv_3x3', stride=stride, padding=1)
        h = cbr(h, p + '.block.red_1x1', use_act=False)
        return x + h if stride == 1 and x.shape[1] == h.shape[1] else h

    def branch(x, p, first, second):
        d1, d2 = (2, 3) if first == 'H' else (3, 2)
        if p + f'meta_pe_1_{first}' in sd:
            x = x + _resize(sd[p + f'meta_pe_1_{first}'], x.shape[d1], d1)
        x = _bn(x, sd, p + ('pre_Norm_1' if first == 'H' else 'pre_Norm_2'))
        x = parc_roll(x, sd[p + f'meta_kernel_1_{first}'], sd.get(p + f'meta_1_{first}_bias'),
                      None, dim=d1)
        return parc_roll(x, sd[p + f'meta_kernel_2_{second}'],
                         sd.get(p + f'meta_2_{second}_bias'),
                         sd.get(p + f'meta_pe_2_{second}'), dim=d2)

    def gcc_block(x, p):
        a, b = torch.chunk(x, 2, dim=1)
        x = torch.cat([a + branch(a, p, 'H', 'W'), b + branch(b, p, 'W', 'H')], dim=1)
        f = _bn(x, sd, p + 'ffn.0')
        f = F.hardswish(F.conv2d(f, sd[p + 'ffn.1.weight'], sd[p + 'ffn.1.bias']))
        f = F.conv2d(f, sd[p + 'ffn.4.weight'], sd[p + 'ffn.4.bias'])
        g = F.hardswish(_bn(F.conv2d(f.mean([2, 3], keepdim=True), sd[p + 'ca.fc.0.weight']),
                            sd, p + 'ca.fc.1'))
        g = F.hardsigmoid(_bn(F.conv2d(g, sd[p + 'ca.fc.3.weight']), sd, p + 'ca.fc.4'))
        return x + f * g

    def unit(x, p):
        res = x
        y = cbr(x, p + 'dim_adaptive.0', padding=1)
        y = cbr(y, p + 'dim_adaptive.1', use_act=False)
        k = 0
        while p + f'spatial_global_rep.{k}.meta_kernel_1_H' in sd:
            y = gcc_block(y, p + f'spatial_global_rep.{k}.')
            k += 1
        y = _bn(y, sd, p + f'spatial_global_rep.{k}')
        y = cbr(y, p + 'channel_adaptive')
        fused_in = sd[p + 'local_global_fusion.block.conv.weight'].shape[1]
        y = torch.cat([y, res], 1) if fused_in == 2 * res.shape[1] else y + res
        return cbr(y, p + 'local_global_fusion', padding=1)

    x = cbr(x, 'conv_1', stride=2, padding=1)
    outs = []
    for L in range(1, 6):
        j = 0
        while f'layer_{L}.{j}.block.exp_1x1.block.conv.weight' in sd:
            stride = 2 if (j == 0 and L > 1) else 1
            x = mv2(x, f'layer_{L}.{j}', stride)
            j += 1
        if f'layer_{L}.1.dim_adaptive.0.block.conv.weight' in sd:
            x = unit(x, f'layer_{L}.1.')
        outs.append(x)
    x = cbr(x, 'conv_1x1_exp')
    logits = F.linear(x.mean([-2, -1]), sd['classifier.fc.weight'], sd['classifier.fc.bias'])
    return outs + [x, logits]


# --- ParCNetV2 (official timm classifier and mmdet / mmseg backbone layouts) -----------------
V2_FIXTURE = osp.join(osp.dirname(__file__), 'data', 'official_parcnetv2_state_dicts.json')


def v2_fixture(name: str) -> dict:
    with open(V2_FIXTURE) as f:
        return json.load(f)[name]


def v2_random_state_dict(name: str, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random tensors with the official ParCNetV2 key names and shapes (norm / scale weights
    around 1, so activations keep their size through 20+ blocks)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in v2_fixture(name)['state_dict'].items():
        t = torch.randn(shape, generator=g) * 0.05
        if len(shape) == 1 and ('norm' in k and k.endswith('weight') or k.endswith('.scale')):
            t = t + 1
        sd[k] = t
    return sd


def _v2_norm(x, w, b=None, eps=1e-6):
    # the official LayerNormGeneral over the last axis: centred, divided by its clamped L2 norm
    c = x - x.mean(-1, keepdim=True)
    y = c / torch.clamp(torch.sqrt((c * c).sum(-1, keepdim=True)), min=eps) * w
    return y if b is None else y + b


def _zero_padded_corr(x, k, dim: int):
    """Depthwise zero-padded cross-correlation along ``dim`` of an odd kernel k (C, K): a sum of
    K shifted copies of the padded input."""
    taps = k.shape[-1]
    p = taps // 2
    n = x.shape[dim]
    pad = [0, 0, p, p] if dim == 2 else [p, p]
    xp = F.pad(x, pad)
    shape = (1, -1, 1, 1)
    return sum(k[:, s].reshape(shape) * xp.narrow(dim, s, n) for s in range(taps))


def official_parcnetv2(sd: Dict[str, torch.Tensor], x: torch.Tensor, det: bool = False,
                       out_indices=(0, 1, 2, 3)):
    """The official ParCNetV2 forward on an official state dict: the classifier's logits, or
    (``det``) the backbone's normalised NCHW feature maps at ``out_indices``."""
    gelu = F.gelu
    stages = sorted({int(k.split('.')[1]) for k in sd if k.startswith('stages.')})
    outs = []
    for i in stages:
        p = f'downsample_layers.{i}.'
        if i == 0:  # NCHW image -> conv k7 s4 p2 -> NHWC -> norm
            x = F.conv2d(x, sd[p + 'conv.weight'], sd[p + 'conv.bias'], 4, 2)
            x = _v2_norm(x.permute(0, 2, 3, 1), sd[p + 'post_norm.weight'])
        else:  # NHWC -> norm -> NCHW -> conv k3 s2 p1 -> NHWC
            x = _v2_norm(x, sd[p + 'pre_norm.weight']).permute(0, 3, 1, 2)
            x = F.conv2d(x, sd[p + 'conv.weight'], sd[p + 'conv.bias'], 2, 1).permute(0, 2, 3, 1)
        blocks = sorted({int(k.split('.')[2]) for k in sd if k.startswith(f'stages.{i}.')})
        for j in blocks:
            b = f'stages.{i}.{j}.'

            def scale(t, name):
                key = b + name + '.scale'
                return t * sd[key] if key in sd else t

            # token mixer
            t = _v2_norm(x, sd[b + 'norm1.weight']).permute(0, 3, 1, 2)
            m = b + 'token_mixer.'
            t = F.conv2d(t, sd[m + 'pwconv1.weight'], sd[m + 'pwconv1.bias'])
            c = t.shape[1] // 2
            a, g = t[:, :c], gelu(t[:, c:])
            kh = sd[m + 'dwconv1.conv_h.weight'].reshape(c, -1)
            kw = sd[m + 'dwconv1.conv_w.weight'].reshape(c, -1)
            glob = _zero_padded_corr(_zero_padded_corr(g, kh, 2), kw, 3)
            k7 = sd[m + 'dwconv2.weight']
            local = F.conv2d(g, k7, None, 1, k7.shape[-1] // 2, 1, c)
            t = F.conv2d(a * (glob + local), sd[m + 'pwconv2.weight']).permute(0, 2, 3, 1)
            x = scale(x, 'res_scale1') + scale(t, 'layer_scale1')
            # bifurcate gate unit
            t = _v2_norm(x, sd[b + 'norm2.weight']) @ sd[b + 'mlp.fc1.weight'].t() + \
                sd[b + 'mlp.fc1.bias']
            h = t.shape[-1] // 2
            t = (t[..., :h] * gelu(t[..., h:])) @ sd[b + 'mlp.fc2.weight'].t()
            x = scale(x, 'res_scale2') + scale(t, 'layer_scale2')
        if det and i in out_indices:
            outs.append(_v2_norm(x, sd[f'norm{i}.weight']).permute(0, 3, 1, 2))
    if det:
        return outs
    feat = F.layer_norm(x.mean((1, 2)), (x.shape[-1], ), sd['norm.weight'], sd['norm.bias'], 1e-6)
    return feat @ sd['head.weight'].t() + sd['head.bias']

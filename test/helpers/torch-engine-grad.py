#!/usr/bin/python3
"""Oracle for test/engine-grad.test.ts: runs small ONNX-style graphs with PyTorch (Debian's python3-torch)
and writes the output, the input gradient, the parameter gradients and the BN running statistics.

Each op is written here from the ONNX spec with plain torch functions — independently of the engine's
C++ kernels — so a wrong pad order, axis or momentum in the engine shows up as a mismatch.

With a "train" entry ({"steps", "kind", "lr", "momentum", "nesterov", "weight_decay", "decay": [names],
"beta1", "beta2", "eps", "label_smoothing"}) it instead runs that many torch.optim updates on x with the labels
in labels.bin (int32) and writes {"losses", "params", "state"}.

Usage: torch-engine-grad.py CASE_DIR... Each CASE_DIR/case.json:
  {"nodes": [{"op", "inputs", "outputs", "attrs"}], "opset", "training", "input": {"name", "dims"},
   "output": name, "params": [names], "state": [names], "tensors": {name: {"dims", "dtype"}}}
with raw little-endian files CASE_DIR/<index>.bin for each tensor (in "tensors" order), x.bin and r.bin (the
gradient of the output). Writes CASE_DIR/result.json: {"output", "input_grad", "grads": {name: [...]},
"state": {name: [...]}} as flat lists.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {'float32': np.float32, 'int64': np.int64, 'int32': np.int32, 'int8': np.int8, 'uint8': np.uint8}


def spatial_pad(x, begin, end, value):
    """ONNX pads [x1_begin.., x1_end..] → F.pad's (last_begin, last_end, prev_begin, prev_end, ...)."""
    pad = []
    for b, e in reversed(list(zip(begin, end))):
        pad += [b, e]
    return F.pad(x, pad, value=value) if any(pad) else x


def window(attrs, x, kernel):
    n = x.dim() - 2
    pads = attrs.get('pads', [0] * (2 * n))
    auto = attrs.get('auto_pad', 'NOTSET')
    strides = attrs.get('strides', [1] * n)
    dil = attrs.get('dilations', [1] * n)
    begin, end = pads[:n], pads[n:]
    if auto in ('SAME_UPPER', 'SAME_LOWER'):
        begin, end = [], []
        for i in range(n):
            size = x.shape[2 + i]
            total = max(0, (math.ceil(size / strides[i]) - 1) * strides[i] + dil[i] * (kernel[i] - 1) + 1 - size)
            small = total // 2
            begin.append(small if auto == 'SAME_UPPER' else total - small)
            end.append(total - small if auto == 'SAME_UPPER' else small)
    elif auto == 'VALID':
        begin, end = [0] * n, [0] * n
    return begin, end, strides, dil


def fake_quant(x, scale, zp, axis, qmin, qmax):
    """QuantizeLinear then DequantizeLinear, with the straight-through gradient QAT uses."""
    if scale.numel() > 1:
        shape = [1] * x.dim()
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    zp = zp.to(torch.float32)
    q = torch.round(x / scale) + zp
    inside = (q >= qmin) & (q <= qmax)
    y = (torch.clamp(q, qmin, qmax) - zp) * scale
    return y.detach() + (x - x.detach()) * inside


def pool_by_windows(op, a, x):
    """MaxPool / AveragePool written out window by window from the ONNX spec (not ATen's pooling): the
    output length with ceil_mode's guard (a window may not start in the end padding), max over the
    input cells a window covers, average over them or (count_include_pad) over the cells inside the padding."""
    import itertools
    k = a['kernel_shape']
    begin, end, strides, dil = window(a, x, k)
    if op == 'AveragePool':
        dil = [1] * len(k)
    include = bool(a.get('count_include_pad', 0))
    ceil = bool(a.get('ceil_mode', 0))
    sizes = list(x.shape[2:])
    lengths = []
    for d, n in enumerate(sizes):
        room = n + begin[d] + end[d] - (dil[d] * (k[d] - 1) + 1)
        out = (math.ceil(room / strides[d]) if ceil else room // strides[d]) + 1
        if ceil and (out - 1) * strides[d] >= n + begin[d]:
            out -= 1
        lengths.append(out)
    values = []
    for o in itertools.product(*[range(n) for n in lengths]):
        cells, counted = [], 0
        for j in itertools.product(*[range(kk) for kk in k]):
            p = [o[d] * strides[d] - begin[d] + j[d] * dil[d] for d in range(len(k))]
            if all(0 <= p[d] < sizes[d] for d in range(len(k))):
                cells.append(x[(slice(None), slice(None), *p)])
            if all(-begin[d] <= p[d] < sizes[d] + end[d] for d in range(len(k))):
                counted += 1
        stacked = torch.stack(cells, dim=-1)
        if op == 'MaxPool':
            values.append(stacked.amax(dim=-1))
        else:
            values.append(stacked.sum(dim=-1) / (counted if include else len(cells)))
    return torch.stack(values, dim=-1).reshape(*x.shape[:2], *lengths)


def run_node(node, env, opset, training):
    op, a = node['op'], node['attrs']
    ins = [env[n] if n else None for n in node['inputs']]
    x = ins[0]
    if op == 'Conv':
        w = ins[1]
        begin, end, strides, dil = window(a, x, list(w.shape[2:]))
        x = spatial_pad(x, begin, end, 0.0)
        conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[x.dim() - 2]
        return [conv(x, w, ins[2] if len(ins) > 2 else None, strides, 0, dil, a.get('group', 1))]
    if op == 'BatchNormalization':
        momentum = 1 - a.get('momentum', 0.9)
        return [F.batch_norm(x, ins[3], ins[4], ins[1], ins[2], training, momentum, a.get('epsilon', 1e-5))]
    if op == 'Relu':
        return [torch.relu(x)]
    if op == 'Sigmoid':
        return [torch.sigmoid(x)]
    if op == 'HardSwish':
        return [x * torch.clamp(x / 6 + 0.5, 0, 1)]
    if op == 'HardSigmoid':
        return [torch.clamp(a.get('alpha', 0.2) * x + a.get('beta', 0.5), 0, 1)]
    if op == 'LeakyRelu':
        return [torch.where(x >= 0, x, a.get('alpha', 0.01) * x)]
    if op == 'Clip':
        lo = ins[1].item() if len(ins) > 1 and ins[1] is not None else None
        hi = ins[2].item() if len(ins) > 2 and ins[2] is not None else None
        return [torch.clamp(x, lo, hi)]
    if op in ('Add', 'Sub', 'Mul', 'Div'):
        f = {'Add': torch.add, 'Sub': torch.sub, 'Mul': torch.mul, 'Div': torch.div}[op]
        return [f(ins[0], ins[1])]
    if op in ('MaxPool', 'AveragePool'):
        return [pool_by_windows(op, a, x)]
    if op == 'GlobalAveragePool':
        return [x.mean(dim=tuple(range(2, x.dim())), keepdim=True)]
    if op == 'GlobalMaxPool':
        return [x.amax(dim=tuple(range(2, x.dim())), keepdim=True)]
    if op == 'Flatten':
        axis = a.get('axis', 1) % (x.dim() + 1) if a.get('axis', 1) < 0 else a.get('axis', 1)
        return [x.reshape(int(np.prod(x.shape[:axis])), -1)]
    if op == 'Reshape':
        shape = [int(v) for v in ins[1].tolist()]
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
        return [x.reshape(shape)]
    if op == 'Transpose':
        return [x.permute(*a.get('perm', list(reversed(range(x.dim())))))]
    if op == 'Squeeze':
        axes = sorted((int(v) % x.dim() for v in ins[1].tolist()), reverse=True)
        for ax in axes:
            x = x.squeeze(ax)
        return [x]
    if op == 'Unsqueeze':
        rank = x.dim() + ins[1].numel()
        for ax in sorted(int(v) % rank for v in ins[1].tolist()):
            x = x.unsqueeze(ax)
        return [x]
    if op == 'Gemm':
        A = ins[0].t() if a.get('transA', 0) else ins[0]
        B = ins[1].t() if a.get('transB', 0) else ins[1]
        y = a.get('alpha', 1.0) * (A @ B)
        if len(ins) > 2 and ins[2] is not None:
            y = y + a.get('beta', 1.0) * ins[2]
        return [y]
    if op == 'MatMul':
        return [ins[0] @ ins[1]]
    if op == 'Concat':
        return [torch.cat(ins, dim=a['axis'])]
    if op == 'Split':
        sizes = [int(v) for v in ins[1].tolist()] if len(ins) > 1 else a['split']
        return list(torch.split(x, sizes, dim=a.get('axis', 0)))
    if op == 'Softmax':
        axis = a.get('axis', -1 if opset >= 13 else 1)
        if opset >= 13:
            return [torch.softmax(x, axis)]
        axis %= x.dim()
        return [torch.softmax(x.reshape(int(np.prod(x.shape[:axis])), -1), 1).reshape(x.shape)]
    if op == 'Pad':
        pads = [int(v) for v in ins[1].tolist()] if opset >= 11 else a['pads']
        value = ins[2].item() if len(ins) > 2 and ins[2] is not None else 0.0
        mode = {'constant': 'constant', 'reflect': 'reflect', 'edge': 'replicate', 'wrap': 'circular'}[a.get('mode', 'constant')]
        n = x.dim()
        pairs = []
        for axis in reversed(range(n)):
            pairs += [pads[axis], pads[axis + n]]
        while pairs and pairs[-1] == 0 and pairs[-2] == 0:
            pairs = pairs[:-2]
        return [F.pad(x, pairs, mode='constant', value=value) if mode == 'constant' else F.pad(x, pairs, mode=mode)]
    if op == 'Resize':
        # PyTorch's own F.interpolate, for the forms torch.onnx writes for it (opset >= 11: X, roi, scales, sizes).
        mode, coord = a.get('mode', 'nearest'), a.get('coordinate_transformation_mode', 'half_pixel')
        scales = ins[2].tolist() if len(ins) > 2 and ins[2] is not None and ins[2].numel() else None
        sizes = [int(v) for v in ins[3].tolist()] if len(ins) > 3 and ins[3] is not None else None
        spatial = dict(size=sizes[2:]) if sizes else dict(scale_factor=scales[2:], recompute_scale_factor=False)
        if mode == 'nearest':
            assert coord == 'asymmetric' and a.get('nearest_mode') == 'floor', (coord, a.get('nearest_mode'))
            return [F.interpolate(x, mode='nearest', **spatial)]
        assert coord in ('half_pixel', 'pytorch_half_pixel', 'align_corners'), coord
        torch_mode = {2: {'linear': 'linear', 'cubic': 'cubic'}, 4: {'linear': 'bilinear', 'cubic': 'bicubic'}}[x.dim()][mode]
        return [F.interpolate(x, mode=torch_mode, align_corners=coord == 'align_corners', **spatial)]
    if op in ('Tanh', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Neg', 'Abs'):
        return [{'Tanh': torch.tanh, 'Exp': torch.exp, 'Log': torch.log, 'Sqrt': torch.sqrt,
                 'Reciprocal': lambda t: 1 / t, 'Neg': lambda t: -t, 'Abs': torch.abs}[op](x)]
    if op == 'Softplus':
        return [torch.log(torch.exp(x) + 1)]
    if op == 'Softsign':
        return [x / (1 + x.abs())]
    if op in ('Elu', 'Selu', 'Celu'):
        alpha = a.get('alpha', 1.67326319217681884765625 if op == 'Selu' else 1.0)
        if op == 'Celu':
            return [torch.clamp(x, min=0) + torch.clamp(alpha * (torch.exp(x / alpha) - 1), max=0)]
        y = torch.where(x > 0, x, alpha * (torch.exp(x) - 1))
        return [y * a.get('gamma', 1.05070102214813232421875) if op == 'Selu' else y]
    if op == 'PRelu':
        return [torch.where(x >= 0, x, ins[1] * x)]
    if op == 'Pow':
        return [x ** ins[1].to(x.dtype)]
    if op == 'LogSoftmax':
        return [torch.log_softmax(x, a.get('axis', -1))]
    if op in ('Max', 'Min', 'Sum', 'Mean'):
        y = ins[0]
        for t in ins[1:]:
            y = torch.maximum(y, t) if op == 'Max' else torch.minimum(y, t) if op == 'Min' else y + t
        return [y / len(ins) if op == 'Mean' else y]
    if op == 'Expand':
        shape = [int(v) for v in ins[1].tolist()]
        rank = max(x.dim(), len(shape))
        dims = [1] * (rank - x.dim()) + list(x.shape)
        shape = [1] * (rank - len(shape)) + shape
        return [x.reshape(dims).expand([d if s == 1 else s for d, s in zip(dims, shape)])]
    if op == 'Erf':
        return [torch.erf(x)]
    if op == 'InstanceNormalization':
        # The spec's formula: statistics per sample and channel over the spatial axes.
        dims = tuple(range(2, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)
        shape = [1, -1] + [1] * (x.dim() - 2)
        return [(x - mean) / torch.sqrt(var + a.get('epsilon', 1e-5)) * ins[1].reshape(shape) + ins[2].reshape(shape)]
    if op == 'LayerNormalization':
        # The spec's formula, written out (not F.layer_norm): statistics over axes [axis, rank).
        axis = a.get('axis', -1) % x.dim()
        dims = tuple(range(axis, x.dim()))
        mean = x.mean(dim=dims, keepdim=True)
        inv_std = 1 / torch.sqrt(((x - mean) ** 2).mean(dim=dims, keepdim=True) + a.get('epsilon', 1e-5))
        y = (x - mean) * inv_std * ins[1]
        if len(ins) > 2 and ins[2] is not None:
            y = y + ins[2]
        return [y, mean, inv_std]
    if op.startswith('Reduce'):
        since = 13 if op == 'ReduceSum' else 18
        axes = [int(v) for v in ins[1].tolist()] if opset >= since and len(ins) > 1 else a.get('axes', list(range(x.dim())))
        dims, keep = tuple(axes), bool(a.get('keepdims', 1))
        if op == 'ReduceMean':
            return [x.mean(dim=dims, keepdim=keep)]
        if op == 'ReduceSum':
            return [x.sum(dim=dims, keepdim=keep)]
        if op == 'ReduceMax':
            return [x.amax(dim=dims, keepdim=keep)]
        if op == 'ReduceL2':
            return [torch.sqrt((x * x).sum(dim=dims, keepdim=keep))]
        if op == 'ReduceLogSumExp':
            return [torch.log(torch.exp(x).sum(dim=dims, keepdim=keep))]
        if op == 'ReduceProd':
            for d in sorted(dims, reverse=True):
                x = x.prod(dim=d, keepdim=keep)
            return [x]
    if op == 'Slice':
        # numpy semantics, index by index (ONNX's definition), independent of ATen's slice.
        starts, ends, axes, steps = (ins[k].tolist() for k in (1, 2, 3, 4))
        index = [slice(None)] * x.dim()
        for s, e, ax, st in zip(starts, ends, axes, steps):
            dim = x.shape[ax]
            index[ax] = torch.tensor(list(range(dim))[slice(s, e, st)], dtype=torch.long)
        for ax, ix in enumerate(index):
            if isinstance(ix, torch.Tensor):
                x = x.index_select(ax, ix)
        return [x]
    if op in ('Dropout', 'Identity'):
        return [x]
    if op == 'QuantizeLinear':
        # Evaluated together with its DequantizeLinear (see run()); pass the inputs along.
        return [('qdq', x, ins[1], ins[2], a.get('axis', 1))]
    if op == 'DequantizeLinear':
        if isinstance(ins[0], tuple):
            _, qx, scale, zp, axis = ins[0]
            lo, hi = (-128, 127) if zp.dtype == torch.int8 else (0, 255)
            return [fake_quant(qx, scale, zp, axis % qx.dim(), lo, hi)]
        scale, zp = ins[1], ins[2]
        if scale.numel() > 1:
            shape = [1] * x.dim()
            shape[a.get('axis', 1) % x.dim()] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        return [(x.to(torch.float32) - zp.to(torch.float32)) * scale]
    raise SystemExit(f'torch-engine-grad.py: no reference for op {op}')


def run_case(folder):
    with open(os.path.join(folder, 'case.json')) as f:
        case = json.load(f)
    env = {}
    for i, (name, t) in enumerate(case['tensors'].items()):
        data = np.fromfile(os.path.join(folder, f'{i}.bin'), dtype=DTYPES[t['dtype']]).reshape(t['dims'])
        tensor = torch.from_numpy(data.copy())
        if name in case['params']:
            tensor.requires_grad_(True)
        env[name] = tensor
    inp = case['input']
    x = torch.from_numpy(np.fromfile(os.path.join(folder, 'x.bin'), dtype=np.float32).reshape(inp['dims']).copy())
    x.requires_grad_(True)
    env[inp['name']] = x
    if 'train' in case:
        return train_case(folder, case, env)
    out = forward(case, env)
    r = torch.from_numpy(np.fromfile(os.path.join(folder, 'r.bin'), dtype=np.float32).reshape(out.shape).copy())
    (out * r).sum().backward()
    flat = lambda t: t.detach().reshape(-1).double().tolist()
    result = {
        'output': flat(out),
        'input_grad': flat(x.grad) if x.grad is not None else None,
        'grads': {n: flat(env[n].grad) if env[n].grad is not None else None for n in case['params']},
        'state': {n: flat(env[n]) for n in case['state']},
    }
    with open(os.path.join(folder, 'result.json'), 'w') as f:
        json.dump(result, f)


def forward(case, env):
    for node in case['nodes']:
        for name, value in zip(node['outputs'], run_node(node, env, case['opset'], case['training'])):
            if name:
                env[name] = value
    return env[case['output']]


def train_case(folder, case, env):
    """`steps` updates on the fixed batch x / labels.bin with torch.optim, as a PyTorch user writes them."""
    t = case['train']
    labels = torch.from_numpy(np.fromfile(os.path.join(folder, 'labels.bin'), dtype=np.int32).astype(np.int64))
    x = env[case['input']['name']].detach()
    params = [env[n] for n in case['params']]
    decay = [env[n] for n in case['params'] if n in t['decay']]
    no_decay = [env[n] for n in case['params'] if n not in t['decay']]
    groups = [{'params': decay, 'weight_decay': t['weight_decay']}, {'params': no_decay, 'weight_decay': 0.0}]
    if t['kind'] == 'sgd':
        opt = torch.optim.SGD(groups, lr=t['lr'], momentum=t['momentum'], nesterov=t['nesterov'])
    else:
        opt = torch.optim.AdamW(groups, lr=t['lr'], betas=(t['beta1'], t['beta2']), eps=t['eps'])
    losses = []
    for _ in range(t['steps']):
        env[case['input']['name']] = x
        loss = F.cross_entropy(forward(case, env), labels, label_smoothing=t['label_smoothing'])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    flat = lambda v: v.detach().reshape(-1).double().tolist()
    with open(os.path.join(folder, 'result.json'), 'w') as f:
        json.dump({'losses': losses, 'params': {n: flat(env[n]) for n in case['params']},
                   'state': {n: flat(env[n]) for n in case['state']}}, f)


def main():
    torch.set_num_threads(1)
    for folder in sys.argv[1:]:
        run_case(folder)


if __name__ == '__main__':
    main()

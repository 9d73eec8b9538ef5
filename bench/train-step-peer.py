#!/usr/bin/env python3
"""PyTorch eager peer of bench/train-step.ts: the same ResNet18-CIFAR, weights, batch, optimizer and
precision, timed the way PyTorch users train (model(x), CrossEntropyLoss, backward, optimizer.step,
zero_grad(set_to_none=True)).

bench/train-step.ts writes the inputs into a folder and runs this script on it:
  manifest.json   {"width", "classes", "batch", "tensors": [{"name", "dims"}], ...}
  weights.bin     float32 tensors in manifest order (torchvision state_dict names)
  images.bin      float32 N×3×32×32 normalized batch;  labels.bin  int32 N
Prints one JSON line: {"ms_per_step", "step_ms", "losses", "torch", "threads", "device"}.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18Cifar(nn.Module):
    """torchvision's resnet18 with the CIFAR stem (3×3/1 conv, no max pool), as slimkit's zoo builds it."""

    def __init__(self, width=1.0, classes=10):
        super().__init__()
        planes = [max(1, round(64 * 2 ** i * width)) for i in range(4)]
        self.conv1 = nn.Conv2d(3, planes[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        cin = planes[0]
        for stage in range(4):
            blocks = []
            for i in range(2):
                blocks.append(BasicBlock(cin, planes[stage], 2 if i == 0 and stage > 0 else 1))
                cin = planes[stage]
            setattr(self, f'layer{stage + 1}', nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('folder')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    ap.add_argument('--channels-last', action='store_true')
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    with open(os.path.join(args.folder, 'manifest.json')) as f:
        m = json.load(f)
    device = torch.device(args.device)
    # The engine turns cuDNN's autotuner on for CUDA plans; the peer gets the same, or the ratio would
    # credit the engine with the algorithm search rather than its own work.
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = True
    model = ResNet18Cifar(m['width'], m['classes'])
    weights = np.fromfile(os.path.join(args.folder, 'weights.bin'), dtype=np.float32)
    state, at = {}, 0
    for t in m['tensors']:
        n = int(np.prod(t['dims']))
        state[t['name']] = torch.from_numpy(weights[at:at + n].reshape(t['dims']).copy())
        at += n
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.endswith('num_batches_tracked') for k in missing):
        sys.exit(f'weights do not match the model: missing {missing}, unexpected {unexpected}')
    channels_last = args.channels_last
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    model.train()
    b = m['batch']
    x = torch.from_numpy(np.fromfile(os.path.join(args.folder, 'images.bin'), dtype=np.float32).reshape(b, 3, 32, 32)).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(np.fromfile(os.path.join(args.folder, 'labels.bin'), dtype=np.int32).astype(np.int64)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=m['lr'], momentum=m['momentum'], nesterov=m['nesterov'], weight_decay=m['weight_decay'])
    criterion = nn.CrossEntropyLoss()

    def autocast():
        if args.precision == 'bf16':
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step():
        with autocast():
            out = model(x)
            loss = criterion(out.float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()  # the same host sync the engine does to return its loss

    losses, times = [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        losses.append(step())
        if device.type == 'cuda':
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        'ms_per_step': statistics.median(times), 'step_ms': times, 'losses': losses,
        'torch': torch.__version__, 'threads': torch.get_num_threads(), 'device': args.device,
        'cudnn_benchmark': bool(torch.backends.cudnn.benchmark),
    }))


if __name__ == '__main__':
    main()

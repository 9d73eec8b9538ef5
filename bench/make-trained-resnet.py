#!/usr/bin/python3
"""Train a ResNet18-CIFAR with plain PyTorch and export it like the acceptance models: opset 17, BN folded,
Gemm head, input `input` NCHW float32 (CIFAR-10 mean/std normalised), output `logits`.

This is the *peer* model: what a PyTorch user would hand to slimkit. It is not committed (tens of MB).
  CPU demo-sized:  /usr/bin/python3 bench/make-trained-resnet.py --width 0.25 --epochs 10 --out /tmp/r18w025.onnx
  GPU host:        python3 bench/make-trained-resnet.py --width 1 --epochs 30 --device cuda --out r18.onnx
  CPU with AMX:    /usr/bin/python3 bench/make-trained-resnet.py --width 1 --epochs 10 --precision bf16 \
                       --checkpoint /tmp/r18.ckpt --out /tmp/r18.onnx   (~7 min/epoch on 2 Sapphire Rapids cores)
--precision bf16 trains under autocast (AMX / tensor cores); the exported model is fp32 either way and the
reported top-1 is the fp32 model's. --checkpoint saves after every epoch (atomically) and resumes from it.
--init-from C starts from the weights of checkpoint C with a fresh optimizer and schedule (a second cycle).
Prints one JSON line: {"out", "width", "epochs", "test_top1", "seconds"}.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'scripts'))

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


def load_cifar(data_dir, split):
    files = [f'data_batch_{i}.bin' for i in range(1, 6)] if split == 'train' else ['test_batch.bin']
    raw = np.concatenate([np.fromfile(os.path.join(data_dir, f), dtype=np.uint8).reshape(-1, 3073) for f in files])
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    def __init__(self, width=1.0, classes=10):
        super().__init__()
        planes = [max(1, round(64 * width * 2 ** i)) for i in range(4)]
        self.conv1 = nn.Conv2d(3, planes[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        layers, cin = [], planes[0]
        for i, p in enumerate(planes):
            layers += [Block(cin, p, 1 if i == 0 else 2), Block(p, p, 1)]
            cin = p
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def augment(x):
    n = x.shape[0]
    padded = F.pad(x, (4, 4, 4, 4))
    i = torch.randint(0, 9, (n,))
    j = torch.randint(0, 9, (n,))
    rows = (i.view(n, 1) + torch.arange(32).view(1, 32))
    cols = (j.view(n, 1) + torch.arange(32).view(1, 32))
    out = padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(3).view(1, 3, 1, 1), rows.view(n, 1, 32, 1), cols.view(n, 1, 1, 32)]
    flip = torch.rand(n) < 0.5
    out[flip] = out[flip].flip(3)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--data-dir', default=os.environ.get('SLIM_DATA_DIR', os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'cifar10')))
    ap.add_argument('--width', type=float, default=1.0)
    ap.add_argument('--epochs', type=int, default=30)
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--lr', type=float, default=0.2)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    ap.add_argument('--checkpoint', help='save here after every epoch; resume from it when it exists')
    ap.add_argument('--init-from', help='warm start: take the weights (only) of this --checkpoint file, then run a fresh '
                    'schedule of --epochs (a second, lower --lr cycle trains a model further)')
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    xtr, ytr = load_cifar(args.data_dir, 'train')
    xte, yte = load_cifar(args.data_dir, 'test')
    xtr, ytr, xte, yte = xtr.to(dev), ytr.to(dev), xte.to(dev), yte.to(dev)
    mean, std = MEAN.to(dev), STD.to(dev)
    model = ResNet18(args.width).to(dev).to(memory_format=torch.channels_last)
    steps = args.epochs * (len(xtr) // args.batch)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.25)
    first_epoch, spent = 0, 0.0
    resuming = args.checkpoint and os.path.exists(args.checkpoint)
    if args.init_from and not resuming:
        model.load_state_dict(torch.load(args.init_from)['model'])
        print(f'warm start from the weights in {args.init_from}', file=sys.stderr)
    if resuming:
        state = torch.load(args.checkpoint)
        model.load_state_dict(state['model'])
        opt.load_state_dict(state['opt'])
        sched.load_state_dict(state['sched'])
        torch.set_rng_state(state['rng'])
        first_epoch, spent = state['epoch'], state['seconds']
        print(f'resuming after epoch {first_epoch} from {args.checkpoint}', file=sys.stderr)
    autocast = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=args.precision == 'bf16')
    start = time.time() - spent
    top1 = None
    for epoch in range(first_epoch, args.epochs):
        model.train()
        perm = torch.randperm(len(xtr), device=dev)
        for k in range(len(xtr) // args.batch):
            idx = perm[k * args.batch:(k + 1) * args.batch]
            x = (augment(xtr[idx].float() / 255) - mean) / std
            with torch.autocast(**autocast):
                logits = model(x.contiguous(memory_format=torch.channels_last))
            loss = F.cross_entropy(logits.float(), ytr[idx], label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        last = epoch + 1 == args.epochs
        # Progress epochs evaluate under autocast (fast); the last one in fp32, as the exported model runs.
        top1 = evaluate(model, xte, yte, mean, std, None if last else autocast)
        print(f'epoch {epoch + 1}/{args.epochs} loss {loss.item():.3f} test top-1 {top1:.4f} ({time.time() - start:.0f} s)', file=sys.stderr)
        if args.checkpoint:
            tmp = args.checkpoint + '.tmp'
            torch.save({'model': model.state_dict(), 'opt': opt.state_dict(), 'sched': sched.state_dict(),
                        'rng': torch.get_rng_state(), 'epoch': epoch + 1, 'seconds': time.time() - start}, tmp)
            os.replace(tmp, args.checkpoint)
    if top1 is None:
        top1 = evaluate(model, xte, yte, mean, std, None)
    model.eval().cpu().to(memory_format=torch.contiguous_format)
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), args.out, opset_version=17, input_names=['input'],
                      output_names=['logits'], dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
                      do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
    print(json.dumps({'out': args.out, 'width': args.width, 'epochs': args.epochs, 'test_top1': top1,
                      'seconds': round(time.time() - start, 1), 'torch': torch.__version__}))


@torch.no_grad()
def evaluate(model, x, y, mean, std, autocast):
    model.eval()
    correct = 0
    for k in range(0, len(x), 1000):
        xb = (x[k:k + 1000].float() / 255 - mean) / std
        if autocast:
            with torch.autocast(**autocast):
                logits = model(xb.contiguous(memory_format=torch.channels_last))
        else:
            logits = model(xb)
        correct += (logits.argmax(1) == y[k:k + 1000]).sum().item()
    model.train()
    return correct / len(x)


if __name__ == '__main__':
    main()

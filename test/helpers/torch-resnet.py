#!/usr/bin/python3
"""Oracle for test/zoo-resnet.test.ts: a torchvision-architecture ResNet in plain PyTorch, loaded with
weights written by the test, run in eval mode on the test's input.

    /usr/bin/python3 test/helpers/torch-resnet.py CASE_DIR

CASE_DIR/case.json: {"depth": 18|34|50, "stem": "cifar"|"imagenet", "width": w, "classes": k,
                     "weights": [[state_dict_key, [dims...]], ...], "input": [dims...]}
CASE_DIR/weights.bin: float32 little-endian, the tensors of "weights" concatenated in order.
CASE_DIR/input.bin:   float32 input, NCHW.
Writes CASE_DIR/logits.bin (float32) and prints its shape as JSON.

The module tree mirrors torchvision.models.resnet (torchvision itself is not installed here), so a
state dict written under slimkit's initializer names loads with no key left over or missing: that also
checks the names.
"""
import json
import os
import sys

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


LAYOUT = {18: (BasicBlock, [2, 2, 2, 2]), 34: (BasicBlock, [3, 4, 6, 3]), 50: (Bottleneck, [3, 4, 6, 3])}


class ResNet(nn.Module):
    def __init__(self, depth, stem, width, classes):
        super().__init__()
        block, counts = LAYOUT[depth]
        planes = [max(1, round(64 * 2**i * width)) for i in range(4)]
        self.inplanes = planes[0]
        if stem == 'cifar':
            self.conv1 = nn.Conv2d(3, planes[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, planes[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        for i, (p, n) in enumerate(zip(planes, counts)):
            setattr(self, f'layer{i + 1}', self._make_layer(block, p, n, 1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3] * block.expansion, classes)

    def _make_layer(self, block, planes, blocks, stride):
        layers = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            downsample = None
            if s != 1 or self.inplanes != planes * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, planes * block.expansion, 1, s, bias=False),
                    nn.BatchNorm2d(planes * block.expansion),
                )
            layers.append(block(self.inplanes, planes, s, downsample))
            self.inplanes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def read_floats(path):
    with open(path, 'rb') as f:
        return torch.frombuffer(bytearray(f.read()), dtype=torch.float32)


def main(case_dir):
    with open(os.path.join(case_dir, 'case.json')) as f:
        case = json.load(f)
    model = ResNet(case['depth'], case['stem'], case['width'], case['classes']).eval()
    flat = read_floats(os.path.join(case_dir, 'weights.bin'))
    state, offset = {}, 0
    for key, dims in case['weights']:
        n = 1
        for d in dims:
            n *= d
        state[key] = flat[offset:offset + n].reshape(dims).clone()
        offset += n
    if offset != flat.numel():
        sys.exit(f'weights.bin has {flat.numel()} floats, case.json describes {offset}')
    # num_batches_tracked is training state that ONNX does not carry; every other key must match.
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith('num_batches_tracked')}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if list(state[k].shape) != list(expected[k].shape))
    if missing or unexpected or wrong:
        sys.exit(f'state dict mismatch: missing {missing}, unexpected {unexpected}, wrong shape {wrong}')
    model.load_state_dict(state, strict=False)
    x = read_floats(os.path.join(case_dir, 'input.bin'))
    with torch.no_grad():
        logits = model(x.reshape(case['input']))
    with open(os.path.join(case_dir, 'logits.bin'), 'wb') as f:
        f.write(logits.contiguous().numpy().astype('<f4').tobytes())
    print(json.dumps(list(logits.shape)))


if __name__ == '__main__':
    torch.set_num_threads(1)
    main(sys.argv[1])

#!/usr/bin/python3
"""Export torchvision's classifiers (10 classes, random init, as a user starting a CIFAR-sized project
would) to ONNX, each twice: BN folded (torch.onnx's default, TrainingMode.EVAL) and BN kept (PRESERVE).
Used by bench/torchvision-sweep.ts. Needs Debian's python3-torch and python3-torchvision (0.14).

    /usr/bin/python3 bench/torchvision-export.py OUT_DIR [NAME...]
    /usr/bin/python3 bench/torchvision-export.py --list
"""
import os
import sys

import torch
import torchvision.models as m

torch.manual_seed(0)
# name: (constructor, input size). VGG and AlexNet are left out: torch 1.13 cannot export their
# adaptive_avg_pool2d(7) at CIFAR sizes (the output size is not a factor of the input).
SPECS = {
    'resnet18': (m.resnet18, 32), 'resnext50': (m.resnext50_32x4d, 32), 'wide_resnet50': (m.wide_resnet50_2, 32),
    'mobilenet_v2': (m.mobilenet_v2, 32), 'mobilenet_v3_small': (m.mobilenet_v3_small, 32),
    'mobilenet_v3_large': (m.mobilenet_v3_large, 32), 'shufflenet_v2': (m.shufflenet_v2_x0_5, 32),
    'squeezenet': (m.squeezenet1_1, 32), 'efficientnet_b0': (m.efficientnet_b0, 32),
    'efficientnet_v2_s': (m.efficientnet_v2_s, 32), 'regnet_x': (m.regnet_x_400mf, 32), 'regnet_y': (m.regnet_y_400mf, 32),
    'mnasnet': (m.mnasnet0_5, 32), 'densenet121': (m.densenet121, 32),
    'googlenet': (lambda **k: m.googlenet(aux_logits=False, init_weights=True, **k), 32), 'convnext_tiny': (m.convnext_tiny, 32),
}

if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == '--list':
        print(' '.join(SPECS))
        sys.exit(0)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in sys.argv[2:] or list(SPECS):
        if name not in SPECS:
            sys.exit(f'unknown model {name}; known: {", ".join(SPECS)}')
        ctor, size = SPECS[name]
        net = ctor(num_classes=10).eval()
        x = torch.randn(1, 3, size, size)
        for kind, mode in (('folded', torch.onnx.TrainingMode.EVAL), ('bn', torch.onnx.TrainingMode.PRESERVE)):
            path = os.path.join(out, f'{name}-{kind}.onnx')
            torch.onnx.export(net, x, path, opset_version=17, input_names=['input'], output_names=['logits'],
                              dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, training=mode)
            print(path, flush=True)

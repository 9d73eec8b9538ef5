#!/usr/bin/python3
"""Export torchvision classifiers the other ways users call torch.onnx.export (older opsets, no
dynamic_axes, modules as functions, default names, two outputs, no constant folding, initializers as
inputs, the ATen fallback, training mode, preprocessing inside), each as OUT/<name>-folded.onnx for
bench/torchvision-sweep.ts:

    /usr/bin/python3 bench/torchvision-export-variants.py OUT
    npx tsx bench/torchvision-sweep.ts --out OUT --skip-export --kinds folded \\
        --models $(/usr/bin/python3 bench/torchvision-export-variants.py --list | tr ' ' ,)

Needs Debian's python3-torch and python3-torchvision (0.14). Random init, 10 classes, 32×32.
"""
import os
import sys

import torch
import torchvision.models as m

torch.manual_seed(0)
DYNAMIC = {'input': {0: 'batch'}, 'logits': {0: 'batch'}}
X = torch.randn(1, 3, 32, 32)


class Preprocessing(torch.nn.Module):
    """uint8 NHWC pixels in, CIFAR-10 normalization inside: a deployment-style export."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer('mean', torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1))

    def forward(self, img):
        x = img.permute(0, 3, 1, 2).float() / 255
        return self.net((x - self.mean) / self.std)


class TwoOutputs(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        y = self.net(x)
        return y, torch.softmax(y, 1)


def variants():
    r18 = lambda: m.resnet18(num_classes=10).eval()  # noqa: E731
    mbv2 = lambda: m.mobilenet_v2(num_classes=10).eval()  # noqa: E731
    block = type(m.resnet18().layer1[0])
    return {
        'r18op9': (r18, X, {'opset_version': 9}),
        'r18op11': (r18, X, {'opset_version': 11}),
        'mbv2op9': (mbv2, X, {'opset_version': 9}),
        'mbv2op10': (mbv2, X, {'opset_version': 10}),
        'mbv3op13': (lambda: m.mobilenet_v3_small(num_classes=10).eval(), X, {'opset_version': 13}),
        'effop11': (lambda: m.efficientnet_b0(num_classes=10).eval(), X, {'opset_version': 11}),
        'r18static': (r18, X, {'dynamic_axes': None}),
        'shufstatic': (lambda: m.shufflenet_v2_x0_5(num_classes=10).eval(), X, {'dynamic_axes': None}),
        'r18funcs': (r18, X, {'export_modules_as_functions': {block}}),
        'r18noname': (r18, X, {'input_names': None, 'output_names': None, 'dynamic_axes': None}),
        'r18two': (lambda: TwoOutputs(r18()), X, {'output_names': ['logits', 'probs'], 'dynamic_axes': None}),
        'r18nofold': (r18, X, {'do_constant_folding': False}),
        'r18keep': (r18, X, {'keep_initializers_as_inputs': True}),
        'r18aten': (r18, X, {'operator_export_type': torch.onnx.OperatorExportTypes.ONNX_ATEN_FALLBACK}),
        # Batch statistics need more than one sample per channel.
        'r18train': (lambda: m.resnet18(num_classes=10).train(), torch.randn(2, 3, 32, 32), {'training': torch.onnx.TrainingMode.TRAINING}),
        'r18pre': (lambda: Preprocessing(r18()), torch.zeros(1, 32, 32, 3, dtype=torch.uint8), {'dynamic_axes': {'input': {0: 'batch'}}}),
    }


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if sys.argv[1] == '--list':
        print(' '.join(variants()))
        sys.exit(0)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, (make, x, options) in variants().items():
        kw = {'opset_version': 17, 'input_names': ['input'], 'output_names': ['logits'], 'dynamic_axes': DYNAMIC, **options}
        path = os.path.join(out, f'{name}-folded.onnx')
        torch.onnx.export(make(), x, path, **kw)
        print(path, flush=True)

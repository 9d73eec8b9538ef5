#!/usr/bin/python3
"""Export small PyTorch models to ONNX as foreign test fixtures (test/fixtures/*.onnx).

Run with Debian's python3-torch (1.13):  /usr/bin/python3 scripts/make-torch-fixtures.py [out_dir]
Also usable for one big model, not committed:  ... --resnet18-cifar OUT.onnx  (random weights, BN folded,
Gemm head, input `input`, output `logits`, opset 17 — the shape of the acceptance models).
Weights are seeded so the files are reproducible; each file also gets a .json sidecar with a fixed input and
PyTorch's output for it, so tests compare against PyTorch without needing torch installed.
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)


class TinyResNet(nn.Module):
    """conv-bn-relu, a residual block, maxpool, adaptive avg pool, flatten, linear."""

    def __init__(self, classes=10, in_channels=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        self.conv3 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.stem(x)
        y = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(x + self.bn2(self.conv2(y)))
        x = F.relu(self.down(x) + self.bn3(self.conv3(x)))
        x = self.pool(x)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


class TinyMobileNet(nn.Module):
    """Depthwise separable convs, hardswish, squeeze-excite (sigmoid * x), concat, view via Shape/Gather."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.se_reduce = nn.Conv2d(8, 4, 1)
        self.se_expand = nn.Conv2d(4, 8, 1)
        self.pw = nn.Sequential(nn.Conv2d(8, 12, 1, bias=False), nn.BatchNorm2d(12), nn.LeakyReLU(0.1))
        self.branch = nn.Conv2d(8, 4, 1)
        self.head = nn.Linear(16 * 2 * 2, classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.dw(x)
        s = F.adaptive_avg_pool2d(x, 1)
        s = torch.sigmoid(self.se_expand(F.relu(self.se_reduce(s))))
        x = x * s
        x = torch.cat([self.pw(x), F.hardsigmoid(self.branch(x))], dim=1)
        x = F.avg_pool2d(x, 4)
        x = x.view(x.size(0), -1)
        return F.softmax(self.head(x), dim=1)


class TinyResizeNet(nn.Module):
    """A bilinear downsample (F.interpolate, exported as Resize with pytorch_half_pixel) between convs."""

    def __init__(self, classes=10, in_channels=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.conv = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.stem(x)
        x = F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False)
        x = F.relu(self.conv(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class TinyUpsampleNet(nn.Module):
    """Resize as PyTorch writes it for the other F.interpolate calls: nearest ×2 (asymmetric, floor), then
    bilinear to a given size with align_corners=True, then bicubic ×0.5 (half_pixel variants)."""

    def __init__(self, classes=10, in_channels=3):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 8, 3, stride=2, padding=1)
        self.conv = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.interpolate(x, scale_factor=2, mode='nearest')
        x = F.interpolate(x, size=(20, 24), mode='bilinear', align_corners=True)
        x = F.interpolate(x, scale_factor=0.5, mode='bicubic', align_corners=False)
        x = F.relu(self.conv(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class TinyPixelShuffleNet(nn.Module):
    """F.pixel_shuffle (exported as DepthToSpace, an op slimkit has no definition for) between convs."""

    def __init__(self, classes=10, in_channels=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 8, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.conv = nn.Conv2d(2, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = F.pixel_shuffle(self.stem(x), 2)
        x = F.relu(self.conv(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class LayerNorm2d(nn.LayerNorm):
    """torchvision's ConvNeXt norm: LayerNorm over the channels of an NCHW map, done channels-last."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """torchvision's CNBlock: depthwise 7×7, channels-last LayerNorm and MLP (Linear-GELU-Linear), layer scale."""

    def __init__(self, c):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.fc1 = nn.Linear(c, 4 * c)
        self.fc2 = nn.Linear(4 * c, c)
        self.layer_scale = nn.Parameter(torch.rand(c, 1, 1) + 0.5)

    def forward(self, x):
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.fc2(F.gelu(self.fc1(y))).permute(0, 3, 1, 2)
        return x + self.layer_scale * y


class TinyConvNeXt(nn.Module):
    """ConvNeXt as torchvision builds it, small: its channels sit on the last axis between Transposes."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 2, 2), LayerNorm2d(16, eps=1e-6))
        self.stage1 = nn.Sequential(ConvNeXtBlock(16), ConvNeXtBlock(16))
        self.down = nn.Sequential(LayerNorm2d(16, eps=1e-6), nn.Conv2d(16, 32, 2, 2))
        self.stage2 = ConvNeXtBlock(32)
        self.head_norm = LayerNorm2d(32, eps=1e-6)
        self.fc = nn.Linear(32, classes)
        for m in self.modules():  # LayerNorm's γ = 1, β = 0 would hide a mis-sliced Scale
            if isinstance(m, nn.LayerNorm):
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.normal_(0, 0.1)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.fc(torch.flatten(self.head_norm(F.adaptive_avg_pool2d(x, 1)), 1))


def channel_shuffle(x, groups):
    """torchvision's ShuffleNetV2 shuffle: torch.onnx computes both view targets from Shape at run time."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    return torch.transpose(x, 1, 2).contiguous().view(n, -1, h, w)


class ShuffleUnit(nn.Module):
    """torchvision's InvertedResidual: stride 1 splits the channels with chunk (Slices with computed
    bounds), stride 2 runs two branches; both end in a channel shuffle."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())
        self.branch2 = nn.Sequential(
            nn.Conv2d(cin if stride > 1 else half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False), nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class TinyShuffleNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.units = nn.Sequential(ShuffleUnit(8, 16, 2), ShuffleUnit(16, 16, 1), ShuffleUnit(16, 32, 2), ShuffleUnit(32, 32, 1))
        self.head = nn.Sequential(nn.Conv2d(32, 48, 1, bias=False), nn.BatchNorm2d(48), nn.ReLU())
        self.fc = nn.Linear(48, classes)

    def forward(self, x):
        return self.fc(self.head(self.units(self.stem(x))).mean([2, 3]))


class SEBlock(nn.Module):
    """Squeeze-excitation as the SENet paper's code writes it: torch.onnx computes the view target and
    expand_as's shape from Shape at run time."""

    def __init__(self, c, r=4):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(c, c // r), nn.ReLU(), nn.Linear(c // r, c), nn.Sigmoid())

    def forward(self, x):
        b, c, _, _ = x.size()
        y = F.adaptive_avg_pool2d(x, 1).view(b, c)
        y = self.fc(y).view(b, c, 1, 1)
        return x * y.expand_as(x)


class SEResidual(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.se = SEBlock(cout)
        self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else nn.Sequential()

    def forward(self, x):
        return F.relu(self.se(self.body(x)) + self.short(x))


class TinySENet(nn.Module):
    """Residual blocks with squeeze-excitation on the residual branch (SE-ResNet)."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.Sequential(SEResidual(8, 8, 1), SEResidual(8, 16, 2))
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).view(x.size(0), -1))


def randomize_gn(model, seed):
    """Non-trivial GroupNorm affine parameters (PyTorch starts them at 1 and 0)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.GroupNorm):
            m.weight.data.copy_(torch.rand(m.num_channels, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_channels, generator=g) * 0.1)


class GNResidual(nn.Module):
    """A residual block with GroupNorm (torch.onnx writes it as Reshape → InstanceNormalization →
    Reshape → Mul → Add)."""

    def __init__(self, cin, cout, stride, groups):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.GroupNorm(groups, cout))
        self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.GroupNorm(groups, cout))

    def forward(self, x):
        return F.relu(self.body(x) + self.short(x))


class TinyGNNet(nn.Module):
    """A small ResNet with GroupNorm in place of BatchNorm, affine parameters randomized."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.GroupNorm(2, 8), nn.ReLU())
        self.blocks = nn.Sequential(GNResidual(8, 16, 2, 4), GNResidual(16, 24, 2, 3))
        self.fc = nn.Linear(24, classes)
        randomize_gn(self, 3)

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean([2, 3]))


class TinyGN1Net(nn.Module):
    """GroupNorm's edge cases: GroupNorm(1, C) (a LayerNorm over C, H, W, as PoolFormer writes it) and
    GroupNorm(C, C) (an InstanceNorm with affine), in one residual stage."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.GroupNorm(1, 8), nn.ReLU())
        self.body = nn.Sequential(
            nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.GroupNorm(1, 16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, 1, 1, bias=False), nn.GroupNorm(16, 16))
        self.short = nn.Sequential(nn.Conv2d(8, 16, 1, 2, bias=False), nn.GroupNorm(1, 16))
        self.fc = nn.Linear(16, classes)
        randomize_gn(self, 4)

    def forward(self, x):
        x = self.stem(x)
        return self.fc(F.relu(self.body(x) + self.short(x)).mean([2, 3]))


class TinyGateNet(nn.Module):
    """A spatial gate spread over the channels with expand(-1, C, -1, -1): torch.onnx picks the target's
    entries with ConstantOfShape → Equal → Where."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.gate = nn.Conv2d(8, 1, 1)
        self.body = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.stem(x)
        x = x * torch.sigmoid(self.gate(x)).expand(-1, 8, -1, -1)
        return self.fc(self.body(x).mean([2, 3]))


class TinyPReLUNet(nn.Module):
    """Per-channel PReLU slopes: exported without constant folding, torch.onnx reads each slope through
    Unsqueeze(a.weight, [1, 2]) — a parameter seen through a reshape."""

    def __init__(self, classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.b1 = nn.BatchNorm2d(8)
        self.a1 = nn.PReLU(8)
        self.c2 = nn.Conv2d(8, 16, 3, 2, 1, bias=False)
        self.b2 = nn.BatchNorm2d(16)
        self.a2 = nn.PReLU(16)
        self.fc = nn.Linear(16, classes)
        with torch.no_grad():
            self.a1.weight.uniform_(0.05, 0.5)
            self.a2.weight.uniform_(0.05, 0.5)

    def forward(self, x):
        x = self.a1(self.b1(self.c1(x)))
        return self.fc(self.a2(self.b2(self.c2(x))).mean([2, 3]))


class TinyVarNormNet(nn.Module):
    """A normalization over the channels written by hand with the unbiased variance, divided by
    x.shape[1] - 1: torch.onnx computes it as Shape -> Gather -> Sub -> Cast, float arithmetic on the
    channel count (x.var(1) writes Shape -> Gather -> ReduceProd -> Cast)."""

    def __init__(self, classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, 1, 1)
        self.g = nn.Parameter(torch.empty(1, 16, 1, 1).uniform_(0.5, 1.5))
        self.b = nn.Parameter(torch.empty(1, 16, 1, 1).uniform_(-0.2, 0.2))
        self.c2 = nn.Conv2d(16, 16, 3, 2, 1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.c1(x)
        centred = x - x.mean(1, keepdim=True)
        variance = (centred ** 2).sum(1, keepdim=True) / (x.shape[1] - 1)
        x = centred / torch.sqrt(variance + 1e-5) * self.g + self.b
        return self.fc(torch.relu(self.c2(torch.relu(x))).mean([2, 3]))


class TinyLeftoverNet(nn.Module):
    """Nodes that compute nothing, as exporters and hand-written forwards leave them: avg_pool2d at
    opset 9 becomes Pad (of zeros) -> AveragePool, `x * 1.0 + 0.0` a Mul and an Add, a view to the
    shape the value has a Reshape, `.float()` of a float a Cast."""

    def __init__(self, classes=10):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, 1, 1)
        self.c2 = nn.Conv2d(16, 32, 3, 2, 1)
        self.fc = nn.Linear(32 * 4 * 4, classes)

    def forward(self, x):
        x = F.avg_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.relu(self.c2(x * 1.0 + 0.0)).float()
        x = x.view(x.shape).flatten(1)
        return self.fc(x - 0.0)


def basic_block(cin, cout, stride):
    return nn.ModuleDict({
        'conv1': nn.Conv2d(cin, cout, 3, stride, 1, bias=False), 'bn1': nn.BatchNorm2d(cout),
        'conv2': nn.Conv2d(cout, cout, 3, 1, 1, bias=False), 'bn2': nn.BatchNorm2d(cout),
        'short': nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        if stride != 1 or cin != cout else nn.Sequential(),
    })


class ResNet18Cifar(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1)]:
            blocks.append(basic_block(cin, cout, stride))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for b in self.blocks:
            y = F.relu(b['bn1'](b['conv1'](x)))
            x = F.relu(b['bn2'](b['conv2'](y)) + b['short'](x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


def randomize_bn(model):
    """Non-trivial BN statistics, so BN folding is really exercised."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def export(model, path, size, fold_bn, dynamic_batch=True, fresh=False, batch=2, opset=17, functions=None, channels=3, free_size=False):
    """fresh: keep PyTorch's initial BN (γ = 1, β = 0, mean 0, var 1), which the exporter deduplicates
    into Identity nodes (every γ and running variance one shared tensor of ones).
    dynamic_batch=False: the model takes batches of `batch` only, as torch.onnx writes it without
    dynamic_axes (`x.view(x.size(0), -1)` becomes the stored Reshape target [batch, -1]).
    opset: older opsets are what torch.onnx before 1.12 wrote by default (9).
    functions: module classes written once as ONNX local functions (export_modules_as_functions).
    channels: 1 for a grayscale model.
    free_size: height and width are free too (dynamic_axes on them); with dynamic_batch=False, they alone."""
    model.eval()
    if not fresh:
        randomize_bn(model)
    x = torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(2))
    axes = {'input': {0: 'batch'}, 'logits': {0: 'batch'}} if dynamic_batch else {'input': {}}
    if free_size:
        axes['input'].update({2: 'height', 3: 'width'})
    torch.onnx.export(
        model, x, path, opset_version=opset, input_names=['input'], output_names=['logits'],
        dynamic_axes=axes if dynamic_batch or free_size else None,
        do_constant_folding=fold_bn,
        training=torch.onnx.TrainingMode.EVAL if fold_bn else torch.onnx.TrainingMode.PRESERVE,
        **({'export_modules_as_functions': functions} if functions else {}),
    )
    with torch.no_grad():
        y = model(x)
    with open(path.replace('.onnx', '.json'), 'w') as f:
        json.dump({'input_dims': list(x.shape), 'input': [round(v, 7) for v in x.flatten().tolist()],
                   'output_dims': list(y.shape), 'output': y.flatten().tolist(),
                   'torch': torch.__version__}, f)
    print(path, os.path.getsize(path), 'bytes')


class PixelInput(nn.Module):
    """A deployment-style wrapper: uint8 N×H×W×C pixels in, normalized inside (ImageNet statistics)."""
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, pixels):
        x = pixels.permute(0, 3, 1, 2).float() / 255
        return self.net((x - self.mean) / self.std)


def export_pixels(model, path, size, batch=2):
    """A model taking raw uint8 pixels (see PixelInput); the sidecar's input is the pixels."""
    model.eval()
    randomize_bn(model)
    x = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    torch.onnx.export(model, x, path, opset_version=17, input_names=['pixels'], output_names=['logits'],
                      dynamic_axes={'pixels': {0: 'batch'}, 'logits': {0: 'batch'}})
    with torch.no_grad():
        y = model(x)
    with open(path.replace('.onnx', '.json'), 'w') as f:
        json.dump({'input_dims': list(x.shape), 'input': x.flatten().tolist(),
                   'output_dims': list(y.shape), 'output': y.flatten().tolist(),
                   'torch': torch.__version__}, f)
    print(path, os.path.getsize(path), 'bytes')


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--resnet18-cifar':
        export(ResNet18Cifar(), sys.argv[2], 32, fold_bn=True)
        sys.exit(0)
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures')
    os.makedirs(out, exist_ok=True)
    export(TinyResNet(), os.path.join(out, 'torch-tiny-resnet.onnx'), 16, fold_bn=False)
    export(TinyResNet(), os.path.join(out, 'torch-tiny-resnet-folded.onnx'), 16, fold_bn=True)
    export(TinyMobileNet(), os.path.join(out, 'torch-tiny-mobilenet.onnx'), 16, fold_bn=False)
    export(TinyResNet(), os.path.join(out, 'torch-tiny-resnet-fresh.onnx'), 16, fold_bn=False, fresh=True)
    export(TinyResizeNet(), os.path.join(out, 'torch-tiny-resize.onnx'), 32, fold_bn=True)
    export(TinyConvNeXt(), os.path.join(out, 'torch-tiny-convnext.onnx'), 16, fold_bn=True)
    export(TinyShuffleNet(), os.path.join(out, 'torch-tiny-shufflenet.onnx'), 16, fold_bn=True)
    export(TinyMobileNet(), os.path.join(out, 'torch-tiny-mobilenet-static.onnx'), 16, fold_bn=True, dynamic_batch=False)
    export(TinyShuffleNet(), os.path.join(out, 'torch-tiny-shufflenet-static.onnx'), 16, fold_bn=True, dynamic_batch=False, batch=1)
    export(TinyMobileNet(), os.path.join(out, 'torch-tiny-mobilenet-op9.onnx'), 16, fold_bn=True, opset=9)
    export(TinyResNet(), os.path.join(out, 'torch-tiny-resnet-functions.onnx'), 16, fold_bn=False, functions={nn.Sequential, nn.ReLU})
    export_pixels(PixelInput(TinyResNet()), os.path.join(out, 'torch-tiny-resnet-pixels.onnx'), 16)
    export(TinyResNet(in_channels=1), os.path.join(out, 'torch-tiny-resnet-gray.onnx'), 28, fold_bn=True, channels=1)
    senet = TinySENet()
    export(senet, os.path.join(out, 'torch-tiny-senet.onnx'), 16, fold_bn=True)
    export(senet, os.path.join(out, 'torch-tiny-senet-static.onnx'), 16, fold_bn=True, dynamic_batch=False, batch=1)
    export(senet, os.path.join(out, 'torch-tiny-senet-free.onnx'), 16, fold_bn=True, free_size=True)
    gnnet = TinyGNNet()
    export(gnnet, os.path.join(out, 'torch-tiny-gnnet.onnx'), 16, fold_bn=True)
    export(gnnet, os.path.join(out, 'torch-tiny-gnnet-free.onnx'), 16, fold_bn=True, free_size=True)
    export(gnnet, os.path.join(out, 'torch-tiny-gnnet-free-b1.onnx'), 16, fold_bn=True, free_size=True, dynamic_batch=False, batch=1)
    export(TinyGateNet(), os.path.join(out, 'torch-tiny-gatenet.onnx'), 16, fold_bn=True)
    gn1net = TinyGN1Net()
    export(gn1net, os.path.join(out, 'torch-tiny-gn1net.onnx'), 16, fold_bn=True)
    export(gn1net, os.path.join(out, 'torch-tiny-gn1net-free.onnx'), 16, fold_bn=True, free_size=True)
    export(TinyPReLUNet(), os.path.join(out, 'torch-tiny-prelunet.onnx'), 16, fold_bn=False)
    # The channel shuffle with a free height and width: its Reshape targets stay computed from Shape.
    export(TinyShuffleNet(), os.path.join(out, 'torch-tiny-shufflenet-free.onnx'), 16, fold_bn=True, free_size=True)
    # Unbiased variance over the channels: its C/(C-1) is computed from Shape, and must follow pruning.
    export(TinyVarNormNet(), os.path.join(out, 'torch-tiny-varnorm.onnx'), 16, fold_bn=True)
    # Leftover no-op nodes at opset 9 (slim optimize removes them; int8 then leaves nothing float).
    export(TinyLeftoverNet(), os.path.join(out, 'torch-tiny-leftovers-op9.onnx'), 16, fold_bn=True, opset=9)
    # F.interpolate's other Resize forms (nearest, align_corners, bicubic).
    export(TinyUpsampleNet(), os.path.join(out, 'torch-tiny-upsample.onnx'), 32, fold_bn=True)
    # An op slimkit has no definition for (DepthToSpace), changing the shape between two convs.
    export(TinyPixelShuffleNet(), os.path.join(out, 'torch-tiny-pixelshuffle.onnx'), 32, fold_bn=True)

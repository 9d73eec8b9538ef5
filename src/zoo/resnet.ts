import type { Graph } from '../onnx/graph.js';
import { GraphBuilder, type Value } from './builder.js';

/**
 * ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck, expansion 4) as in torchvision, with node and
 * weight names equal to torchvision's module paths and state-dict keys.
 *
 * Stems: `imagenet` is torchvision's (7×7/2 conv, BN, ReLU, 3×3/2 max pool; 224×224 input);
 * `cifar` is the usual CIFAR variant (3×3/1 conv, BN, ReLU, no max pool; 32×32 input).
 */

export type ResNetDepth = 18 | 34 | 50;
export type ResNetStem = 'cifar' | 'imagenet';

export interface ResNetOptions {
  depth: ResNetDepth;
  stem: ResNetStem;
  classes: number;
  /** Channel multiplier: stage i has max(1, round(64·2^i·width)) planes. 0.25 makes a fast CPU demo. */
  width: number;
  /** Weight-init seed. */
  seed: number;
  /** torchvision's zero_init_residual: γ = 0 for the last BN of every block, so each block starts as identity. */
  zeroInitResidual: boolean;
  /** Image channels: 3 (RGB, default) or 1 (grayscale). */
  inChannels?: number;
  /** [H, W] of the input (default: the stem's square size); global pooling takes any size. */
  imageSize?: [number, number];
  /** Copied into graph.metadata. */
  metadata?: Record<string, string>;
}

type Architecture = Pick<ResNetOptions, 'depth' | 'stem' | 'classes' | 'width' | 'zeroInitResidual' | 'inChannels' | 'imageSize'>;

const LAYOUT: Record<ResNetDepth, { blocks: [number, number, number, number]; bottleneck: boolean }> = {
  18: { blocks: [2, 2, 2, 2], bottleneck: false },
  34: { blocks: [3, 4, 6, 3], bottleneck: false },
  50: { blocks: [3, 4, 6, 3], bottleneck: true },
};

const EXPANSION = 4;

export function resnetInputSize(stem: ResNetStem): number {
  return stem === 'cifar' ? 32 : 224;
}

/** Planes of each of the four stages at this width. */
export function stagePlanes(width: number): number[] {
  return [0, 1, 2, 3].map((i) => Math.max(1, Math.round(64 * 2 ** i * width)));
}

export function buildResNet(o: ResNetOptions): Graph {
  const { builder, logits } = declareResNet(o);
  return builder.build(logits, { seed: o.seed, ...(o.metadata ? { metadata: o.metadata } : {}) });
}

/** Learnable parameters (running statistics excluded), computed without allocating weights. */
export function resnetParameterCount(o: Architecture): number {
  return declareResNet(o).builder.parameterCount();
}

function declareResNet(o: Architecture): { builder: GraphBuilder; logits: Value } {
  if (!(o.width > 0)) throw new RangeError(`ResNet width must be > 0, got ${o.width}`);
  if (!(Number.isInteger(o.classes) && o.classes >= 1)) throw new RangeError(`ResNet classes must be a positive integer, got ${o.classes}`);
  const size = resnetInputSize(o.stem);
  const [height, width] = o.imageSize ?? [size, size];
  const b = new GraphBuilder({ name: `resnet${o.depth}-${o.stem}`, inputShape: [o.inChannels ?? 3, height, width] });
  const planes = stagePlanes(o.width);
  const layout = LAYOUT[o.depth];

  let x = o.stem === 'cifar'
    ? b.conv(b.input, { name: 'conv1', outChannels: planes[0]!, kernel: 3, stride: 1, pad: 1 })
    : b.conv(b.input, { name: 'conv1', outChannels: planes[0]!, kernel: 7, stride: 2, pad: 3 });
  x = b.relu(b.batchNorm(x, { name: 'bn1' }), 'relu');
  if (o.stem === 'imagenet') x = b.maxPool(x, { name: 'maxpool', kernel: 3, stride: 2, pad: 1 });

  layout.blocks.forEach((count, stage) => {
    for (let i = 0; i < count; i++) {
      const block = { name: `layer${stage + 1}.${i}`, planes: planes[stage]!, stride: i === 0 && stage > 0 ? 2 : 1, zeroInitResidual: o.zeroInitResidual };
      x = layout.bottleneck ? bottleneck(b, x, block) : basicBlock(b, x, block);
    }
  });

  x = b.flatten(b.globalAvgPool(x, 'avgpool'), 'flatten');
  const logits = b.gemm(x, { name: 'fc', outFeatures: o.classes, output: 'logits' });
  return { builder: b, logits };
}

interface BlockOptions {
  name: string;
  planes: number;
  stride: number;
  zeroInitResidual: boolean;
}

function basicBlock(b: GraphBuilder, x: Value, o: BlockOptions): Value {
  const n = o.name;
  let y = b.conv(x, { name: `${n}.conv1`, outChannels: o.planes, kernel: 3, stride: o.stride });
  y = b.relu(b.batchNorm(y, { name: `${n}.bn1` }), `${n}.relu`);
  y = b.conv(y, { name: `${n}.conv2`, outChannels: o.planes, kernel: 3 });
  y = b.batchNorm(y, { name: `${n}.bn2`, gamma: o.zeroInitResidual ? 0 : 1 });
  return b.relu(b.add(y, shortcut(b, x, o, o.planes), `${n}.add`), `${n}.relu`);
}

/** torchvision's Bottleneck (v1.5: the stride is on the 3×3 conv). */
function bottleneck(b: GraphBuilder, x: Value, o: BlockOptions): Value {
  const n = o.name;
  let y = b.conv(x, { name: `${n}.conv1`, outChannels: o.planes, kernel: 1 });
  y = b.relu(b.batchNorm(y, { name: `${n}.bn1` }), `${n}.relu`);
  y = b.conv(y, { name: `${n}.conv2`, outChannels: o.planes, kernel: 3, stride: o.stride });
  y = b.relu(b.batchNorm(y, { name: `${n}.bn2` }), `${n}.relu`);
  y = b.conv(y, { name: `${n}.conv3`, outChannels: o.planes * EXPANSION, kernel: 1 });
  y = b.batchNorm(y, { name: `${n}.bn3`, gamma: o.zeroInitResidual ? 0 : 1 });
  return b.relu(b.add(y, shortcut(b, x, o, o.planes * EXPANSION), `${n}.add`), `${n}.relu`);
}

/** Identity, or 1×1 conv + BN (`downsample.0`, `downsample.1`) when the stride or channel count changes. */
function shortcut(b: GraphBuilder, x: Value, o: BlockOptions, outChannels: number): Value {
  if (o.stride === 1 && x.channels === outChannels) return x;
  const conv = b.conv(x, { name: `${o.name}.downsample.0`, outChannels, kernel: 1, stride: o.stride, pad: 0 });
  return b.batchNorm(conv, { name: `${o.name}.downsample.1` });
}

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  buildDependencyGraph, channelMeans, readValues, pruneStructured, pruneStructuredIteratively, pruneUnstructured, removeChannels, planRemoval, scoreGroups, IMPORTANCE, type DependencyGraph, type FineTuner, type StructuredResult,
} from '../src/compress/prune/index.js';
import { float32, int64, makeTensor, toNumbers } from '../src/onnx/tensor.js';
import { decodeModel, encodeModel, readModel } from '../src/onnx/io.js';
import { inferShapes } from '../src/onnx/shape-inference.js';
import { validateGraph } from '../src/onnx/validate.js';
import { modelStats } from '../src/runtime/stats.js';
import { convertFloat16 } from '../src/compress/quantize/fp16.js';
import { buildZooModel } from '../src/zoo/index.js';
import { OPS } from '../src/ops/registry.js';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';
import { Random } from '../src/util/random.js';
import type { Attribute, Graph } from '../src/onnx/graph.js';
import type { Group } from '../src/compress/prune/group.js';
import { asPruningSeesIt, keptWithNote, untiedWeights } from '../src/compress/prune/structured.js';
import { keptChannels } from '../src/compress/prune/apply.js';
import { renormalizeChannels } from '../src/compress/prune/renormalize.js';
import { channelMoments } from '../src/runtime/channel-stats.js';
import { foldBatchNorm, type ChannelMoments } from '../src/passes/index.js';
import { preferredChannelMultiple } from '../src/compress/prune/hardware.js';
import { SlimError } from '../src/errors.js';
import { fixturePath } from './helpers/fixtures.js';
import { runGraph } from '../src/runtime/ort.js';
import { convAppliedTwiceNet, killChannels, maxRelDiff, Net, ortOutput, randomImages } from './prune-fixtures.js';

// torch-tiny-shufflenet: chunk (Slices) and the channel shuffle (Reshape → Transpose → Reshape), all
// bounds and targets computed from Shape at run time.
// torch-tiny-senet: squeeze-excitation's view(b, c) and expand_as, computed from Shape (pruning folds them first).
const FIXTURES = ['torch-tiny-resnet.onnx', 'torch-tiny-resnet-folded.onnx', 'torch-tiny-mobilenet.onnx', 'torch-tiny-shufflenet.onnx', 'torch-tiny-senet.onnx'];
const fixture = (name: string): Promise<Graph> => readModel(fixturePath(name));
const image = (graph: Graph, batch = 2): ReturnType<typeof randomImages> => {
  const shape = graph.inputs[0]!.shape!.map((d) => (typeof d === 'number' ? d : batch));
  return randomImages(shape);
};

/**
 * Kills a quarter of every group (at least one channel) in `original`, then prunes exactly that many
 * by L1: the pruned graph must compute what the killed one does (the oracle for physical removal).
 */
function deadQuarterRemoved(original: Graph, built: DependencyGraph = buildDependencyGraph(original)): { graph: Graph; pruned: Graph } {
  let dep = built;
  let graph = original;
  for (const g of dep.groups) {
    // A group of one channel is never removed: killing it would only make what it feeds a constant.
    if (g.size < 2) continue;
    const k = Math.max(1, Math.floor(g.size / 4));
    const dead = new Set(Array.from({ length: k }, (_, i) => (i * 3 + 1) % g.size));
    dep = { ...dep, graph };
    graph = killChannels(dep, g, dead);
  }
  dep = buildDependencyGraph(graph);
  const scores = scoreGroups(dep.groups, 'l1').scores;
  // Per-group ratios that remove exactly the dead channels (small groups lose their one).
  const fixed = new Map(dep.groups.map((g) => [g.id, g.size < 2 ? 0 : Math.max(1, Math.floor(g.size / 4)) / g.size]));
  const exact = planRemoval(dep, scores, 0, { scope: 'layer', roundTo: 1, maxRatio: 0.9, fixed });
  const pruned = removeChannels(dep, exact.removed);
  validateGraph(pruned);
  return { graph, pruned };
}

/** Split → two convs → Concat (offsets), a stored Reshape flatten, Gemm: the couplings torch exports have. */
function splitConcatNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const a = n.op('Relu', n.conv('input', 3, 16));
  const [s0, s1] = n.split(a, [6, 10]);
  const b0 = n.op('Relu', n.conv(s0!, 6, 8, { k: 1 }));
  const b1 = n.op('Relu', n.bn(n.conv(s1!, 10, 12, { k: 3, bias: false }), 12));
  const cat = n.concat([b0, b1]);
  const dw = n.op('Relu', n.conv(cat, 20, 20, { group: 20 }));
  const pooled = n.node('MaxPool', [dw], { kernel_shape: { type: 'ints', value: [4, 4] }, strides: { type: 'ints', value: [4, 4] } })[0]!;
  const flat = n.reshape(pooled, [0, 80]);
  return n.output(n.gemm(flat, 80, 10));
}

/** Squeeze-excite as an MLP (ReduceMean → Gemm → Gemm → Unsqueeze → Mul), a per-channel constant, Pad. */
function excitationNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.op('Relu', n.conv('input', 3, 16));
  const m = n.node('ReduceMean', [x], { axes: { type: 'ints', value: [2, 3] }, keepdims: { type: 'int', value: 0 } })[0]!;
  const s = n.op('Sigmoid', n.gemm(n.op('Relu', n.gemm(m, 16, 4)), 4, 16));
  const y = n.op('Mul', x, n.op('Unsqueeze', s, n.constant(int64([2], [2, 3]))));
  const shifted = n.op('Add', y, n.weight([16, 1, 1]));
  const padded = n.op('Pad', shifted, n.constant(int64([8], [0, 0, 1, 1, 0, 0, 1, 1])));
  const z = n.op('Relu', n.conv(padded, 16, 8, { k: 3 }));
  return n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', z)), 8, 10));
}

/**
 * Spatial attention (CBAM): a map from the sum and max over the channels gates every channel. The
 * reductions read the channels and write none, so the channels stay prunable; over ReLU outputs a dead
 * channel changes neither the sum nor the max, which keeps removal exact.
 */
function spatialAttentionNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.op('Relu', n.conv('input', 3, 12));
  // Opset 17: ReduceSum takes its axes as an input, ReduceMax as an attribute.
  const sum = n.op('ReduceSum', x, n.constant(int64([1], [1])));
  const max = n.node('ReduceMax', [x], { axes: { type: 'ints', value: [1] } })[0]!;
  const gate = n.op('Sigmoid', n.conv(n.concat([sum, max]), 2, 1, { k: 3 }));
  const y = n.op('Relu', n.conv(n.op('Mul', x, gate), 12, 8));
  return n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', y)), 8, 10));
}

/**
 * CBAM's spatial gate on signed features (a Conv's output, before its ReLU): the mean and the max over
 * every channel. A removed channel is a zero to them, as to everything else: the mean still divides by
 * all 12, and the max still sees a 0 where every kept channel is negative.
 */
function channelStatisticsNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.conv('input', 3, 12);
  const overChannels: Record<string, Attribute> = { axes: { type: 'ints', value: [1] } };
  const mean = n.node('ReduceMean', [x], overChannels)[0]!;
  const max = n.node('ReduceMax', [x], overChannels)[0]!;
  const gate = n.op('Sigmoid', n.conv(n.concat([mean, max]), 2, 1, { k: 3 }));
  const y = n.op('Relu', n.conv(n.op('Mul', n.op('Relu', x), gate), 12, 8));
  return n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', y)), 8, 10));
}

/** A LayerNorm over the channels as torch exports it below opset 17: its mean and variance follow the channels kept. */
function layerNormOpsNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.op('Relu', n.conv('input', 3, 12));
  const overChannels: Record<string, Attribute> = { axes: { type: 'ints', value: [1] } };
  const centred = n.op('Sub', x, n.node('ReduceMean', [x], overChannels)[0]!);
  const variance = n.node('ReduceMean', [n.op('Pow', centred, n.constant(float32([], [2])))], overChannels)[0]!;
  const normed = n.op('Div', centred, n.op('Sqrt', n.op('Add', variance, n.constant(float32([], [1e-5])))));
  return n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Relu', n.conv(normed, 12, 8)))), 8, 10));
}

/** A depthwise conv with a channel multiplier (groups 8, 16 outputs): input channel c makes outputs 2c and 2c + 1. */
function depthwiseMultiplierNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.op('Relu', n.conv('input', 3, 8));
  const y = n.op('Relu', n.conv(x, 8, 16, { k: 3, group: 8 }));
  return n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Relu', n.conv(y, 16, 6, { k: 1 })))), 6, 10));
}

/** A ResNeXt block: 1×1 → grouped 3×3 (4 groups of 3 → 4 of 2) → 1×1, added to the residual. */
function groupedNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.op('Relu', n.conv('input', 3, 16));
  const a = n.op('Relu', n.conv(x, 16, 12, { k: 1 }));
  const b = n.op('Relu', n.conv(a, 12, 8, { k: 3, group: 4 }));
  const y = n.op('Relu', n.op('Add', x, n.conv(b, 8, 16, { k: 1 })));
  return n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', y)), 16, 10));
}

/** Stored Slice bounds: channels 2 … 9 of 12 (rewritten when channels go), then a spatial crop that passes them. */
function slicedNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.op('Relu', n.conv('input', 3, 12));
  const cut = n.op('Slice', x, n.constant(int64([1], [2])), n.constant(int64([1], [10])), n.constant(int64([1], [1])));
  const crop = n.op('Slice', cut, n.constant(int64([1], [1])), n.constant(int64([1], [7])), n.constant(int64([1], [3])));
  const y = n.op('Relu', n.conv(crop, 8, 6, { k: 1 }));
  // Every channel of x is read by this other branch, cropped alike.
  const other = n.op('Slice', n.conv(x, 12, 6, { k: 1 }), n.constant(int64([1], [1])), n.constant(int64([1], [7])), n.constant(int64([1], [3])));
  return n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Add', y, other))), 6, 10));
}

/** x[:, :C // 2] and x[:, -(C // 2):] with bounds computed from Shape (the second through a Neg): the halves stay equal. */
function halvesNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.op('Relu', n.conv('input', 3, 8));
  const half = n.op('Div', n.op('Gather', n.op('Shape', x), n.constant(int64([1], [1]))), n.constant(int64([1], [2])));
  const a = n.op('Slice', x, n.constant(int64([1], [0])), half, n.constant(int64([1], [1])));
  const b = n.op('Slice', x, n.op('Neg', half), n.constant(int64([1], [2 ** 31 - 1])), n.constant(int64([1], [1])));
  const y = n.op('Add', n.op('Relu', n.conv(a, 4, 6, { k: 1 })), n.op('Relu', n.conv(b, 4, 6, { k: 1 })));
  return n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', y)), 6, 10));
}

/** Ops with plain channel rules in a row: Sub/Div by constants, Identity, Dropout, Cast, two Reshapes, GlobalMaxPool, Squeeze, MatMul. */
function passThroughNet(): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const x = n.op('Relu', n.conv('input', 3, 16));
  const a = n.op('Div', n.op('Sub', x, n.weight([1, 16, 1, 1])), n.constant(float32([16, 1, 1], Array.from({ length: 16 }, (_, i) => 1 + i / 8))));
  const c = n.node('Cast', [n.op('Dropout', n.op('Identity', a))], { to: { type: 'int', value: 1 } })[0]!;
  // [N, 16, 8, 8] → [N, 16, 64] (the 16 is spelled out and must be rewritten) → back with 0 = copy.
  const f = n.reshape(n.reshape(c, [0, 16, 64]), [0, 0, 8, 8]);
  const sq = n.op('Squeeze', n.op('GlobalMaxPool', f), n.constant(int64([2], [2, 3])));
  return n.output(n.op('MatMul', sq, n.weight([16, 10])));
}

describe('dependency graph', () => {
  it('finds the residual groups of a PyTorch ResNet and couples Flatten → Gemm', async () => {
    const dep = buildDependencyGraph(await fixture('torch-tiny-resnet.onnx'));
    expect(dep.boundaries).toEqual([]);
    expect(dep.groups.map((g) => [g.root.node.name, g.size])).toEqual([
      ['/stem/stem.0/Conv', 8],
      ['/conv1/Conv', 8],
      ['/down/down.0/Conv', 16],
    ]);
    // The stem's channels run through both residual adds of stage 1 into three convs.
    expect(dep.groups[0]!.nodes).toEqual(expect.arrayContaining(['/Add', '/conv1/Conv', '/conv2/Conv', '/down/down.0/Conv', '/conv3/Conv']));
    // The last stage reaches the classifier's input features through pooling and Flatten.
    expect(dep.groups[2]!.nodes).toEqual(expect.arrayContaining(['/Add_1', '/conv3/Conv', '/GlobalAveragePool', '/Flatten', '/fc/Gemm']));
    expect(dep.frozen.get('logits')).toMatch(/graph output/);
  });

  it('maps Split and Concat offsets and the spread of a flatten', () => {
    const dep = buildDependencyGraph(splitConcatNet());
    // The Split cuts the first conv's channels in two groups (channels 0–5 reach one branch, 6–15 the
    // other); each branch conv reaches the Gemm through Concat, the depthwise conv and the flatten.
    expect(dep.groups.map((g) => [g.root.node.name, g.size])).toEqual([['conv2', 6], ['conv2', 10], ['conv8', 8], ['conv11', 12]]);
    const [s0, s1, b0, b1] = dep.groups;
    expect(Array.from(s0!.members.get('conv2_out0')!)).toEqual([0, 1, 2, 3, 4, 5, ...Array(10).fill(-1)]);
    expect(Array.from(s1!.members.get('conv2_out0')!)).toEqual([...Array(6).fill(-1), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const gemmIn = [...b0!.members.keys()].find((v) => b0!.members.get(v)!.length === 80)!;
    const m0 = b0!.members.get(gemmIn)!;
    const m1 = b1!.members.get(gemmIn)!;
    // Concat puts branch 0 at channels 0–7 and branch 1 at 8–19; the flatten spreads each over 4 features.
    expect(Array.from(m0.slice(0, 8))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(m0.slice(32).every((v) => v === -1)).toBe(true);
    expect(Array.from(m1.slice(32, 40))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('couples an excitation MLP back into its channels through ReduceMean, Unsqueeze and Mul', () => {
    const dep = buildDependencyGraph(excitationNet());
    expect(dep.boundaries).toEqual([]);
    expect(dep.groups.map((g) => [g.root.node.opType, g.size, g.members.size])).toEqual([
      ['Conv', 16, 9],
      ['Gemm', 4, 2],
      ['Conv', 8, 4],
    ]);
  });

  it('the ops channels flow through have channel rules (the rest are boundaries)', () => {
    const ruled = Object.entries(OPS).filter(([, def]) => (def as { channels?: unknown }).channels).map(([op]) => op);
    expect(ruled).toEqual(expect.arrayContaining([
      'Add', 'AveragePool', 'BatchNormalization', 'Cast', 'Clip', 'Concat', 'Conv', 'Div', 'Dropout', 'Flatten', 'Gemm',
      'GlobalAveragePool', 'GlobalMaxPool', 'HardSigmoid', 'HardSwish', 'Identity', 'LeakyRelu', 'MatMul', 'MaxPool', 'Mul',
      'Pad', 'ReduceMean', 'Relu', 'Reshape', 'Shape', 'Sigmoid', 'Softmax', 'Split', 'Squeeze', 'Sub', 'Unsqueeze',
      'Transpose', 'LayerNormalization', 'Slice', 'Expand',
    ]));
    // Shape-data ops, cuts and quantized tensors stay boundaries: pruning never guesses through them.
    for (const op of ['Gather', 'QuantizeLinear', 'DequantizeLinear']) expect(ruled).not.toContain(op);
  });

  it('a grouped conv ties position j of every group, on its input and its output, so the groups stay equal', () => {
    const dep = buildDependencyGraph(groupedNet());
    expect(dep.boundaries).toEqual([]);
    // Group channels (positions) and the root channels they stand for.
    expect(dep.groups.map((g) => [g.root.node.opType, g.size, g.rootChannels])).toEqual([['Conv', 16, 16], ['Conv', 3, 12], ['Conv', 2, 8]]);
    const [, into, out] = dep.groups as [Group, Group, Group];
    const conv1 = [...into.members.values()][0]!;
    expect([...conv1]).toEqual([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
    expect([...out.members.values()][0]).toEqual(Int32Array.from([0, 1, 0, 1, 0, 1, 0, 1]));
    // Removing position 1 of the input side keeps 4 groups of 2 input channels; the written model is valid.
    const removed = new Uint8Array(dep.groupOf.length);
    removed[into.components[1]!] = 1;
    const pruned = removeChannels(dep, removed);
    validateGraph(pruned);
    const grouped = pruned.nodes.find((x) => x.opType === 'Conv' && x.attributes.group?.value === 4)!;
    expect(pruned.initializers.get(grouped.inputs[1]!)!.dims).toEqual([8, 2, 3, 3]);
    expect(grouped.attributes.group).toEqual({ type: 'int', value: 4 });
    // Rounding counts root channels: to a multiple of 8 here is 2 positions of the 4 groups.
    const r = planRemoval(dep, scoreGroups(dep.groups, 'l1').scores, 0.5, { scope: 'layer', roundTo: 8, maxRatio: 0.9, fixed: new Map() });
    expect(r.kept).toEqual([8, 2, 2]);
  });

  it('GroupNorm (Reshape → InstanceNormalization → Reshape) prunes whole groups: GroupNorm(G, C) becomes GroupNorm(G′, G′·C/G)', async () => {
    const graph = asPruningSeesIt(await fixture('torch-tiny-gnnet.onnx'));
    const dep = buildDependencyGraph(graph);
    expect(dep.boundaries).toEqual([]);
    // GroupNorm(2, 8) in the stem, (4, 16) and (3, 24) in the blocks: a group channel is a norm group.
    expect(dep.groups.map((g) => [g.root.node.name, g.size, g.rootChannels])).toEqual([
      ['/stem/stem.0/Conv', 2, 8],
      ['/blocks/blocks.0/body/body.0/Conv', 4, 16],
      ['/blocks/blocks.0/body/body.3/Conv', 4, 16],
      ['/blocks/blocks.1/body/body.0/Conv', 3, 24],
      ['/blocks/blocks.1/body/body.3/Conv', 3, 24],
    ]);
    const stage = dep.groups[2]!;
    expect([...stage.members.get('/blocks/blocks.0/body/body.3/Conv_output_0')!]).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    // BN-γ reads GroupNorm's γ (the Mul after the norm), not the InstanceNormalization's fixed 1s: a norm
    // group scores the sum of |γ| over its channels, in both GroupNorms of the residual stage.
    const bn = scoreGroups(dep.groups, 'bn');
    expect(bn.fallbacks).toEqual([]);
    const gamma = (mul: string): Float32Array => graph.initializers.get(graph.nodes.find((n) => n.name === mul)!.inputs[1]!)!.data as Float32Array;
    const [body, short] = [gamma('/blocks/blocks.0/body/body.4/Mul'), gamma('/blocks/blocks.0/short/short.1/Mul')];
    const expected = [0, 1, 2, 3].map((k) => [0, 1, 2, 3].reduce((sum, i) => sum + Math.abs(body[4 * k + i]!) + Math.abs(short[4 * k + i]!), 0));
    Array.from(bn.scores[2]!).forEach((v, k) => expect(v).toBeCloseTo(expected[k]!, 5));
    // Removing norm group 1 of the residual stage: both its GroupNorms keep 3 groups of 4 channels.
    const removed = new Uint8Array(dep.groupOf.length);
    removed[stage.components[1]!] = 1;
    const pruned = removeChannels(dep, removed);
    validateGraph(pruned);
    const facts = inferShapes(pruned);
    for (const n of pruned.nodes.filter((x) => x.opType === 'InstanceNormalization' && x.name.startsWith('/blocks/blocks.0/body/body.4'))) {
      expect(facts.types.get(n.inputs[0]!)?.shape).toEqual(['batch', 3, 256]);
      expect(facts.types.get(pruned.nodes.find((r) => r.inputs[0] === n.outputs[0])!.outputs[0]!)?.shape).toEqual(['batch', 12, 8, 8]);
    }
  });

  it('GroupNorm(1, C) prunes channel by channel and normalizes over the channels kept: equal to PyTorch built at the pruned widths', async () => {
    const graph = asPruningSeesIt(await fixture('torch-tiny-gn1net.onnx'));
    const dep = buildDependencyGraph(graph);
    expect(dep.boundaries).toEqual([]);
    // GroupNorm(1, C) and GroupNorm(C, C) (one channel per group) in the same residual stage: channels go one at a time.
    expect(dep.groups.map((g) => [g.root.node.name, g.size, g.rootChannels])).toEqual([['/stem/stem.0/Conv', 8, 8], ['/body/body.0/Conv', 16, 16], ['/body/body.3/Conv', 16, 16]]);
    const removed = new Uint8Array(dep.groupOf.length);
    for (const [g, channels] of [[0, [1, 5]], [1, [3]], [2, [2, 7, 11]]] as const) for (const c of channels) removed[dep.groups[g]!.components[c]!] = 1;
    const pruned = removeChannels(dep, removed);
    validateGraph(pruned);
    // The oracle: torch's GroupNorm(1, C′) and GroupNorm(C′, C′) in the same network, from the pruned file's weights.
    const state: Record<string, { dims: number[]; data: number[] }> = {};
    const put = (key: string, name: string): void => {
      const t = pruned.initializers.get(name)!;
      state[key] = { dims: [...t.dims], data: Array.from(t.data as Float32Array) };
    };
    for (const n of pruned.nodes) {
      if (n.opType === 'Conv' || n.opType === 'Gemm') for (const v of n.inputs.slice(1)) put(v, v);
      const module = n.name.split('/').at(-2)!;
      if ((n.opType === 'Mul' || n.opType === 'Add') && pruned.initializers.has(n.inputs[1]!)) put(`${module}.${n.opType === 'Mul' ? 'weight' : 'bias'}`, n.inputs[1]!);
    }
    const side = JSON.parse(readFileSync(fixturePath('torch-tiny-gn1net.json'), 'utf8')) as { input_dims: number[]; input: number[] };
    const script = `
import json, sys, torch, torch.nn as nn, torch.nn.functional as F
d = json.load(sys.stdin)
w = {k: torch.tensor(v['data'], dtype=torch.float32).reshape(v['dims']) for k, v in d['state'].items()}
c0, c1, c2 = w['stem.0.weight'].shape[0], w['body.0.weight'].shape[0], w['body.3.weight'].shape[0]
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, 1, 1, bias=False), nn.GroupNorm(1, c0), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(c0, c1, 3, 2, 1, bias=False), nn.GroupNorm(1, c1), nn.ReLU(), nn.Conv2d(c1, c2, 3, 1, 1, bias=False), nn.GroupNorm(c2, c2))
        self.short = nn.Sequential(nn.Conv2d(c0, c2, 1, 2, bias=False), nn.GroupNorm(1, c2))
        self.fc = nn.Linear(c2, 10)
    def forward(self, x):
        x = self.stem(x)
        return self.fc(F.relu(self.body(x) + self.short(x)).mean([2, 3]))
m = Net().eval()
m.load_state_dict({k: v.reshape(dict(m.state_dict())[k].shape) for k, v in w.items()})
x = torch.tensor(d['input'], dtype=torch.float32).reshape(d['dims'])
print(json.dumps(m(x).detach().flatten().tolist()))
`;
    const torchOut = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify({ state, input: side.input, dims: side.input_dims }), encoding: 'utf8' })) as number[];
    expect(Object.keys(state).sort()).toEqual(['body.0.weight', 'body.1.bias', 'body.1.weight', 'body.3.weight', 'body.4.bias', 'body.4.weight', 'fc.bias', 'fc.weight', 'short.0.weight', 'short.1.bias', 'short.1.weight', 'stem.0.weight', 'stem.1.bias', 'stem.1.weight']);
    expect(state['stem.0.weight']!.dims[0]).toBe(6);
    const ours = await ortOutput(pruned, float32(side.input_dims, side.input));
    expect(maxRelDiff(ours, float32([side.input_dims[0]!, 10], torchOut))).toBeLessThan(1e-5);
  });

  it("GroupNorm's pair with a free height (a -1 in the way back), after a Conv1d; a computed group count and a Transposed InstanceNormalization stop", async () => {
    const groupNorm = (n: Net, x: string, c: number, groups: number, back: number[]): string => {
      const folded = n.reshape(x, [0, groups, -1]);
      const normed = n.op('InstanceNormalization', folded, n.constant(float32([groups], new Array(groups).fill(1))), n.constant(float32([groups], new Array(groups).fill(0))));
      return n.op('Add', n.op('Mul', n.reshape(normed, back), n.weight([c, ...back.slice(2).map(() => 1)])), n.weight([c, ...back.slice(2).map(() => 1)], 0.1));
    };
    // A free height: torch's Shape(x) folds to [0, 8, -1, 8], the -1 the height (pruned pinned, as prune pins it).
    const tall = new Net(['batch', 3, 8, 8]);
    const gn = tall.op('Relu', groupNorm(tall, tall.conv('input', 3, 8), 8, 4, [0, 8, -1, 8]));
    const tallGraph = tall.output(tall.gemm(tall.op('Flatten', tall.op('GlobalAveragePool', tall.conv(gn, 8, 6))), 6, 10));
    // A Conv1d: [N, C, L] into groups and back, rank 3 on both sides.
    const line = new Net(['batch', 3, 16]);
    const conv1d = (x: string, cin: number, cout: number): string => line.node('Conv', [x, line.weight([cout, cin, 3], 0.3)], { kernel_shape: { type: 'ints', value: [3] }, pads: { type: 'ints', value: [1, 1] } })[0]!;
    const gn1d = line.op('Relu', groupNorm(line, conv1d('input', 3, 8), 8, 4, [0, 8, 16]));
    const pooled = line.node('ReduceMean', [conv1d(gn1d, 8, 6)], { axes: { type: 'ints', value: [2] }, keepdims: { type: 'int', value: 0 } })[0]!;
    const lineGraph = line.output(line.gemm(pooled, 6, 10));
    for (const [name, graph, dims] of [['free height', tallGraph, [2, 3, 8, 8]], ['conv1d', lineGraph, [2, 3, 16]]] as const) {
      const dep = buildDependencyGraph(graph);
      expect(dep.boundaries, name).toEqual([]);
      expect(dep.groups[0]!.size, name).toBe(4);
      const removed = new Uint8Array(dep.groupOf.length);
      removed[dep.groups[0]!.components[2]!] = 1;
      const pruned = removeChannels(dep, removed);
      validateGraph(pruned);
      const back = pruned.nodes.filter((n) => n.opType === 'Reshape')[1]!;
      expect(Array.from(pruned.initializers.get(back.inputs[1]!)!.data as BigInt64Array, Number), name).toEqual(name === 'conv1d' ? [0, 6, 16] : [0, 6, -1, 8]);
      expect((await ortOutput(pruned, randomImages([...dims]))).dims, name).toEqual([2, 10]);
    }
    // Written with its height free again, the pruned model runs at another height.
    const freed = buildDependencyGraph(tallGraph);
    const cut = new Uint8Array(freed.groupOf.length);
    cut[freed.groups[0]!.components[2]!] = 1;
    const tallPruned = removeChannels(freed, cut);
    tallPruned.inputs = [{ ...tallPruned.inputs[0]!, shape: ['batch', 3, 'h', 8] }];
    expect((await ortOutput(tallPruned, randomImages([2, 3, 12, 8]))).dims).toEqual([2, 10]);
    // The group count computed from the channels (C / 2): pruning would change it as it went. Not followed.
    const computed = new Net(['batch', 3, 8, 8]);
    const x = computed.conv('input', 3, 8);
    const dims = computed.op('Shape', x);
    const half = computed.op('Div', computed.op('Gather', dims, computed.constant(int64([1], [1]))), computed.constant(int64([1], [2])));
    const target = computed.concat([computed.constant(int64([1], [0])), half, computed.constant(int64([1], [-1]))], 0);
    const folded = computed.op('Reshape', x, target);
    const normed = computed.op('InstanceNormalization', folded, computed.constant(float32([4], [1, 1, 1, 1])), computed.constant(float32([4], [0, 0, 0, 0])));
    const back = computed.op('Relu', computed.op('Reshape', normed, computed.op('Shape', x)));
    const computedGraph = computed.output(computed.gemm(computed.op('Flatten', computed.op('GlobalAveragePool', computed.conv(back, 8, 6))), 6, 10));
    expect(buildDependencyGraph(computedGraph).boundaries.map((b) => b.reason)).toEqual(expect.arrayContaining([expect.stringMatching(/^reshapes \[batch, 8, 8, 8\] to \[batch, 4, 128\] across the channel axis; its target shape is computed at run time/)]));
    // Channels a Transpose put on an axis InstanceNormalization normalizes over: a boundary, not a silent change of statistics.
    const moved = new Net(['batch', 3, 8, 8]);
    const t = moved.node('Transpose', [moved.conv('input', 3, 8)], { perm: { type: 'ints', value: [0, 2, 1, 3] } })[0]!;
    const movedNorm = moved.op('InstanceNormalization', t, moved.weight([8]), moved.weight([8]));
    const movedGraph = moved.output(moved.gemm(moved.op('Flatten', moved.op('GlobalAveragePool', movedNorm)), 8, 10));
    expect(buildDependencyGraph(movedGraph).boundaries.map((b) => b.reason)).toContain('it carries its channels on axis 2, where it would normalize over them');
  });

  it('a gate spread over the channels (Expand of one channel) follows the trunk and names no group, even when written first', () => {
    const n = new Net(['batch', 3, 8, 8]);
    const x = n.op('Relu', n.conv('input', 3, 8));
    const spread = n.op('Expand', n.op('Sigmoid', n.conv(x, 8, 1, { k: 1 })), n.constant(int64([4], [1, 16, 1, 1])));
    const gated = n.op('Mul', n.op('Relu', n.conv(x, 8, 16)), spread);
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Relu', n.conv(gated, 16, 6)))), 6, 10));
    const dep = buildDependencyGraph(graph);
    expect(dep.boundaries).toEqual([]);
    const trunk = dep.groups.find((g) => g.members.has(spread))!;
    expect([trunk.root.node.opType, trunk.size]).toEqual(['Conv', 16]);
  });

  it('a reduction over the channels reads them and writes none: they stay prunable (spatial attention)', () => {
    const dep = buildDependencyGraph(spatialAttentionNet());
    expect(dep.boundaries).toEqual([]);
    expect(dep.groups.map((g) => `${g.root.node.opType}${g.size}`)).toEqual(['Conv12', 'Conv1', 'Conv8']);
    expect([...dep.groups[0]!.members.keys()].some((v) => v.startsWith('mul'))).toBe(true);
  });

  it("a mean or max over the channels is corrected for the removed ones; a normalization's mean and variance are not", async () => {
    const nodesAdded = async (graph: Graph) => {
      const r = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.25 }, roundTo: 1 });
      validateGraph(r.graph);
      return r.graph.nodes.filter((node) => /\.pruned_/.test(node.name)).map((node) => `${node.opType} ${toNumbers(r.graph.initializers.get(node.inputs[1]!)!)}`);
    };
    // 12 channels, 3 removed: the mean times 9/12, the max against 0.
    expect(await nodesAdded(channelStatisticsNet())).toEqual(['Mul 0.75', 'Max 0']);
    expect(await nodesAdded(layerNormOpsNet())).toEqual([]);
    // The mean of another difference squared (x − a pooled x) is no normalization's: corrected.
    const n = new Net(['batch', 3, 8, 8]);
    const x = n.conv('input', 3, 12);
    const pooled = n.node('AveragePool', [x], { kernel_shape: { type: 'ints', value: [3, 3] }, pads: { type: 'ints', value: [1, 1, 1, 1] } })[0]!;
    const contrast = n.node('ReduceMean', [n.op('Pow', n.op('Sub', x, pooled), n.constant(float32([], [2])))], { axes: { type: 'ints', value: [1] } })[0]!;
    const gated = n.op('Mul', n.op('Relu', x), n.op('Sigmoid', contrast));
    expect(await nodesAdded(n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Relu', n.conv(gated, 12, 8)))), 8, 10)))).toEqual(['Mul 0.75']);
    // Pruned again, the nodes appended the first time keep their names apart (two nodes had one name).
    const once = (await pruneStructured(channelStatisticsNet(), { target: { kind: 'ratio', value: 0.25 }, roundTo: 1 })).graph;
    const twice = (await pruneStructured(once, { target: { kind: 'ratio', value: 0.25 }, roundTo: 1 })).graph;
    validateGraph(twice);
    expect(new Set(twice.nodes.map((node) => node.name)).size).toBe(twice.nodes.length);
    expect((await ortOutput(twice, randomImages([2, 3, 8, 8]))).dims).toEqual([2, 10]);
    // After a ReLU a max needs no 0 (spatialAttentionNet: its max reads a ReLU, its sum is exact).
    expect(await nodesAdded(spatialAttentionNet())).toEqual([]);
    // Nor after a ReLU6 seen through a Transpose to channels-last; a Clip that lets −1 through, or a Pad
    // writing −1, still does.
    const channelsLastMax = async (lower: number, padValue?: number) => {
      const m = new Net(['batch', 3, 8, 8]);
      const clipped = m.op('Clip', m.conv('input', 3, 12), m.constant(float32([], [lower])), m.constant(float32([], [6])));
      const padded = padValue === undefined ? clipped : m.op('Pad', clipped, m.constant(int64([8], [0, 0, 1, 1, 0, 0, 1, 1])), m.constant(float32([], [padValue])));
      const perm = (p: number[]): Record<string, Attribute> => ({ perm: { type: 'ints', value: p } });
      const nhwc = m.node('Transpose', [padded], perm([0, 2, 3, 1]))[0]!;
      const max = m.node('ReduceMax', [nhwc], { axes: { type: 'ints', value: [3] } })[0]!;
      const gate = m.op('Sigmoid', m.node('Transpose', [max], perm([0, 3, 1, 2]))[0]!);
      const y = m.op('Relu', m.conv(m.op('Mul', padded, gate), 12, 8));
      return nodesAdded(m.output(m.gemm(m.op('Flatten', m.op('GlobalAveragePool', y)), 8, 10)));
    };
    expect(await channelsLastMax(0)).toEqual([]);
    expect(await channelsLastMax(0, 0)).toEqual([]);
    expect(await channelsLastMax(-1)).toEqual(['Max 0']);
    expect(await channelsLastMax(0, -1)).toEqual(['Max 0']);
  });

  it('a Conv applied twice keeps one weight when both uses are cut alike (each got a copy: the model grew)', async () => {
    const { graph, shared } = convAppliedTwiceNet();
    const r = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.25 }, roundTo: 1 });
    const convs = r.graph.nodes.filter((node) => node.opType === 'Conv').slice(1);
    expect(convs.map((c) => c.inputs[1])).toEqual([convs[0]!.inputs[1], convs[0]!.inputs[1]]);
    expect(r.graph.initializers.get(convs[0]!.inputs[1]!)!.dims).toEqual([6, 6, 3, 3]);
    expect(modelStats(r.graph, inferShapes(r.graph)).params).toBeLessThan(modelStats(graph, inferShapes(graph)).params);
    expect(r.untied).toEqual([]);
    // Cut differently for two readers (the first reads it as it was): two copies, said.
    const after = { ...r.graph, nodes: r.graph.nodes.map((node) => (node === convs[0] ? { ...node, inputs: [node.inputs[0]!, shared.inputs[1]!, node.inputs[2]!] } : node)) };
    expect(untiedWeights(graph, after)).toEqual([{ weight: shared.inputs[1], copies: 2 }]);
    // Names are optional in ONNX: nodes are matched by position.
    const unnamed = (g: Graph): Graph => ({ ...g, nodes: g.nodes.map((node) => ({ ...node, name: '' })) });
    expect(untiedWeights(unnamed(graph), unnamed(after))).toEqual([{ weight: shared.inputs[1], copies: 2 }]);
  });

  it('reads Slice bounds and Split sizes from Constant nodes (torch.onnx writes them so when nothing else is folded)', () => {
    for (const build of [slicedNet, splitConcatNet]) {
      const graph = build();
      // Every stored integer input as a Constant node instead.
      for (const [name, t] of [...graph.initializers]) {
        if (t.dtype !== 'int64') continue;
        graph.initializers.delete(name);
        graph.nodes.unshift({ name: `const_${name}`, opType: 'Constant', domain: '', inputs: [], outputs: [name], attributes: { value: { type: 'tensor', value: t } } });
      }
      const stored = buildDependencyGraph(asPruningSeesIt(build()));
      const dep = buildDependencyGraph(asPruningSeesIt(graph));
      expect(dep.boundaries, build.name).toEqual([]);
      expect(dep.groups.map((g) => g.rootChannels), build.name).toEqual(stored.groups.map((g) => g.rootChannels));
    }
  });

  it('a depthwise conv with a channel multiplier cuts each input channel with its own outputs (its producer could not lose any)', () => {
    const dep = buildDependencyGraph(depthwiseMultiplierNet());
    expect(dep.boundaries).toEqual([]);
    // The stem's 8 channels, each with its 2 depthwise outputs (in 2s at the depthwise conv's output), and the 1×1's 6.
    expect(dep.groups.map((g) => `${g.root.node.opType}${g.size}`)).toEqual(['Conv8', 'Conv6']);
  });

  it.each([
    ['an Unsqueeze', (n: Net, mean: string) => n.op('Unsqueeze', mean, n.constant(int64([1], [1])))],
    // `x.mean(1).view(b, 1, h, w)`: listed as a boundary, "channels on axis 3".
    ['a Reshape', (n: Net, mean: string) => n.op('Reshape', mean, n.constant(int64([4], [-1, 1, 8, 8])))],
    // Nodes between: what reads no channels writes none.
    ['a scale, then an Unsqueeze', (n: Net, mean: string) => n.op('Unsqueeze', n.op('Mul', mean, n.constant(float32([], [2]))), n.constant(int64([1], [1])))],
  ])('a mean over the channels that drops their axis (keepdims 0) leaves %s after it no channels to stop', async (_what, restore) => {
    const n = new Net(['batch', 3, 8, 8]);
    const x = n.op('Relu', n.conv('input', 3, 12));
    const mean = n.node('ReduceMean', [x], { axes: { type: 'ints', value: [1] }, keepdims: { type: 'int', value: 0 } })[0]!;
    const gate = n.op('Sigmoid', restore(n, mean));
    const y = n.op('Relu', n.conv(n.op('Mul', x, gate), 12, 8));
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', y)), 8, 10));
    const dep = buildDependencyGraph(graph);
    expect(dep.boundaries).toEqual([]);
    expect(dep.groups.map((g) => g.rootChannels)).toEqual([12, 8]);
    const pruned = (await pruneStructured(graph, { target: { kind: 'ratio', value: 0.25 }, roundTo: 1 })).graph;
    validateGraph(pruned);
    expect(pruned.nodes.filter((node) => /\.pruned_/.test(node.name)).map((node) => node.opType)).toEqual(['Mul']);
    expect((await ortOutput(pruned, randomImages([2, 3, 8, 8]))).dims).toEqual([2, 10]);
  });

  it('a reduction where every channel counts (Min, Prod, LogSumExp) over the channels is a boundary', () => {
    for (const [op, stops] of [['ReduceMin', true], ['ReduceProd', true], ['ReduceLogSumExp', true], ['ReduceMax', false], ['ReduceMean', false]] as const) {
      const n = new Net(['batch', 3, 8, 8]);
      const x = n.op('Relu', n.conv('input', 3, 8));
      const gate = n.op('Sigmoid', n.node(op, [x], { axes: { type: 'ints', value: [1] } })[0]!);
      const y = n.op('Relu', n.conv(n.op('Mul', x, gate), 8, 4));
      const dep = buildDependencyGraph(n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', y)), 4, 10)));
      expect(dep.boundaries.map((b) => b.opType), op).toEqual(stops ? [op] : []);
      expect(dep.groups.map((g) => g.rootChannels), op).toEqual(stops ? [4] : [8, 4]);
    }
  });

  it('a MAC target out of reach because of boundaries names them first: no knob prunes through one', async () => {
    const n = new Net(['batch', 3, 8, 8]);
    const x = n.op('Relu', n.conv('input', 3, 8));
    const gate = n.op('Sigmoid', n.node('ReduceMin', [x], { axes: { type: 'ints', value: [1] } })[0]!);
    const y = n.op('Relu', n.conv(n.op('Mul', x, gate), 8, 4));
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', y)), 4, 10));
    await expect(pruneStructured(graph, { target: { kind: 'macs', value: 0.3 }, roundTo: 1 })).rejects.toThrow(
      /out of reach: .* — 1 boundary node\(s\) keep their channels, e\.g\. '.*' \(ReduceMin\): .* \(slim prune --analyze lists them all\); else raise the target or raise maxRatio$/,
    );
  });

  it('channels a Transpose moves from where nobody knows them (an NHWC input, a boundary) stop at the next Conv input only', () => {
    const perm = (p: number[]): Record<string, Attribute> => ({ perm: { type: 'ints', value: p } });
    const tail = (n: Net, y: string, c: number): Graph => n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Relu', n.conv(y, c, 8, { k: 1 })))), 8, 10));
    const nhwc = new Net(['batch', 8, 8, 3]);
    const a = nhwc.op('Relu', nhwc.conv(nhwc.node('Transpose', ['input'], perm([0, 3, 1, 2]))[0]!, 3, 12));
    const first = buildDependencyGraph(tail(nhwc, nhwc.op('Relu', nhwc.conv(a, 12, 12)), 12));
    expect(first.boundaries).toEqual([]);
    expect(first.groups.map((g) => g.rootChannels)).toEqual([12, 12, 8]);
    const n = new Net(['batch', 3, 8, 8]);
    const t = n.node('Transpose', [n.op('Relu', n.conv('input', 3, 12))], perm([0, 2, 3, 1]))[0]!;
    const s = n.node('Gather', [t, n.constant(int64([6], [0, 1, 2, 3, 4, 5]))], { axis: { type: 'int', value: 1 } })[0]!;
    const b = n.op('Relu', n.conv(n.node('Transpose', [s], perm([0, 3, 1, 2]))[0]!, 12, 16));
    const second = buildDependencyGraph(tail(n, n.op('Relu', n.conv(b, 16, 16)), 16));
    expect(second.boundaries.map((x) => x.opType)).toEqual(['Gather']);
    expect(second.groups.map((g) => g.rootChannels)).toEqual([16, 16, 8]);
    expect([...second.frozen.values()]).toContainEqual(expect.stringMatching(/carries its channels on axis 2, and Conv '.*' takes them on axis 1/));
  });

  it('a LayerNormalization output left out (Mean) does not shift where the others carry their channels', async () => {
    const n = new Net(['batch', 3, 12, 12]);
    const t = n.node('Transpose', [n.op('Relu', n.conv('input', 3, 12))], { perm: { type: 'ints', value: [0, 2, 1, 3] } })[0]!;
    const ln = n.node('LayerNormalization', [t, n.weight([12]), n.weight([12])], { axis: { type: 'int', value: -1 } }, 3);
    ln[1] = '';
    n.graph.nodes[n.graph.nodes.length - 1]!.outputs[1] = '';
    // InvStdDev [N, H, C, 1] scaled per row (H = C = 12: a mistaken axis would slice this as channels).
    const perRow = n.op('Mul', ln[2]!, n.weight([1, 12, 1, 1]));
    const summed = n.op('ReduceSum', perRow, n.constant(int64([3], [1, 2, 3])));
    const back = n.node('Transpose', [ln[0]!], { perm: { type: 'ints', value: [0, 2, 1, 3] } })[0]!;
    const logits = n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Relu', n.conv(back, 12, 8, { k: 1 })))), 8, 10);
    const graph = n.output(n.op('Add', logits, n.op('Flatten', summed)));
    const dep = buildDependencyGraph(graph);
    expect(dep.spaces.get(ln[2]!)?.axis).toBe(2);
    const removed = new Uint8Array(dep.groupOf.length);
    removed[dep.groups[0]!.components[1]!] = 1;
    const pruned = removeChannels(dep, removed);
    validateGraph(pruned);
    expect((await ortOutput(pruned, image(graph))).dims).toEqual([2, 10]);
  });

  it('follows chunk and the channel shuffle through bounds and targets computed from Shape; refuses what it cannot follow', async () => {
    const graph = await fixture('torch-tiny-shufflenet.onnx');
    const dep = buildDependencyGraph(graph);
    expect(dep.boundaries).toEqual([]);
    // Halves cut by computed bounds (one through Neg) are one group, its positions tied across them.
    const halves = buildDependencyGraph(halvesNet());
    expect(halves.boundaries).toEqual([]);
    expect(halves.groups.map((g) => [g.size, g.rootChannels])).toEqual([[4, 8], [6, 6]]);
    // The shuffle's first Reshape splits the channels into [2, C/2]: they land on axis 2, tied across the parts.
    const split = graph.nodes.find((n) => n.opType === 'Reshape')!;
    expect(dep.spaces.get(split.outputs[0]!)).toMatchObject({ axis: 2, size: 8 });
    // A bound computed from Shape that is not an equal part (C − 1) is a boundary, with the reason.
    const n = new Net(['batch', 3, 8, 8]);
    const x = n.op('Relu', n.conv('input', 3, 8));
    const c = n.op('Gather', n.op('Shape', x), n.constant(int64([1], [1])));
    const cut = n.op('Slice', x, n.constant(int64([1], [0])), n.op('Sub', c, n.constant(int64([1], [1]))), n.constant(int64([1], [1])));
    const odd = buildDependencyGraph(n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.conv(cut, 7, 4))), 4, 10)));
    expect(odd.boundaries.map((b) => [b.opType, b.reason])).toEqual([['Slice', expect.stringMatching(/^its bounds on the channel axis are computed in a way pruning cannot follow \(pruning folds only shape computations that follow the batch alone: export the model without dynamic_axes/)]]);
  });

  it('follows the channel shuffle of a model with a free height and width: its targets stay computed whole (c // 2 folded to 8 stopped it)', async () => {
    const free = asPruningSeesIt(await fixture('torch-tiny-shufflenet-free.onnx'));
    const dep = buildDependencyGraph(free);
    expect(dep.boundaries).toEqual([]);
    const batchOnly = buildDependencyGraph(asPruningSeesIt(await fixture('torch-tiny-shufflenet.onnx')));
    expect(dep.groups.map((g) => [g.size, g.rootChannels])).toEqual(batchOnly.groups.map((g) => [g.size, g.rootChannels]));
    const { graph, pruned } = deadQuarterRemoved(free, dep);
    expect(inferShapes(pruned).totalMacs).toBeLessThan(inferShapes(graph).totalMacs);
    // The written model still takes any size.
    for (const [h, w] of [[16, 16], [24, 20]]) {
      const x = randomImages([2, 3, h!, w!]);
      expect(maxRelDiff(await ortOutput(pruned, x), await ortOutput(graph, x)), `${h}×${w}`).toBeLessThan(1e-5);
    }
  });

  it('a computed shape that a channel count drives elsewhere than in the channel entry is a boundary', () => {
    // view(n, C // 4, -1, h, w): the number of parts shrinks with the channels and the -1 would absorb it.
    const n = new Net(['batch', 3, 8, 8]);
    const x = n.op('Relu', n.conv('input', 3, 8));
    const shape = n.op('Shape', x);
    const dim = (i: number): string => n.op('Unsqueeze', n.op('Gather', shape, n.constant(int64([], [i]))), n.constant(int64([1], [0])));
    const parts = n.op('Unsqueeze', n.op('Div', n.op('Gather', shape, n.constant(int64([], [1]))), n.constant(int64([], [4]))), n.constant(int64([1], [0])));
    const split = n.op('Reshape', x, n.node('Concat', [dim(0), parts, n.constant(int64([1], [-1])), dim(2), dim(3)], { axis: { type: 'int', value: 0 } })[0]!);
    const merged = n.reshape(n.node('Transpose', [split], { perm: { type: 'ints', value: [0, 2, 1, 3, 4] } })[0]!, [0, -1, 8, 8]);
    const first = buildDependencyGraph(n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.conv(merged, 8, 4, { k: 1 }))), 4, 10)));
    expect(first.boundaries[0]?.reason).toMatch(/its target is computed in a way pruning cannot follow/);
    expect(first.groups.map((g) => g.rootChannels)).toEqual([4]);
    // x[:, :, :C // 2]: rows cropped by the channel count would move with it.
    const m = new Net(['batch', 3, 8, 8]);
    const y = m.op('Relu', m.conv('input', 3, 8));
    const half = m.op('Div', m.op('Gather', m.op('Shape', y), m.constant(int64([1], [1]))), m.constant(int64([1], [2])));
    const crop = m.op('Slice', y, m.constant(int64([1], [0])), half, m.constant(int64([1], [2])));
    const second = buildDependencyGraph(m.output(m.gemm(m.op('Flatten', m.op('GlobalAveragePool', m.conv(crop, 8, 6, { k: 1 }))), 6, 10)));
    expect(second.boundaries.map((b) => b.reason)).toEqual(['its bounds on another axis are computed from a channel count']);
  });

  it('a softmax over a spatial axis passes channels, one over the channels stops them', () => {
    for (const [axis, boundary] of [[3, false], [1, true]] as const) {
      const n = new Net(['batch', 3, 8, 8]);
      const x = n.node('Softmax', [n.op('Relu', n.conv('input', 3, 8))], { axis: { type: 'int', value: axis } })[0]!;
      const graph = n.output(n.op('Relu', n.conv(x, 8, 4)));
      const dep = buildDependencyGraph(graph);
      expect(dep.boundaries.map((b) => b.reason)).toEqual(boundary ? ['normalizes across the channels'] : []);
      expect(dep.groups.length).toBe(boundary ? 0 : 1);
    }
  });

  it('stops at ops without a channel rule, and says so; a grouped conv after it starts a group', () => {
    const n = new Net(['batch', 3, 8, 8]);
    const a = n.op('Relu', n.conv('input', 3, 8));
    const s = n.node('Gather', [a, n.constant(int64([8], [0, 1, 2, 3, 4, 5, 6, 7]))], { axis: { type: 'int', value: 3 } })[0]!;
    const g = n.op('Relu', n.conv(s, 8, 8, { group: 2 }));
    const c = n.op('Relu', n.conv(g, 8, 16));
    const gap = n.op('GlobalAveragePool', c);
    const graph = n.output(n.gemm(n.op('Flatten', gap), 16, 10));
    const dep = buildDependencyGraph(graph);
    expect(dep.boundaries.map((b) => [b.opType, b.reason])).toEqual([
      ['Gather', 'Gather has no channel rule'],
    ]);
    // The first conv's channels are frozen; the grouped conv's (2 groups of 4 positions) and the last conv's are free.
    expect(dep.groups.map((x) => [x.root.node.opType, x.size, x.rootChannels])).toEqual([['Conv', 4, 8], ['Conv', 16, 16]]);
  });
});


/**
 * A ConvNeXt block as torch exports it: its LayerNorm (optional) and MLP work channels-last, between
 * two Transposes. Weights come from `w`, so the test can build the same block at a smaller size from
 * weights it slices by hand — the oracle for pruning channels that have moved off axis 1.
 */
function convNeXtNet(c: number, hidden: number, w: (name: string, dims: number[]) => Float32Array, norm: 'op' | 'decomposed' | 'none'): Graph {
  const n = new Net(['batch', 3, 8, 8]);
  const t = (name: string, dims: number[]): string => n.constant(float32(dims, w(name, dims)));
  const pads = { type: 'ints' as const, value: [1, 1, 1, 1] };
  const x = n.node('Conv', ['input', t('conv.w', [c, 3, 3, 3]), t('conv.b', [c])], { kernel_shape: { type: 'ints', value: [3, 3] }, pads })[0]!;
  let y = n.node('Transpose', [x], { perm: { type: 'ints', value: [0, 2, 3, 1] } })[0]!;
  if (norm === 'op') y = n.node('LayerNormalization', [y, t('ln.s', [c]), t('ln.b', [c])], { epsilon: { type: 'float', value: 1e-6 } })[0]!;
  if (norm === 'decomposed') {
    // What torch exports for nn.LayerNorm below opset 17: mean and variance by ReduceMean over the channels.
    const mean = (v: string): string => n.node('ReduceMean', [v], { axes: { type: 'ints', value: [-1] } })[0]!;
    const centred = n.op('Sub', y, mean(y));
    const std = n.op('Sqrt', n.op('Add', mean(n.op('Pow', centred, n.constant(float32([], [2])))), n.constant(float32([], [1e-6]))));
    y = n.op('Add', n.op('Mul', n.op('Div', centred, std), t('ln.s', [c])), t('ln.b', [c]));
  }
  const h = n.op('Add', n.op('MatMul', y, t('fc1.w', [c, hidden])), t('fc1.b', [hidden]));
  const gelu = n.op('Mul', n.op('Mul', h, n.op('Add', n.op('Erf', n.op('Div', h, n.constant(float32([], [Math.SQRT2])))), n.constant(float32([], [1])))), n.constant(float32([], [0.5])));
  const z = n.op('Add', n.op('MatMul', gelu, t('fc2.w', [hidden, c])), t('fc2.b', [c]));
  const back = n.node('Transpose', [z], { perm: { type: 'ints', value: [0, 3, 1, 2] } })[0]!;
  const res = n.op('Add', x, n.op('Mul', t('gamma', [c, 1, 1]), back));
  const flat = n.op('Flatten', n.op('GlobalAveragePool', res));
  return n.output(n.node('Gemm', [flat, t('head.w', [10, c]), t('head.b', [10])], { transB: { type: 'int', value: 1 } })[0]!);
}

/** Random weights for convNeXtNet, and the same weights cut to channels `keep` and hidden units `keepHidden`. */
function convNeXtWeights(): { full: (name: string, dims: number[]) => Float32Array; cut: (keep: number[], keepHidden: number[]) => (name: string) => Float32Array } {
  const rng = new Random(7);
  const made = new Map<string, { dims: number[]; data: Float32Array }>();
  const full = (name: string, dims: number[]): Float32Array => {
    const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (name === 'ln.s' || name === 'gamma' ? 0.5 + rng.nextUint32() / 2 ** 32 : rng.normal() * 0.3));
    made.set(name, { dims, data });
    return data;
  };
  // Which axes of each weight index channels (C) or hidden units (H), spelled out by hand.
  const axes: Record<string, ('C' | 'H' | '-')[]> = {
    'conv.w': ['C', '-', '-', '-'], 'conv.b': ['C'], 'ln.s': ['C'], 'ln.b': ['C'], 'fc1.w': ['C', 'H'], 'fc1.b': ['H'],
    'fc2.w': ['H', 'C'], 'fc2.b': ['C'], gamma: ['C', '-', '-'], 'head.w': ['-', 'C'], 'head.b': ['-'],
  };
  const cut = (keep: number[], keepHidden: number[]) => (name: string): Float32Array => {
    const { dims, data } = made.get(name)!;
    const kept = axes[name]!.map((a, i) => (a === 'C' ? keep : a === 'H' ? keepHidden : Array.from({ length: dims[i]! }, (_, k) => k)));
    const out: number[] = [];
    const walk = (axis: number, offset: number): void => {
      if (axis === dims.length) return void out.push(data[offset]!);
      const stride = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      for (const k of kept[axis]!) walk(axis + 1, offset + k * stride);
    };
    walk(0, 0);
    return Float32Array.from(out);
  };
  return { full, cut };
}

describe('structured pruning against ONNX Runtime', () => {
  it('ratio 0 gives a bit-identical output', async () => {
    for (const name of FIXTURES) {
      const graph = await fixture(name);
      const r = await pruneStructured(graph, { target: { kind: 'ratio', value: 0 } });
      const x = image(graph);
      expect(Array.from((await ortOutput(r.graph, x)).data as Float32Array), name).toEqual(Array.from((await ortOutput(graph, x)).data as Float32Array));
      expect(r.macsAfter).toBe(r.macsBefore);
    }
  });

  it('removing dead channels leaves the output unchanged (fixtures and couplings)', async () => {
    const folded = new Set(['torch-tiny-senet.onnx', 'torch-tiny-gnnet.onnx', 'torch-tiny-gatenet.onnx']);
    const graphs: [string, Graph][] = [...(await Promise.all([...FIXTURES, 'torch-tiny-gnnet.onnx', 'torch-tiny-gatenet.onnx'].map(async (f) => [f, folded.has(f) ? asPruningSeesIt(await fixture(f)) : await fixture(f)] as [string, Graph]))), ['split-concat', splitConcatNet()], ['excitation', excitationNet()], ['pass-through', passThroughNet()], ['spatial attention', spatialAttentionNet()], ['channel statistics', channelStatisticsNet()], ['depthwise ×2', depthwiseMultiplierNet()], ['grouped', groupedNet()], ['sliced', slicedNet()], ['halves', halvesNet()]];
    for (const [name, original] of graphs) {
      let dep = buildDependencyGraph(original);
      // The squeeze-excitation's Expand passes the trunk's channels through (its stored target rewritten);
      // so do GroupNorm's Reshapes, a whole group at a time — a dead group is all 0s, its statistics kept —
      // and a spatial gate's expand(-1, C, -1, -1), whose channels follow the trunk's.
      if (folded.has(name)) expect(dep.boundaries, name).toEqual([]);
      const { graph, pruned } = deadQuarterRemoved(original, dep);
      const x = image(graph);
      const want = await ortOutput(graph, x);
      const got = await ortOutput(pruned, x);
      expect(got.dims, name).toEqual(want.dims);
      expect(maxRelDiff(got, want), name).toBeLessThan(1e-5);
      expect(inferShapes(pruned).totalMacs, name).toBeLessThan(inferShapes(graph).totalMacs);
    }
  });

  it("a hand-written normalization over the channels with the unbiased variance computes C/(C−1) for the channels it keeps", async () => {
    // `/ (x.shape[1] - 1)` is written Shape → Gather → Sub → Cast: float arithmetic on the channel count,
    // once folded to 15 and left so at 8 channels (the normalized output off by up to 1.4).
    const r = await pruneStructured(await fixture('torch-tiny-varnorm.onnx'), { target: { kind: 'ratio', value: 0.5 }, roundTo: 1 });
    const conv = '/c1/Conv_output_0';
    const normalized = r.graph.nodes.find((n) => n.opType === 'Add' && n.inputs.includes('b'))!.outputs[0]!;
    const probe = { ...r.graph, outputs: [{ name: conv, dtype: 'float32' as const }, { name: normalized, dtype: 'float32' as const }] };
    const x = image(r.graph);
    const out = await runGraph(probe, { input: x });
    const [n, c, h, w] = out[conv]!.dims;
    expect(c).toBe(8);
    // The oracle: the formula, on the Conv's output as ONNX Runtime computes it, with the kept γ and β.
    const xs = out[conv]!.data as Float32Array;
    const gamma = toNumbers(r.graph.initializers.get('g')!);
    const beta = toNumbers(r.graph.initializers.get('b')!);
    const got = out[normalized]!.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < n!; i++) {
      for (let p = 0; p < h! * w!; p++) {
        const at = (k: number): number => xs[(i * c! + k) * h! * w! + p]!;
        const mean = Array.from({ length: c! }, (_, k) => at(k)).reduce((a, b) => a + b, 0) / c!;
        const variance = Array.from({ length: c! }, (_, k) => (at(k) - mean) ** 2).reduce((a, b) => a + b, 0) / (c! - 1);
        for (let k = 0; k < c!; k++) {
          const want = ((at(k) - mean) / Math.sqrt(variance + 1e-5)) * gamma[k]! + beta[k]!;
          worst = Math.max(worst, Math.abs(got[(i * c! + k) * h! * w! + p]! - want));
        }
      }
    }
    expect(worst).toBeLessThan(1e-4);
  });

  it('prunes zoo ResNets to half the MACs; they run with the same output shape and report their own MACs', async () => {
    for (const [name, width, roundTo] of [['resnet18-cifar', 0.5, 8], ['resnet50-cifar', 0.125, 1]] as const) {
      const graph = buildZooModel(name, { width, seed: 1 });
      const r = await pruneStructured(graph, { target: { kind: 'macs', value: 0.5 }, roundTo });
      expect(r.boundaries, name).toEqual([]);
      expect(r.macsAfter / r.macsBefore, name).toBeLessThanOrEqual(0.5);
      expect(r.macsAfter / r.macsBefore, name).toBeGreaterThan(0.45);
      // The number reported is the number the written model has.
      const written = decodeModel(encodeModel(r.graph).model);
      expect(inferShapes(written).totalMacs).toBe(r.macsAfter);
      for (const g of r.groups) expect(g.channelsAfter % roundTo === 0 || g.channelsAfter === g.channelsBefore, `${name} ${g.root}`).toBe(true);
      const x = image(graph);
      const [a, b] = [await ortOutput(graph, x), await ortOutput(written, x)];
      expect(b.dims).toEqual(a.dims);
      expect(Array.from(b.data as Float32Array).every(Number.isFinite)).toBe(true);
    }
  });

  it('--round-to auto halves the CPU multiple where narrow layers leave a MAC target out of reach; a given --round-to is kept', async () => {
    const n = new Net(['batch', 3, 8, 8]);
    const a = n.op('Relu', n.conv('input', 3, 6));
    const b = n.op('Relu', n.conv(a, 6, 6, { k: 3 }));
    const c = n.op('Relu', n.conv(b, 6, 6, { k: 3 }));
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', c)), 6, 10));
    const r = await pruneStructured(graph, { target: { kind: 'macs', value: 0.5 } });
    expect(r.roundTo).toBeLessThan(preferredChannelMultiple());
    expect(r.macsAfter).toBeLessThanOrEqual(0.5 * r.macsBefore);
    await expect(pruneStructured(graph, { target: { kind: 'macs', value: 0.5 }, roundTo: 8 })).rejects.toThrow(/MAC target 0\.5 is out of reach/);
    // A channel ratio too: at the CPU's multiple it removed nothing, without a word.
    const byRatio = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.3 } });
    expect(byRatio.roundTo).toBeLessThan(preferredChannelMultiple());
    expect(byRatio.macsAfter).toBeLessThan(byRatio.macsBefore);
  });

  it('K steps end at the widths one cut makes, each step taking a share of every group\'s cut (a trial: 3 steps re-rounded to 16 each time left 16/32-wide groups whole and cut layer4 to a quarter)', async () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.25, seed: 1 });
    for (const target of [{ kind: 'macs', value: 0.5 }, { kind: 'ratio', value: 0.5 }] as const) {
      const once = await pruneStructured(graph, { target, roundTo: 16 });
      const steps: number[] = [];
      const thrice = await pruneStructuredIteratively(graph, { target, roundTo: 16 }, { tuner: {} as FineTuner, steps: 3, epochs: 0, onStep: (r) => void steps.push(r.macs) });
      expect(thrice.groups.map((g) => [g.label, g.channelsBefore, g.channelsAfter]), target.kind).toEqual(once.groups.map((g) => [g.label, g.channelsBefore, g.channelsAfter]));
      expect(thrice.macsAfter).toBe(once.macsAfter);
      // Each step cuts some of the way: MACs fall at every step, the first leaves more than the last.
      expect(steps).toHaveLength(3);
      expect(steps[0]!).toBeLessThan(once.macsBefore);
      expect(steps[1]!).toBeLessThan(steps[0]!);
      expect(steps[2]).toBe(once.macsAfter);
      // Narrow groups are cut too (the old schedule kept every 32-wide group whole).
      expect(thrice.groups.filter((g) => g.channelsBefore === 32).every((g) => g.channelsAfter < 32), target.kind).toBe(true);
    }
  });

  it("names groups that share a root (a shuffle splits a Conv's output) apart; before and after pair up over steps", async () => {
    const graph = await fixture('torch-tiny-shufflenet.onnx');
    const r = await pruneStructuredIteratively(graph, { target: { kind: 'macs', value: 0.5 }, roundTo: 1 }, { tuner: {} as FineTuner, steps: 2, epochs: 0 });
    const labels = r.groups.map((g) => g.label);
    expect(new Set(labels).size).toBe(labels.length);
    expect(labels).toContain('/units/units.0/branch1/branch1.2/Conv #2');
    // root stays the node's name (JSON readers look nodes up by it).
    expect(r.groups.find((g) => g.label.endsWith('#2'))!.root).toBe('/units/units.0/branch1/branch1.2/Conv');
    // Each group's count before is its own (it read "6 → 8": another group's of the same root).
    for (const g of r.groups) expect(g.channelsAfter, g.label).toBeLessThanOrEqual(g.channelsBefore);
    // A numbered label, as --analyze shows it, names that one group for --keep and --layer-ratio.
    const kept = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.5 }, roundTo: 1, keep: ['/units/units.0/branch1/branch1.2/Conv #2'] });
    const second = kept.groups.find((g) => g.label === '/units/units.0/branch1/branch1.2/Conv #2')!;
    expect(second.channelsAfter).toBe(second.channelsBefore);
    expect(kept.groups.find((g) => g.label === '/units/units.0/branch1/branch1.2/Conv #1')!.channelsAfter).toBeLessThan(second.channelsBefore);
    const dep = buildDependencyGraph(asPruningSeesIt(graph));
    expect(r.groups.map((g) => g.channelsBefore)).toEqual(dep.groups.map((g) => g.rootChannels));
  });

  it('PyTorch fixtures prune by MACs, params shrink, ORT runs them', async () => {
    for (const name of FIXTURES) {
      const graph = await fixture(name);
      const r = await pruneStructured(graph, { target: { kind: 'macs', value: 0.6 }, roundTo: 1, scope: 'global' });
      const x = image(graph, 3);
      const out = await ortOutput(r.graph, x);
      expect(out.dims, name).toEqual((await ortOutput(graph, x)).dims);
      expect(r.macsAfter, name).toBeLessThanOrEqual(0.6 * r.macsBefore);
      // Float parameters (folded shape computations add a few int64 targets).
      const params = (g: Graph): number => [...g.initializers.values()].filter((t) => t.dtype === 'float32').reduce((n, t) => n + t.data.length, 0);
      expect(params(r.graph), name).toBeLessThan(params(graph));
    }
  });

  it('prunes channels a Transpose moved to the last axis (ConvNeXt): equal to the block built small from hand-cut weights', async () => {
    const [c, hidden] = [8, 32];
    for (const norm of ['op', 'decomposed', 'none'] as const) {
      const weights = convNeXtWeights();
      const graph = convNeXtNet(c, hidden, weights.full, norm);
      // Recorded shapes (value_info, as onnx.shape_inference writes them) must follow the channels' axis.
      for (const [name, t] of inferShapes(graph).types) if (!graph.initializers.has(name)) graph.valueInfo.set(name, { name, ...t });
      const dep = buildDependencyGraph(graph);
      expect(dep.boundaries).toEqual([]);
      // The residual channels (rooted at the Conv) and the MLP's hidden units (rooted at the first MatMul).
      expect(dep.groups.map((g) => `${g.root.node.opType}${g.size}`)).toEqual(['Conv8', 'MatMul32']);
      const [residual, mlp] = dep.groups as [typeof dep.groups[0], typeof dep.groups[0]];
      const roles = residual.params.map((p) => `${p.node.opType}:${p.param.role}@${p.param.axis}`).sort();
      expect(roles).toEqual(expect.arrayContaining(['MatMul:weight@0', 'MatMul:weight@1', 'Add:bias@0', 'Mul:other@0', 'Conv:weight@0']));
      if (norm === 'op') expect(roles).toEqual(expect.arrayContaining(['LayerNormalization:scale@0', 'LayerNormalization:bias@0']));
      if (norm === 'decomposed') expect(roles).toEqual(expect.arrayContaining(['Mul:other@0', 'Add:bias@0']));
      const [drop, dropHidden] = [[1, 4, 6], [0, 3, 5, 9, 17, 30, 31]];
      const removed = new Uint8Array(dep.groupOf.length);
      for (const i of drop) removed[residual.components[i]!] = 1;
      for (const i of dropHidden) removed[mlp.components[i]!] = 1;
      const pruned = removeChannels(dep, removed);
      validateGraph(pruned);
      const keep = Array.from({ length: c }, (_, i) => i).filter((i) => !drop.includes(i));
      const keepHidden = Array.from({ length: hidden }, (_, i) => i).filter((i) => !dropHidden.includes(i));
      const small = convNeXtNet(keep.length, keepHidden.length, weights.cut(keep, keepHidden), norm);
      const x = image(graph);
      const [got, want] = [await ortOutput(pruned, x), await ortOutput(small, x)];
      expect(maxRelDiff(got, want), `norm ${norm}`).toBeLessThan(1e-5);
      expect(inferShapes(pruned).totalMacs).toBe(inferShapes(small).totalMacs);
      const inferred = inferShapes(pruned).types;
      for (const [name, info] of pruned.valueInfo) expect(info.shape, name).toEqual(inferred.get(name)?.shape);
    }
  });

  it('a PyTorch ConvNeXt export prunes to a MAC target; ORT runs it; a channels-last value a Conv reads stays whole', async () => {
    const graph = await fixture('torch-tiny-convnext.onnx');
    const r = await pruneStructured(graph, { target: { kind: 'macs', value: 0.5 }, roundTo: 1, scope: 'global' });
    expect(r.boundaries).toEqual([]);
    expect(r.macsAfter).toBeLessThanOrEqual(0.5 * r.macsBefore);
    const x = image(graph, 3);
    expect((await ortOutput(r.graph, x)).dims).toEqual([3, 10]);
    // Channels moved off axis 1 do not flow into a Conv, which reads axis 1: they stay whole (the Conv's own outputs do not).
    const n = new Net(['batch', 3, 8, 8]);
    const t = n.node('Transpose', [n.op('Relu', n.conv('input', 3, 8))], { perm: { type: 'ints', value: [0, 2, 1, 3] } })[0]!;
    const dep = buildDependencyGraph(n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.conv(t, 8, 4))), 4, 10)));
    expect(dep.boundaries).toEqual([]);
    expect(dep.frozen.get(t)).toMatch(/carries its channels on axis 2, and Conv '.*' takes them on axis 1/);
    expect(dep.groups.map((g) => g.rootChannels)).toEqual([4]);
  });

  it('reports MACs that match a hand count', async () => {
    // conv 3→8 (3×3) → relu → conv 8→4 (1×1) → GAP → flatten → gemm 4→10, on 8×8 images.
    const n = new Net(['batch', 3, 8, 8]);
    const a = n.op('Relu', n.conv('input', 3, 8));
    const b = n.op('Relu', n.conv(a, 8, 4, { k: 1 }));
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', b)), 4, 10));
    expect(inferShapes(graph).totalMacs).toBe(64 * 8 * 27 + 64 * 4 * 8 + 4 * 10);
    const r = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.5 }, roundTo: 1 });
    expect(r.groups.map((g) => g.channelsAfter)).toEqual([4, 2]);
    expect(r.macsAfter).toBe(64 * 4 * 27 + 64 * 2 * 4 + 2 * 10);
  });

  it('keeps what --keep names, and layer ratios override the search', async () => {
    const graph = await fixture('torch-tiny-resnet.onnx');
    const r = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.5 }, roundTo: 1, keep: ['/conv1/Conv'], layerRatios: { '/down/down.0/Conv': 0.25 } });
    // /conv1/Conv reads the stem's group and writes its own: both stay whole.
    expect(r.groups.map((g) => [g.root, g.channelsAfter])).toEqual([
      ['/stem/stem.0/Conv', 8],
      ['/conv1/Conv', 8],
      ['/down/down.0/Conv', 12],
    ]);
    // What else that kept is said: a pruning trial's --keep of one conv kept 14 nodes' channels without a word.
    expect(r.keptWith).toEqual([{ name: '/conv1/Conv', groups: 2, layers: ['/stem/stem.0/Conv', '/conv2/Conv', '/down/down.0/Conv', '/conv3/Conv'] }]);
    expect(keptWithNote(r.keptWith[0]!, '--keep', '--layer-ratio /conv1/Conv=0 keeps only the channels it writes')).toBe("note: --keep /conv1/Conv keeps whole the 2 channel groups it reads and writes, and so 4 other layer(s) reading or writing them keep those channels too (/stem/stem.0/Conv, /conv2/Conv, /down/down.0/Conv, /conv3/Conv) — --layer-ratio /conv1/Conv=0 keeps only the channels it writes");
    expect(keptWithNote({ name: 'head', groups: 1, layers: [] }, 'keep:')).toBeUndefined();
    // A layer ratio cuts the channels the node writes, not the ones it reads.
    const only = await pruneStructured(graph, { target: { kind: 'ratio', value: 0 }, roundTo: 1, layerRatios: { '/conv1/Conv': 0.5 } });
    expect(only.groups.map((g) => g.channelsAfter)).toEqual([8, 4, 16]);
    // The PyTorch module names `slim info --layers` and --freeze use name the same nodes.
    const byModule = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.5 }, roundTo: 1, keep: ['conv1'], layerRatios: { 'down.0': 0.25 } });
    expect(byModule.groups.map((g) => [g.root, g.channelsAfter])).toEqual(r.groups.map((g) => [g.root, g.channelsAfter]));
    await expect(pruneStructured(graph, { target: { kind: 'ratio', value: 0.5 }, keep: ['/nope'] })).rejects.toThrow(/no node or module named '\/nope' — give a node name as `slim prune MODEL --analyze` lists them, or a PyTorch module name as `slim info MODEL --layers` lists them/);
  });

  it('global scope ranks across groups; an unreachable MAC target is a clear error', async () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.125, seed: 2 });
    const r = await pruneStructured(graph, { target: { kind: 'ratio', value: 0.4 }, scope: 'global', roundTo: 1 });
    const ratios = r.groups.map((g) => 1 - g.channelsAfter / g.channelsBefore);
    expect(Math.max(...ratios) - Math.min(...ratios)).toBeGreaterThan(0.05);
    const total = r.groups.reduce((a, g) => a + g.channelsBefore, 0);
    const removed = r.groups.reduce((a, g) => a + g.channelsBefore - g.channelsAfter, 0);
    expect(removed).toBe(Math.floor(0.4 * total));
    const err = await pruneStructured(graph, { target: { kind: 'macs', value: 0.001 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlimError);
    expect((err as SlimError).message).toMatch(/MAC target 0.001 is out of reach: .* keeps [\d.]+ % of the MACs/);
  });

  it('a model with no channels between layers (one Linear on the pixels) says why, not "--analyze lists the boundaries" of none (trial 28)', async () => {
    const n = new Net(['batch', 3, 8, 8]);
    const graph = n.output(n.gemm(n.op('Flatten', 'input'), 192, 10));
    await expect(pruneStructured(graph, { target: { kind: 'ratio', value: 0.5 } })).rejects.toThrow(
      /no channels that can be pruned — structured pruning removes channels one layer writes and another reads, and the only channels here are the input's and the scores' \(both keep their count\) — --unstructured zeros weights of any layer$/,
    );
  });

  it('refuses a quantized model with a message that says what to do', async () => {
    const n = new Net(['batch', 3, 8, 8]);
    const q = n.constant(makeTensor('int8', [8, 3, 3, 3], Int8Array.from({ length: 216 }, (_, i) => (i % 7) - 3)));
    const w = n.op('DequantizeLinear', q, n.constant(float32([], [0.05])));
    const a = n.op('Relu', n.node('Conv', ['input', w], { pads: { type: 'ints', value: [1, 1, 1, 1] } })[0]!);
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', a)), 8, 10));
    await expect(pruneStructured(graph, { target: { kind: 'macs', value: 0.5 } })).rejects.toThrow(
      /no channels that can be pruned \(1 boundary node\(s\), e.g. 'conv\d+' \(Conv\): its weight is computed, not stored .* prune the float model before quantizing/,
    );
    // Unstructured pruning takes the float weights there are (the Gemm) and leaves the int8 ones alone.
    expect(pruneUnstructured(graph, { sparsity: 0.5 }).tensors.map((t) => t.node)).toEqual([graph.nodes.find((x) => x.opType === 'Gemm')!.name]);
    graph.nodes = graph.nodes.filter((x) => x.opType !== 'Gemm');
    graph.outputs = [{ name: a, dtype: 'float32' }];
    expect(() => pruneUnstructured(graph, { sparsity: 0.5 })).toThrow(/no stored float Conv \/ Gemm \/ MatMul weights/);
  });

  it('a latency target searches on measured latency', async () => {
    const graph = await fixture('torch-tiny-resnet.onnx');
    // A stand-in meter: latency proportional to MACs (the real one runs ORT; see bench/prune-latency.ts).
    const measureLatency = async (g: Graph): Promise<number> => inferShapes(g).totalMacs / 1e4;
    const r: StructuredResult = await pruneStructured(graph, { target: { kind: 'latency', value: 0.6 }, roundTo: 1, measureLatency });
    expect(r.latency!.afterMs).toBeLessThanOrEqual(0.6 * r.latency!.beforeMs);
    expect(r.search.every((s) => s.latencyMs !== undefined)).toBe(true);
  });
});

describe('mean replacement', () => {
  it('a removed channel with a constant activation is folded into the next Conv and Gemm biases exactly', async () => {
    // conv 3→8 → relu → conv 8→4 (1×1) → relu → GAP → flatten → gemm 4→10; channels 1 and 5 of the first
    // conv and channel 2 of the second output a constant (zero filter, positive bias).
    const n = new Net(['batch', 3, 8, 8]);
    const a = n.op('Relu', n.conv('input', 3, 8));
    const b = n.op('Relu', n.conv(a, 8, 4, { k: 1 }));
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', b)), 4, 10));
    const constant = (conv: number, channels: number[], perFilter: number): void => {
      const node = graph.nodes.filter((x) => x.opType === 'Conv')[conv]!;
      const w = Float32Array.from(graph.initializers.get(node.inputs[1]!)!.data as Float32Array);
      const bias = Float32Array.from(graph.initializers.get(node.inputs[2]!)!.data as Float32Array);
      for (const c of channels) {
        w.fill(0, c * perFilter, (c + 1) * perFilter);
        bias[c] = 0.7;
      }
      graph.initializers.set(node.inputs[1]!, float32(graph.initializers.get(node.inputs[1]!)!.dims, w));
      graph.initializers.set(node.inputs[2]!, float32([bias.length], bias));
    };
    constant(0, [1, 5], 27);
    constant(1, [2], 8);
    const dep = buildDependencyGraph(graph);
    const removed = new Uint8Array(dep.groupOf.length);
    for (const c of [dep.groups[0]!.components[1]!, dep.groups[0]!.components[5]!, dep.groups[1]!.components[2]!]) removed[c] = 1;
    const rng = new Random(9);
    const images = { name: 'synthetic', classes: ['a'], imageShape: [3, 8, 8] as [number, number, number], pixels: Uint8Array.from({ length: 16 * 192 }, () => rng.nextUint32() & 255), labels: new Uint16Array(16) };
    const means = await channelMeans(graph, readValues(dep), { images, normalization: CIFAR10_NORMALIZATION, samples: 16 });
    expect(means.get(a)![1]).toBeCloseTo(0.7, 6);
    const x = randomImages([2, 3, 8, 8]);
    const want = await ortOutput(graph, x);
    expect(maxRelDiff(await ortOutput(removeChannels(dep, removed, { means }), x), want)).toBeLessThan(1e-5);
    expect(maxRelDiff(await ortOutput(removeChannels(dep, removed), x), want)).toBeGreaterThan(1e-3);
  });

  it("folds removed constant features into an Add after a MatMul head (x @ W, which has no bias slot; they were dropped)", async () => {
    // conv 3→8 → relu → GAP → flatten → MatMul [8, 10]; channels 2 and 6 constant at 0.7.
    const n = new Net(['batch', 3, 8, 8]);
    const a = n.op('Relu', n.conv('input', 3, 8));
    const graph = n.output(n.op('MatMul', n.op('Flatten', n.op('GlobalAveragePool', a)), n.weight([8, 10], 0.3)));
    const { dep, removed, means, images } = await constantChannelsRemoved(graph, [2, 6]);
    const x = randomImages([2, 3, 8, 8]);
    const want = await ortOutput(graph, x);
    const compensated = removeChannels(dep, removed, { means });
    expect(compensated.nodes.at(-1)!.opType).toBe('Add');
    // A MatMul on channels-last values has nowhere to take them: named, so the result does not claim it.
    const lastAxis = new Net(['batch', 3, 8, 8]);
    const features = lastAxis.op('Relu', lastAxis.conv('input', 3, 8));
    const perm: Record<string, Attribute> = { perm: { type: 'ints', value: [0, 2, 3, 1] } };
    const channelsLast = lastAxis.output(lastAxis.op('MatMul', lastAxis.node('Transpose', [features], perm)[0]!, lastAxis.weight([8, 10], 0.3)));
    const r = await pruneStructured(channelsLast, { target: { kind: 'ratio', value: 0.25 }, roundTo: 1, calibration: { images, normalization: CIFAR10_NORMALIZATION, samples: 16 } });
    expect(r.uncompensated).toEqual([channelsLast.nodes.at(-1)!.name]);
    expect(maxRelDiff(await ortOutput(compensated, x), want)).toBeLessThan(1e-5);
    expect(maxRelDiff(await ortOutput(removeChannels(dep, removed), x), want)).toBeGreaterThan(1e-3);
  });

  it('a mean or max over the channels takes the removed constant channels as their means (it took them as zeros)', async () => {
    // conv 3→12 (channels 2 and 6 constant at 0.7) → mean and max over the channels → a gate on a 1×1 conv of it.
    const n = new Net(['batch', 3, 8, 8]);
    const x = n.conv('input', 3, 12);
    const overChannels: Record<string, Attribute> = { axes: { type: 'ints', value: [1] } };
    const gate = n.op('Sigmoid', n.op('Add', n.node('ReduceMean', [x], overChannels)[0]!, n.node('ReduceMax', [x], overChannels)[0]!));
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Mul', n.conv(x, 12, 8, { k: 1 }), gate))), 8, 10));
    const { dep, removed, means } = await constantChannelsRemoved(graph, [2, 6]);
    const x2 = randomImages([2, 3, 8, 8]);
    const want = await ortOutput(graph, x2);
    const compensated = removeChannels(dep, removed, { means });
    expect(compensated.nodes.filter((node) => /\.pruned_/.test(node.name)).map((node) => node.opType)).toEqual(['Mul', 'Add', 'Max']);
    // Every reader took the means: none is named as reading zeros.
    const missed: string[] = [];
    removeChannels(dep, removed, { means, onUncompensated: (node) => missed.push(node) });
    expect(missed).toEqual([]);
    expect(maxRelDiff(await ortOutput(compensated, x2), want)).toBeLessThan(1e-5);
    expect(maxRelDiff(await ortOutput(removeChannels(dep, removed), x2), want)).toBeGreaterThan(1e-3);
  });

  it("calibrates a float16 model's channel means (ORT refused them declared float32)", async () => {
    const n = new Net(['batch', 3, 8, 8]);
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', n.op('Relu', n.conv('input', 3, 8)))), 8, 10));
    const { dep, means, images } = await constantChannelsRemoved(graph, [2, 6]);
    const half = convertFloat16(graph, 'full').graph;
    const halfMeans = await channelMeans(half, readValues(dep), { images, normalization: CIFAR10_NORMALIZATION, samples: 16 });
    const [value] = readValues(dep);
    expect(halfMeans.get(value!)![2]).toBeCloseTo(0.7, 3);
    for (let c = 0; c < 8; c++) expect(halfMeans.get(value!)![c]).toBeCloseTo(means.get(value!)![c]!, 2);
  });

  it('folds a removed constant channel into a grouped conv, where only its own group reads it', async () => {
    // conv 3→8 → relu → grouped 1×1 conv 8→4 (2 groups of 4 → 2 of 2) → relu → GAP → gemm. Position 1 is
    // constant in both groups (channels 1 and 5), each with its own value.
    const n = new Net(['batch', 3, 8, 8]);
    const a = n.op('Relu', n.conv('input', 3, 8));
    const b = n.op('Relu', n.conv(a, 8, 4, { k: 1, group: 2 }));
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', b)), 4, 10));
    const first = graph.nodes.find((x) => x.opType === 'Conv')!;
    const w = Float32Array.from(graph.initializers.get(first.inputs[1]!)!.data as Float32Array);
    const bias = Float32Array.from(graph.initializers.get(first.inputs[2]!)!.data as Float32Array);
    for (const [c, v] of [[1, 0.7], [5, 1.3]] as const) {
      w.fill(0, c * 27, (c + 1) * 27);
      bias[c] = v;
    }
    graph.initializers.set(first.inputs[1]!, float32([8, 3, 3, 3], w));
    graph.initializers.set(first.inputs[2]!, float32([8], bias));
    const dep = buildDependencyGraph(graph);
    const removed = new Uint8Array(dep.groupOf.length);
    removed[dep.groups[0]!.components[1]!] = 1;
    const rng = new Random(9);
    const images = { name: 'synthetic', classes: ['a'], imageShape: [3, 8, 8] as [number, number, number], pixels: Uint8Array.from({ length: 16 * 192 }, () => rng.nextUint32() & 255), labels: new Uint16Array(16) };
    const means = await channelMeans(graph, readValues(dep), { images, normalization: CIFAR10_NORMALIZATION, samples: 16 });
    const x = randomImages([2, 3, 8, 8]);
    const want = await ortOutput(graph, x);
    expect(maxRelDiff(await ortOutput(removeChannels(dep, removed, { means }), x), want)).toBeLessThan(1e-5);
    expect(maxRelDiff(await ortOutput(removeChannels(dep, removed), x), want)).toBeGreaterThan(1e-3);
  });
});

describe('renormalization after the cuts', () => {
  it("gives every Conv and Gemm downstream of a cut its kept channels' calibrated mean and spread back", async () => {
    const graph = foldBatchNorm(buildZooModel('resnet18-cifar', { width: 0.125, seed: 4 }));
    const dep = buildDependencyGraph(graph);
    // A quarter of every group's channels, drawn at random.
    const rng = new Random(5);
    const removed = new Uint8Array(dep.groupOf.length);
    for (const g of dep.groups) for (let i = 0; i < g.size; i++) if (rng.next() < 0.25) removed[g.components[i]!] = 1;
    const images = { name: 'synthetic', classes: ['a'], imageShape: [3, 32, 32] as [number, number, number], pixels: Uint8Array.from({ length: 32 * 3072 }, () => rng.nextUint32() & 255), labels: new Uint16Array(32) };
    const calibration = { images, normalization: CIFAR10_NORMALIZATION, samples: 32 };
    const means = await channelMeans(graph, readValues(dep), calibration);
    const cut = removeChannels(dep, removed, { means });
    const kept = keptChannels(dep, removed);
    const r = await renormalizeChannels(graph, cut, kept, calibration);
    const convs = r.graph.nodes.filter((n) => r.layers.includes(n.name));
    // Every Conv after the first cut (the stem's reads the image, which lost nothing), and the classifier.
    expect(convs.length).toBe(graph.nodes.filter((n) => n.opType === 'Conv').length - 1 + 1);
    expect(convs.at(-1)!.opType).toBe('Gemm');
    const values = convs.map((n) => n.outputs[0]!);
    const [wanted, now, before] = (await Promise.all([graph, r.graph, cut].map((g) => channelMoments(g, values, calibration)))) as [Map<string, ChannelMoments>, Map<string, ChannelMoments>, Map<string, ChannelMoments>];
    // Largest difference from the original's statistics, relative to its spread.
    const off = (m: Map<string, ChannelMoments>): number => Math.max(...values.flatMap((v) => {
      const want = wanted.get(v)!;
      const index = kept.get(v);
      return [...m.get(v)!.mean].flatMap((mean, j) => {
        const o = index?.[j] ?? j;
        const spread = Math.sqrt(want.variance[o]!) + 1e-6;
        return [Math.abs(mean - want.mean[o]!) / spread, Math.abs(Math.sqrt(m.get(v)!.variance[j]!) - Math.sqrt(want.variance[o]!)) / spread];
      });
    }));
    expect(off(now)).toBeLessThan(1e-3);
    expect(off(before)).toBeGreaterThan(0.05);
    // The output is the same model otherwise: it runs, and its shapes are the cut model's.
    expect(inferShapes(r.graph).totalMacs).toBe(inferShapes(cut).totalMacs);
    // A Gemm whose C is one broadcast value has no per-class bias to shift: left as it is (it read NaN past the first).
    const gemm = cut.nodes.find((n) => n.opType === 'Gemm')!;
    const scalarBias = { ...cut, initializers: new Map([...cut.initializers, [gemm.inputs[2]!, float32([1], [0.5])]]) };
    const broadcast = await renormalizeChannels(graph, scalarBias, kept, calibration);
    expect(broadcast.layers).not.toContain(gemm.name);
    expect(toNumbers(await ortOutput(broadcast.graph, randomImages([2, 3, 32, 32]))).every(Number.isFinite)).toBe(true);
  });
});

/**
 * The first Conv's (3 inputs, 3×3) `channels` made constant at 0.7 — zero filters, bias 0.7 — their
 * removal planned, and every read value's channel means calibrated on 16 random images.
 */
async function constantChannelsRemoved(graph: Graph, channels: number[]) {
  const conv = graph.nodes.find((node) => node.opType === 'Conv')!;
  const [weight, bias] = [graph.initializers.get(conv.inputs[1]!)!, graph.initializers.get(conv.inputs[2]!)!];
  const w = Float32Array.from(weight.data as Float32Array);
  const b = Float32Array.from(bias.data as Float32Array);
  for (const c of channels) {
    w.fill(0, c * 27, (c + 1) * 27);
    b[c] = 0.7;
  }
  graph.initializers.set(conv.inputs[1]!, float32(weight.dims, w));
  graph.initializers.set(conv.inputs[2]!, float32(bias.dims, b));
  const dep = buildDependencyGraph(graph);
  const removed = new Uint8Array(dep.groupOf.length);
  for (const c of channels) removed[dep.groups[0]!.components[c]!] = 1;
  const rng = new Random(9);
  const images = { name: 'synthetic', classes: ['a'], imageShape: [3, 8, 8] as [number, number, number], pixels: Uint8Array.from({ length: 16 * 192 }, () => rng.nextUint32() & 255), labels: new Uint16Array(16) };
  const means = await channelMeans(graph, readValues(dep), { images, normalization: CIFAR10_NORMALIZATION, samples: 16 });
  return { dep, removed, means, images };
}

describe('importance criteria', () => {
  it('L1 and L2 sum every weight a channel owns across the group; BN-γ reads γ; random is seeded', async () => {
    const n = new Net(['batch', 2, 4, 4]);
    const a = n.op('Relu', n.bn(n.conv('input', 2, 3, { k: 1, bias: false }), 3));
    const graph = n.output(n.gemm(n.op('Flatten', n.op('GlobalAveragePool', a)), 3, 2));
    const dep = buildDependencyGraph(graph);
    const [group] = dep.groups;
    const w = graph.initializers.get(graph.nodes[0]!.inputs[1]!)!.data as Float32Array; // [3, 2, 1, 1]
    const gemm = graph.nodes.find((x) => x.opType === 'Gemm')!;
    const b = graph.initializers.get(gemm.inputs[1]!)!.data as Float32Array; // [2, 3]
    const bn = graph.nodes.find((x) => x.opType === 'BatchNormalization')!;
    const gamma = graph.initializers.get(bn.inputs[1]!)!.data as Float32Array;
    for (let c = 0; c < 3; c++) {
      const owned = [w[2 * c]!, w[2 * c + 1]!, b[c]!, b[3 + c]!];
      expect(IMPORTANCE.l1(group!, {})![c]).toBeCloseTo(owned.reduce((s, v) => s + Math.abs(v), 0), 5);
      expect(IMPORTANCE.l2(group!, {})![c]).toBeCloseTo(Math.sqrt(owned.reduce((s, v) => s + v * v, 0)), 5);
      expect(IMPORTANCE.bn(group!, {})![c]).toBeCloseTo(Math.abs(gamma[c]!), 6);
    }
    expect(IMPORTANCE.random(group!, { seed: 4 })).toEqual(IMPORTANCE.random(group!, { seed: 4 }));
    expect(IMPORTANCE.random(group!, { seed: 4 })).not.toEqual(IMPORTANCE.random(group!, { seed: 5 }));
  });

  it('Taylor is |Σ w·∂L/∂w| per channel; BN-γ falls back to L2 where BN was folded', async () => {
    const graph = await fixture('torch-tiny-resnet-folded.onnx');
    const dep = buildDependencyGraph(graph);
    const ones = new Map([...graph.initializers].map(([k, t]) => [k, new Float32Array(t.data.length).fill(1)]));
    const group = dep.groups[1]!;
    const taylor = IMPORTANCE.taylor(group, { gradients: ones })!;
    // With ∂L/∂w = 1 the score is |Σ w| per owned slice, summed over the group's params.
    const expected = new Float64Array(group.size);
    for (const p of group.params) {
      const dims = p.tensor.dims;
      const inner = dims.slice(p.param.axis + 1).reduce((a, b) => a * b, 1);
      const sums = new Float64Array(dims[p.param.axis]!);
      (p.tensor.data as Float32Array).forEach((v, i) => (sums[Math.floor(i / inner) % dims[p.param.axis]!]! += v));
      sums.forEach((s, c) => (expected[group.members.get(p.value)![c]!]! += Math.abs(s)));
    }
    taylor.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
    const { fallbacks } = scoreGroups(dep.groups, 'bn');
    expect(fallbacks).toEqual(dep.groups.map((g) => g.root.node.name));
  });
});

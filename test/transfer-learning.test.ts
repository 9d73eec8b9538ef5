import { stepLines } from '../src/report/provenance.js';
import './helpers/engine-env.js';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import { nativeAvailable } from '../src/engine/native.js';
import { emptyGraph, type Graph, type Node } from '../src/onnx/graph.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { foldBatchNorm } from '../src/passes/index.js';
import { float32, int64, toNumbers, type Tensor } from '../src/onnx/tensor.js';
import { freezeBatchNorm } from '../src/passes/freeze-batchnorm.js';
import { findClassifierHead, replaceClassifierHead } from '../src/passes/replace-head.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { buildZooModel } from '../src/zoo/index.js';
import { runSlim } from './helpers/cli.js';
import { CIFAR_DIR, fixturePath, maxAbsDiff, randomInput, torchSidecar } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-transfer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const node = (name: string, opType: string, inputs: string[], outputs: string[], attributes: Node['attributes'] = {}): Node =>
  ({ name, opType, domain: '', inputs, outputs, attributes });

function uniform(dims: number[], seed: number, low = -1, high = 1): Tensor<'float32'> {
  const rng = new Random(seed);
  return float32(dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(low, high)));
}

/** features [N, 8] → MatMul [8, 5] → Add [5] → Reshape [-1, 5] → Softmax: a head torch writes for 3-D inputs. */
function matmulHead(): Graph {
  const g = emptyGraph('matmul-head');
  g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 8] }];
  g.initializers.set('w', uniform([8, 5], 1));
  g.initializers.set('b', uniform([5], 2));
  g.initializers.set('target', int64([2], [-1, 5]));
  g.nodes = [
    node('mm', 'MatMul', ['x', 'w'], ['y']),
    node('bias', 'Add', ['y', 'b'], ['z']),
    node('reshape', 'Reshape', ['z', 'target'], ['r']),
    node('softmax', 'Softmax', ['r'], ['probs'], { axis: { type: 'int', value: 1 } }),
  ];
  g.outputs = [{ name: 'probs', dtype: 'float32', shape: ['batch', 5] }];
  return g;
}

describe('replaceClassifierHead', () => {
  it('swaps a zoo ResNet\'s Linear for a fresh one: PyTorch\'s init bounds, seeded, the network before it untouched', async () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.25, seed: 3, classes: 10 });
    const head = findClassifierHead(graph);
    expect(head).toMatchObject({ kind: 'Gemm', classes: 10, inFeatures: 128, bias: expect.any(String) as string });
    const r = replaceClassifierHead(graph, { classes: 4, seed: 7 });
    const w = r.graph.initializers.get(r.weight)!;
    const b = r.graph.initializers.get(r.bias!)!;
    expect(w.dims).toEqual([4, 128]); // transB = 1, as nn.Linear's weight
    expect(b.dims).toEqual([4]);
    // nn.Linear's default: U(±1/√fan_in) for weight and bias — and not all the same value.
    for (const t of [w, b]) {
      const values = toNumbers(t);
      expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(128));
      expect(new Set(values).size).toBe(values.length);
    }
    expect(toNumbers(replaceClassifierHead(graph, { classes: 4, seed: 7 }).graph.initializers.get(r.weight)!)).toEqual(toNumbers(w));
    expect(toNumbers(replaceClassifierHead(graph, { classes: 4, seed: 8 }).graph.initializers.get(r.weight)!)).not.toEqual(toNumbers(w));
    expect(r.graph.outputs[0]!.shape).toEqual(['batch', 4]);
    // Every other tensor is the very one it was (passes share tensors), and the input graph is unchanged.
    for (const [name, t] of graph.initializers) if (name !== head.weight && name !== head.bias) expect(r.graph.initializers.get(name)).toBe(t);
    expect(graph.initializers.get(head.weight)!.dims).toEqual([10, 128]);
    const x = randomInput([3, 3, 32, 32]);
    const out = (await runGraph(r.graph, { input: x }))[r.graph.outputs[0]!.name]!;
    expect(out.dims).toEqual([3, 4]);
  });

  it('finds the head behind Softmax and a Reshape that spells out the class count, as MatMul + Add', async () => {
    const graph = matmulHead();
    expect(findClassifierHead(graph)).toMatchObject({ node: 'mm', kind: 'MatMul', weight: 'w', bias: 'b', classes: 5, inFeatures: 8, tail: ['bias', 'reshape', 'softmax'] });
    const r = replaceClassifierHead(graph, { classes: 3, seed: 1 });
    expect(r.graph.initializers.get('w')!.dims).toEqual([8, 3]);
    expect(r.graph.initializers.get('b')!.dims).toEqual([3]);
    const reshape = r.graph.nodes.find((n) => n.name === 'reshape')!;
    expect(toNumbers(r.graph.initializers.get(reshape.inputs[1]!)!)).toEqual([-1, 3]);
    expect(r.graph.initializers.has('target')).toBe(false);
    // The same target as a Constant node (torch.onnx writes those too), and nodes without names (allowed in a file).
    const constant = matmulHead();
    constant.initializers.delete('target');
    constant.nodes = [node('', 'Constant', [], ['target'], { value: { type: 'tensor', value: int64([2], [-1, 5]) } }), ...constant.nodes.map((n) => ({ ...n, name: '' }))];
    const rc = replaceClassifierHead(constant, { classes: 3, seed: 1 });
    expect((await runGraph(rc.graph, { x: randomInput([2, 8]) }))['probs']!.dims).toEqual([2, 3]);
    expect(rc.graph.initializers.get('w')!.dims).toEqual([8, 3]);
    const x = randomInput([2, 8]);
    const probs = (await runGraph(r.graph, { x }))['probs']!;
    expect(probs.dims).toEqual([2, 3]);
    // The same function as writing the new weights by hand: softmax(x·W + b).
    const [W, B] = [toNumbers(r.graph.initializers.get('w')!), toNumbers(r.graph.initializers.get('b')!)];
    const X = toNumbers(x);
    for (let n = 0; n < 2; n++) {
      const logits = [0, 1, 2].map((k) => B[k]! + [...Array(8).keys()].reduce((s, i) => s + X[n * 8 + i]! * W[i * 3 + k]!, 0));
      const z = logits.map((v) => Math.exp(v - Math.max(...logits)));
      const sum = z.reduce((a, v) => a + v, 0);
      for (let k = 0; k < 3; k++) expect((probs.data as Float32Array)[n * 3 + k]).toBeCloseTo(z[k]! / sum, 5);
    }
  });

  it('replaces a 1×1 Conv classifier behind ReLU → pool → Flatten (SqueezeNet) and a Gemm stored [in, out]', async () => {
    const torch = torchSidecar('torch-tiny-resnet-folded.onnx');
    const g = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const gemm = g.nodes.find((n) => n.opType === 'Gemm')!;
    const w = g.initializers.get(gemm.inputs[1]!)!;
    // The same head as a Conv 1×1 before the pool: SqueezeNet's shape of classifier.
    const pool = g.nodes.find((n) => n.opType === 'GlobalAveragePool')!;
    const conv: Graph = {
      ...g,
      initializers: new Map([...g.initializers, ['head.w', float32([10, w.dims[1]!, 1, 1], toNumbers(w))], ['head.b', g.initializers.get(gemm.inputs[2]!)!]]),
      valueInfo: new Map(),
      nodes: [
        ...g.nodes.filter((n) => n !== gemm && n.opType !== 'GlobalAveragePool' && n.opType !== 'Flatten'),
        node('head', 'Conv', [pool.inputs[0]!, 'head.w', 'head.b'], ['maps'], { kernel_shape: { type: 'ints', value: [1, 1] } }),
        node('relu_head', 'Relu', ['maps'], ['maps_relu']),
        node('pool_head', 'GlobalAveragePool', ['maps_relu'], ['pooled']),
        node('flat_head', 'Flatten', ['pooled'], ['logits'], { axis: { type: 'int', value: 1 } }),
      ],
    };
    conv.initializers.delete(gemm.inputs[1]!);
    conv.initializers.delete(gemm.inputs[2]!);
    expect(findClassifierHead(conv)).toMatchObject({ node: 'head', kind: 'Conv', classes: 10, inFeatures: w.dims[1], tail: ['relu_head', 'pool_head', 'flat_head'] });
    const r = replaceClassifierHead(conv, { classes: 2, seed: 1 });
    expect(r.graph.initializers.get('head.w')!.dims).toEqual([2, w.dims[1], 1, 1]);
    expect((await runGraph(r.graph, { input: torch.input }))['logits']!.dims).toEqual([2, 2]);

    // Gemm with transB = 0 keeps its weight as [in, out].
    const transposed: Graph = { ...g, initializers: new Map(g.initializers), nodes: g.nodes.map((n) => (n === gemm ? { ...n, attributes: { ...n.attributes, transB: { type: 'int', value: 0 } } } : n)) };
    const t = toNumbers(w);
    transposed.initializers.set(gemm.inputs[1]!, float32([w.dims[1]!, 10], Array.from({ length: t.length }, (_, i) => t[(i % 10) * w.dims[1]! + Math.floor(i / 10)]!)));
    expect(maxAbsDiff((await runGraph(transposed, { input: torch.input }))['logits']!, torch.output)).toBeLessThan(1e-5);
    const rt = replaceClassifierHead(transposed, { classes: 3, seed: 1 });
    expect(rt.graph.initializers.get(gemm.inputs[1]!)!.dims).toEqual([w.dims[1], 3]);
    expect((await runGraph(rt.graph, { input: torch.input }))['logits']!.dims).toEqual([2, 3]);
  });

  it('replaces a bias torch.onnx passes through an Identity of an equal tensor (EfficientNet\'s classifier)', async () => {
    const torch = torchSidecar('torch-tiny-resnet-folded.onnx');
    const g = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const gemm = g.nodes.find((n) => n.opType === 'Gemm')!;
    // torch stores equal tensors once: the head's bias read through an Identity of another initializer.
    const aliased: Graph = {
      ...g,
      initializers: new Map([...g.initializers].filter(([k]) => k !== gemm.inputs[2]).concat([['elsewhere.bias', g.initializers.get(gemm.inputs[2]!)!]])),
      nodes: [node('alias', 'Identity', ['elsewhere.bias'], ['head_bias']), ...g.nodes.map((n) => (n === gemm ? { ...n, inputs: [n.inputs[0]!, n.inputs[1]!, 'head_bias'] } : n))],
    };
    expect(maxAbsDiff((await runGraph(aliased, { input: torch.input }))['logits']!, torch.output)).toBeLessThan(1e-5);
    const r = replaceClassifierHead(aliased, { classes: 3, seed: 2 });
    expect(r.graph.initializers.get(r.bias!)!.dims).toEqual([3]);
    expect(r.graph.nodes.some((n) => n.name === 'alias')).toBe(false);
    expect(r.graph.initializers.has('elsewhere.bias')).toBe(false);
    expect((await runGraph(r.graph, { input: torch.input }))['logits']!.dims).toEqual([2, 3]);
  });

  it('refuses, saying why, when no classifier layer writes the scores', () => {
    const concat = emptyGraph('concat');
    concat.inputs = [{ name: 'a', dtype: 'float32', shape: [1, 2] }, { name: 'b', dtype: 'float32', shape: [1, 3] }];
    concat.nodes = [node('cat', 'Concat', ['a', 'b'], ['y'], { axis: { type: 'int', value: 1 } })];
    concat.outputs = [{ name: 'y', dtype: 'float32', shape: [1, 5] }];
    expect(() => findClassifierHead(concat)).toThrow(SlimError);
    expect(() => findClassifierHead(concat)).toThrow(/scores come from Concat 'cat', not from a classifier layer/);
    const grouped = emptyGraph('grouped');
    grouped.inputs = [{ name: 'x', dtype: 'float32', shape: [1, 4, 1, 1] }];
    grouped.initializers.set('w', uniform([4, 2, 1, 1], 1));
    grouped.nodes = [node('dw', 'Conv', ['x', 'w'], ['y'], { group: { type: 'int', value: 2 } })];
    grouped.outputs = [{ name: 'y', dtype: 'float32', shape: [1, 4, 1, 1] }];
    expect(() => findClassifierHead(grouped)).toThrow(/is grouped \(group 2\)/);
  });
});

describe('freezeBatchNorm', () => {
  it('folds BN into the Conv before it and writes any other as constant Mul + Add: the same function', async () => {
    const g = emptyGraph('bn');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 3, 6, 6] }];
    const bn = (prefix: string, c: number, seed: number): string[] => {
      g.initializers.set(`${prefix}.g`, uniform([c], seed, 0.5, 1.5));
      g.initializers.set(`${prefix}.b`, uniform([c], seed + 1));
      g.initializers.set(`${prefix}.m`, uniform([c], seed + 2));
      g.initializers.set(`${prefix}.v`, uniform([c], seed + 3, 0.2, 2));
      return [`${prefix}.g`, `${prefix}.b`, `${prefix}.m`, `${prefix}.v`];
    };
    g.initializers.set('conv.w', uniform([4, 3, 3, 3], 9));
    g.nodes = [
      node('relu', 'Relu', ['x'], ['r']),
      node('bn_after_relu', 'BatchNormalization', ['r', ...bn('bn0', 3, 10)], ['n0'], { epsilon: { type: 'float', value: 1e-3 } }),
      node('conv', 'Conv', ['n0', 'conv.w'], ['c'], { pads: { type: 'ints', value: [1, 1, 1, 1] } }),
      node('bn_after_conv', 'BatchNormalization', ['c', ...bn('bn1', 4, 20)], ['y']),
    ];
    g.outputs = [{ name: 'y', dtype: 'float32', shape: ['batch', 4, 6, 6] }];
    const frozen = freezeBatchNorm(g);
    expect(frozen.nodes.map((n) => n.opType)).toEqual(['Relu', 'Mul', 'Add', 'Conv']);
    expect([...frozen.initializers.keys()].some((k) => k.startsWith('bn0.'))).toBe(false);
    const x = randomInput([2, 3, 6, 6]);
    expect(maxAbsDiff((await runGraph(frozen, { x }))['y']!, (await runGraph(g, { x }))['y']!)).toBeLessThan(1e-5);
  });
});

/** train/ and test/ folders of 16×16 PNGs in three classes told apart by their dominant colour. */
async function colourFolder(root: string, perClass: { train: number; test: number }): Promise<void> {
  const rng = new Random(5);
  const classes = { red: 0, green: 1, blue: 2 };
  for (const [split, count] of Object.entries(perClass)) {
    for (const [name, channel] of Object.entries(classes)) {
      const folder = path.join(root, split, name);
      mkdirSync(folder, { recursive: true });
      for (let i = 0; i < count; i++) {
        const pixels = Buffer.alloc(16 * 16 * 3);
        for (let p = 0; p < 256; p++) {
          for (let c = 0; c < 3; c++) pixels[p * 3 + c] = Math.round((c === channel ? 110 : 40) + rng.uniform(0, 110));
        }
        await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(folder, `${i}.png`));
      }
    }
  }
}

describe.skipIf(!nativeAvailable())('slim train --new-head --freeze-backbone', () => {
  it('fine-tunes a PyTorch model on other classes: the written model is the original network with the trained head', async () => {
    const data = path.join(dir, 'colours');
    await colourFolder(data, { train: 40, test: 20 });
    const model = fixturePath('torch-tiny-resnet.onnx'); // BatchNormalization kept, 10 classes
    const out = path.join(dir, 'colours.onnx');
    const r = await runSlim(['train', '--model', model, '--data', data, '--new-head', '--freeze-backbone', '--epochs', '6', '--batch', '20', '--lr', '0.05', '--no-augment', '--threads', '2', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/new classifier: Gemm '.*' scored 10 classes from \d+ features; it now scores the data's 3/);
    expect(r.stderr).toMatch(/frozen backbone: training only Gemm/);
    const summary = JSON.parse(r.stdout) as { test_top1: number; onnxruntime_top1: number };
    expect(summary.onnxruntime_top1).toBeGreaterThanOrEqual(0.9);
    expect(Math.abs(summary.onnxruntime_top1 - summary.test_top1)).toBeLessThanOrEqual(0.0005);

    const written = await readModel(out);
    expect(written.outputs[0]!.shape).toEqual(['batch', 3]);
    expect(JSON.parse(written.metadata['slimkit.classes']!)).toEqual(['blue', 'green', 'red']);
    // Its history says how it was made: from which export, a new head, the backbone frozen (it said "trained", as if from scratch).
    expect(stepLines(written.metadata).at(-1)).toMatch(/^\d+\. fine-tuned from torch-tiny-resnet\.onnx 6 epochs on 120 images \(batch 20, cpu, a new classifier head for 3 classes \(replacing one for 10\), backbone frozen\)/);
    // Oracle: the original model (BN at its running statistics) with the trained head put in, run by
    // ONNX Runtime, computes what the written model does — so nothing before the head moved.
    const original = await readModel(model);
    const head = findClassifierHead(written);
    const spliced: Graph = { ...original, initializers: new Map(original.initializers), outputs: [{ ...original.outputs[0]!, shape: ['batch', 3] }] };
    const originalHead = findClassifierHead(original);
    spliced.initializers.set(originalHead.weight, written.initializers.get(head.weight)!);
    spliced.initializers.set(originalHead.bias!, written.initializers.get(head.bias!)!);
    const x = randomInput([4, 3, 16, 16], 11);
    const [a, b] = [(await runGraph(written, { input: x }))['logits']!, (await runGraph(spliced, { input: x }))['logits']!];
    expect(a.dims).toEqual([4, 3]);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
  }, 240_000);

  it('without --freeze-backbone the whole network trains; flags that need a model file are refused for zoo models', async () => {
    const data = path.join(dir, 'colours-all');
    await colourFolder(data, { train: 20, test: 10 });
    const model = fixturePath('torch-tiny-resnet-folded.onnx');
    const out = path.join(dir, 'all.onnx');
    const ck = path.join(dir, 'all-ck');
    const r = await runSlim(['train', '--model', model, '--data', data, '--new-head', '--epochs', '1', '--batch', '20', '--no-augment', '--threads', '2', '--checkpoint-dir', ck, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    // Resumed with another --lr (and a data folder that is gone): refused before the data is read or a head is made.
    const changed = await runSlim(['train', '--model', model, '--data', path.join(dir, 'gone'), '--new-head', '--epochs', '1', '--batch', '20', '--no-augment', '--threads', '2', '--checkpoint-dir', ck, '--resume', '--lr', '0.01', '--out', out]);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/all-ck\/last\.ckpt: the checkpoint was made by a run with other settings \(--lr: 0\.1 then, 0\.01 now\)/);
    expect(changed.stderr).not.toMatch(/new classifier|gone/);
    const [before, after] = [await readModel(model), await readModel(out)];
    const firstConv = before.nodes.find((n) => n.opType === 'Conv')!.inputs[1]!;
    expect(maxAbsDiff(after.initializers.get(firstConv)!, before.initializers.get(firstConv)!)).toBeGreaterThan(0);
    expect(after.outputs[0]!.shape).toEqual(['batch', 3]);

    const refused = await runSlim(['train', '--model', model, '--data', data, '--epochs', '1', '--out', path.join(dir, 'x.onnx')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/scores 10 classes but --data has 3/);
    expect(refused.stderr).toMatch(/--new-head/);
    const zoo = await runSlim(['train', '--model', 'resnet18-cifar', '--data', data, '--new-head', '--freeze-backbone', '--out', path.join(dir, 'y.onnx')]);
    expect(zoo.code).toBe(2);
    expect(zoo.stderr).toMatch(/--new-head, --freeze-backbone work on an \.onnx model; resnet18-cifar is built fresh.* — drop them \(--classes sets a zoo model's class count\)/);
    // A zoo model trained from scratch on one's own images takes their statistics (it was refused), and records them.
    const own = path.join(dir, 'own-stats.onnx');
    const stats = await runSlim(['train', '--model', 'resnet18-cifar', '--width', '0.125', '--data', data, '--mean', '0.5,0.4,0.3', '--std', '0.25', '--epochs', '1', '--batch', '20', '--threads', '2', '--out', own]);
    expect(stats.code, stats.stderr).toBe(0);
    const recorded = (await readModel(own)).metadata;
    expect(JSON.parse(recorded['slimkit.mean']!)).toEqual([0.5, 0.4, 0.3]);
    expect(JSON.parse(recorded['slimkit.std']!)).toEqual([0.25, 0.25, 0.25]);
  }, 240_000);
});

describe.skipIf(!nativeAvailable())('recipes: train stages with new_head / freeze_backbone', () => {
  /** A model trained on 5 classes, BN folded as torch.onnx writes it; the recipe's data has CIFAR-10's 10. */
  const source = path.join(dir, 'five-classes.onnx');
  const recipe = (stage: string): string =>
    `name: transfer\ndata: { train_per_class: 10, test_limit: 50 }\nmodel: { file: five-classes.onnx }\nstages:\n  - ${stage}\n  - bench: { runs: 50, warmup_runs: 1, batch: 4 }\n`;
  const run = async (name: string, stage: string, extra: string[] = []): Promise<{ code: number; stderr: string; runDir: string }> => {
    const file = path.join(dir, `${name}.yaml`);
    writeFileSync(file, recipe(stage));
    const runDir = path.join(dir, `run-${name}`);
    const r = await runSlim(['run', file, '--run-dir', runDir, '--data-dir', CIFAR_DIR, '--threads', '1', '--no-report', ...extra], { timeoutMs: 240_000 });
    return { code: r.code, stderr: r.stderr, runDir };
  };

  it('a model for other classes is refused unless a train stage gives it a new head', async () => {
    await writeModel(foldBatchNorm(buildZooModel('resnet18-cifar', { width: 0.125, seed: 5, classes: 5 })), source);
    const refused = await run('no-head', 'quantize: { id: int8, samples: 32 }');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/model\.file: the model has 5 classes but the data has 10 .*stage 'int8' \(quantize\) reads it as it is — .*new_head: true/);
  });

  it('new_head + freeze_backbone: a fresh 10-class head is trained, the backbone keeps its weights, the bench leaves the 5-class source out', async () => {
    const r = await run('frozen', 'train: { id: tuned, epochs: 1, batch: 50, lr: 0.05, new_head: true, freeze_backbone: true }');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/new classifier: Gemm 'fc' scored 5 classes from 64 features; it now scores the data's 10/);
    expect(r.stderr).toMatch(/'input' scores other classes than the data: left out of this bench/);
    const [before, after] = await Promise.all([readModel(source), readModel(path.join(r.runDir, 'models', 'tuned.onnx'))]);
    expect(after.outputs[0]!.shape).toEqual(['batch', 10]);
    expect(JSON.parse(after.metadata['slimkit.classes']!)).toHaveLength(10);
    // Oracle: every backbone weight of the source, bit for bit.
    const convs = before.nodes.filter((n) => n.opType === 'Conv');
    expect(convs.length).toBeGreaterThan(10);
    for (const conv of convs) {
      const twin = after.nodes.find((n) => n.name === conv.name)!;
      expect(toNumbers(after.initializers.get(twin.inputs[1]!)!)).toEqual(toNumbers(before.initializers.get(conv.inputs[1]!)!));
    }
    const manifest = JSON.parse(readFileSync(path.join(r.runDir, 'manifest.json'), 'utf8')) as { stages: { id: string; result?: { variants?: { id: string }[] } }[] };
    expect(manifest.stages.find((s) => s.id === 'bench')!.result!.variants!.map((v) => v.id)).toEqual(['tuned']);
  });
});

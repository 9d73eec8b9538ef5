/**
 * `slim train --freeze` and a recipe stage's `freeze`: the named layers keep their values while the rest
 * trains. Oracles: the frozen model computes what the original does (ONNX Runtime, before training);
 * after training, the frozen layers' weights are the original's bit for bit and the others moved.
 */
import './helpers/engine-env.js';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/engine/native.js';
import type { Graph, Node } from '../src/onnx/graph.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { float32 } from '../src/onnx/tensor.js';
import { DEFAULT_STATIC, quantizeStatic } from '../src/compress/quantize/index.js';
import { freezeLayers, layerName, matchesPattern } from '../src/passes/freeze-layers.js';
import { parseRecipe, RecipeError } from '../src/pipeline/parse.js';
import { runGraph } from '../src/runtime/ort.js';
import { Random } from '../src/util/random.js';
import { runSlim } from './helpers/cli.js';
import { fixturePath, maxAbsDiff, randomInput } from './helpers/fixtures.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-freeze-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const named = (name: string): Node => ({ name, opType: 'Conv', domain: '', inputs: [], outputs: [], attributes: {} });

/** The weights of the node called `name` (Conv/Gemm: weight and bias) as arrays. */
function weightsOf(graph: Graph, name: string): number[][] {
  const node = graph.nodes.find((n) => n.name === name)!;
  return node.inputs.slice(1).filter(Boolean).map((v) => Array.from(graph.initializers.get(v)!.data as Float32Array));
}

describe('naming layers', () => {
  it("reads torch.onnx's scope names as PyTorch module names, and slimkit's names as they are", () => {
    expect(layerName(named('/layer1/layer1.0/conv1/Conv'))).toBe('layer1.0.conv1');
    expect(layerName(named('/stem/stem.0/Conv'))).toBe('stem.0');
    expect(layerName(named('/features/features.0/features.0.0/Conv'))).toBe('features.0.0');
    // A scope repeats only the last named atom: downsample.0 is layer2.0's downsample.0.
    expect(layerName(named('/layer2/layer2.0/downsample/downsample.0/Conv'))).toBe('layer2.0.downsample.0');
    expect(layerName(named('/units/units.0/branch1/branch1.0/Conv'))).toBe('units.0.branch1.0');
    expect(layerName(named('/features/features.1/conv/conv.0/conv.0.0/Conv'))).toBe('features.1.conv.0.0');
    expect(layerName(named('/fc/Gemm'))).toBe('fc');
    expect(layerName(named('layer2.0.downsample.0'))).toBe('layer2.0.downsample.0');
    expect(layerName(named('Conv_0'))).toBe('Conv_0');
  });

  it('a name covers what is inside it; a glob matches whole names', () => {
    expect(matchesPattern('layer1', 'layer1.0.conv1')).toBe(true);
    expect(matchesPattern('layer1', 'layer1')).toBe(true);
    expect(matchesPattern('layer1', 'layer10.conv')).toBe(false);
    expect(matchesPattern('layer1.*', 'layer1.0.conv1')).toBe(true);
    expect(matchesPattern('layer?.0.conv1', 'layer3.0.conv1')).toBe(true);
    expect(matchesPattern('*.conv1', 'layer3.0.conv2')).toBe(false);
    expect(matchesPattern('layer1.0.conv1.weight', 'layer1.0.conv1.weight')).toBe(true);
    // A glob covers what is inside what it matches, as a name does.
    expect(matchesPattern('layer?', 'layer1.0.conv1')).toBe(true);
    expect(matchesPattern('layer?', 'layer10.conv')).toBe(false);
    expect(matchesPattern('features.?', 'features.1.conv.0.0')).toBe(true);
  });
});

describe('freezeLayers', () => {
  it("freezes a folded torch export's layers by module name, though their weights are called onnx::Conv_…", async () => {
    const graph = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const r = freezeLayers(graph, ['stem', 'conv1']);
    const stem = graph.nodes.find((n) => n.name === '/stem/stem.0/Conv')!;
    const conv1 = graph.nodes.find((n) => n.name === '/conv1/Conv')!;
    expect(stem.inputs[1]).toMatch(/^onnx::Conv_/);
    expect([...r.frozen].sort()).toEqual([...stem.inputs.slice(1), ...conv1.inputs.slice(1)].sort());
    expect(r.layers).toEqual(['stem.0', 'conv1']);
    expect(r.notes[0]).toMatch(/^frozen: stem\.0, conv1 — 808 of [\d,]+ parameters keep their values$/);
    // No BN to hold: the model is the same graph.
    expect(r.graph.nodes.map((n) => n.opType)).toEqual(graph.nodes.map((n) => n.opType));
  });

  it('holds the BatchNormalization of a frozen layer at its running statistics: the same function, folded into the frozen Conv', async () => {
    const graph = await readModel(fixturePath('torch-tiny-resnet.onnx')); // BN kept
    const r = freezeLayers(graph, ['stem', 'bn1']);
    // stem.1 folded into the frozen stem.0, bn1 into conv1, which was not named and trains.
    expect(r.graph.nodes.filter((n) => n.opType === 'BatchNormalization')).toHaveLength(graph.nodes.filter((n) => n.opType === 'BatchNormalization').length - 2);
    const stem = r.graph.nodes.find((n) => n.name === '/stem/stem.0/Conv')!;
    const conv1 = r.graph.nodes.find((n) => n.name === '/conv1/Conv')!;
    for (const p of stem.inputs.slice(1)) expect(r.frozen.has(p)).toBe(true);
    for (const p of conv1.inputs.slice(1)) expect(r.frozen.has(p)).toBe(false);
    expect(r.notes[0]).toMatch(/; 2 BatchNormalization held at their running statistics \(1 of them folded into the layer before, which trains\)$/);
    const x = randomInput([2, 3, 16, 16], 3);
    expect(maxAbsDiff((await runGraph(r.graph, { input: x }))['logits']!, (await runGraph(graph, { input: x }))['logits']!)).toBeLessThan(1e-4);
  });

  it("takes a Linear's bias from the Add torch.onnx writes it as (either operand) and a Conv's BN with it", async () => {
    const convnext = await readModel(fixturePath('torch-tiny-convnext.onnx'));
    const fc1 = freezeLayers(convnext, ['stage1.0.fc1']);
    const nodes = convnext.nodes.filter((n) => layerName(n) === 'stage1.0.fc1');
    expect(nodes.map((n) => n.opType)).toEqual(['MatMul', 'Add']);
    const bias = nodes[1]!.inputs.find((v) => convnext.initializers.has(v))!;
    expect(fc1.frozen.has(bias)).toBe(true);
    expect(fc1.frozen.size).toBe(2);
    // BN kept in the model: freezing conv1 freezes the bn1 right after it (folded into it), so the
    // written conv1 cannot change through a BN that trained.
    const resnet = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const conv1 = freezeLayers(resnet, ['conv1']);
    expect(conv1.layers).toEqual(['conv1', 'bn1']);
    expect(conv1.graph.nodes.some((n) => n.name === '/bn1/BatchNormalization')).toBe(false);
    const x = randomInput([2, 3, 16, 16], 4);
    expect(maxAbsDiff((await runGraph(conv1.graph, { input: x }))['logits']!, (await runGraph(resnet, { input: x }))['logits']!)).toBeLessThan(1e-4);
  });

  it("a Conv weight named keeps its BN with it; a fresh classifier may not be frozen; a torch export's folded names are explained", async () => {
    const resnet = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const weight = freezeLayers(resnet, ['conv1.weight']);
    expect(weight.graph.nodes.some((n) => n.name === '/bn1/BatchNormalization')).toBe(false);
    expect([...weight.frozen]).toEqual(['conv1.weight']);
    const folded = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const fc = folded.nodes.find((n) => n.opType === 'Gemm')!;
    expect(() => freezeLayers(folded, ['conv1'], { freshHead: fc.inputs.slice(1) })).not.toThrow();
    expect(() => freezeLayers(folded, ['fc'], { freshHead: fc.inputs.slice(1) })).toThrow(/--freeze 'fc' names the new classifier \(.*\): it starts from random weights and must train/);
    expect(() => freezeLayers(folded, ['bn1'])).toThrow(/names no layer or parameter .* this export folded BatchNormalization into the Conv before it and named the weights onnx::…: name the Conv's layer/);
  });

  it('names nodes that have no name (ONNX allows it) instead of taking them all for one layer', async () => {
    const graph = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const nameless = { ...graph, nodes: graph.nodes.map((n) => ({ ...n, name: '' })) };
    const conv2 = graph.nodes.find((n) => n.name === '/conv2/Conv')!;
    const r = freezeLayers(nameless, [conv2.inputs[1]!]);
    expect([...r.frozen]).toEqual([conv2.inputs[1]]);
    expect(() => freezeLayers(nameless, ['nothing'])).toThrow(/its layers are Conv_0, Conv_2, Conv_4/);
  });

  it('refuses a pattern that names nothing, listing the layers there are, and one that leaves nothing to train', async () => {
    const graph = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    expect(() => freezeLayers(graph, ['conv1', 'layer1'], { file: 'm.onnx' })).toThrow(/--freeze 'layer1' names no layer or parameter of m\.onnx — its layers are stem\.0, conv1, conv2, down\.0, conv3, fc; `slim info MODEL\.onnx --layers` lists them all/);
    // A typo of a layer, or of a module holding layers, is named (and the BN-folding hint, then beside the point, left out).
    expect(() => freezeLayers(graph, ['cnov1'], { file: 'm.onnx' })).toThrow(/^--freeze 'cnov1' names no layer or parameter of m\.onnx — did you mean 'conv1'\? its layers are stem\.0, conv1, conv2, down\.0, conv3, fc; `slim info MODEL\.onnx --layers` lists them all$/);
    expect(() => freezeLayers(graph, ['stme'], { file: 'm.onnx' })).toThrow(/did you mean 'stem'\?/);
    // Every layer frozen: nothing would train (the engine would fail on its first step).
    expect(() => freezeLayers(graph, ['*'], { file: 'm.onnx' })).toThrow(/--freeze '\*' names every layer of m\.onnx: nothing would train — leave out at least the last layers/);
  });
});

/** train/ and test/ folders of 16×16 PNGs in three classes told apart by their dominant colour. */
async function colourFolder(root: string, perClass: { train: number; test: number }): Promise<void> {
  const rng = new Random(7);
  for (const [split, count] of Object.entries(perClass)) {
    for (const [channel, name] of ['red', 'green', 'blue'].entries()) {
      const folder = path.join(root, split, name);
      mkdirSync(folder, { recursive: true });
      for (let i = 0; i < count; i++) {
        const pixels = Buffer.alloc(16 * 16 * 3);
        for (let p = 0; p < 256; p++) for (let c = 0; c < 3; c++) pixels[p * 3 + c] = Math.round((c === channel ? 110 : 40) + rng.uniform(0, 110));
        await sharp(pixels, { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(folder, `${i}.png`));
      }
    }
  }
}

describe.skipIf(!nativeAvailable())('slim train --freeze', () => {
  it('keeps the named layers of a BN-folded PyTorch export bit for bit while the rest trains; slim info --layers lists the names', async () => {
    const data = path.join(dir, 'colours');
    await colourFolder(data, { train: 20, test: 10 });
    const model = fixturePath('torch-tiny-resnet-folded.onnx'); // 10 classes: a new head for the 3
    const info = await runSlim(['info', model, '--layers']);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/\nstem\.0 +Conv +\[8, 3, 3, 3\] \[8\] +224 +55\.3 k\n/);
    const out = path.join(dir, 'frozen.onnx');
    const r = await runSlim(['train', '--model', model, '--data', data, '--new-head', '--freeze', 'stem,conv1', '--epochs', '1', '--batch', '20', '--lr', '0.05', '--no-augment', '--threads', '2', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/frozen: stem\.0, conv1 — 808 of [\d,]+ parameters keep their values/);
    // BN is put back after the other three Convs only: a frozen layer computes as it did.
    expect(r.stderr).toMatch(/training with BN re-inserted after 3 of 5 Conv\(s\) \(none after 2 frozen\)/);
    const [before, after] = [await readModel(model), await readModel(out)];
    for (const layer of ['/stem/stem.0/Conv', '/conv1/Conv']) expect(weightsOf(after, layer)).toEqual(weightsOf(before, layer));
    for (const layer of ['/conv2/Conv', '/conv3/Conv']) expect(maxAbsDiff(after.initializers.get(after.nodes.find((n) => n.name === layer)!.inputs[1]!)!, before.initializers.get(before.nodes.find((n) => n.name === layer)!.inputs[1]!)!)).toBeGreaterThan(0);

    // slim distill keeps a student file's named layers the same way.
    const student = path.join(dir, 'student.onnx');
    const d = await runSlim(['distill', '--teacher', out, '--student', out, '--freeze', 'stem.0', '--data', data, '--epochs', '1', '--batch', '20', '--lr', '0.05', '--no-augment', '--threads', '2', '--out', student, '--no-verify']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toMatch(/frozen: stem\.0 — 224 of/);
    const distilled = await readModel(student);
    expect(weightsOf(distilled, '/stem/stem.0/Conv')).toEqual(weightsOf(before, '/stem/stem.0/Conv'));
    expect(weightsOf(distilled, '/conv1/Conv')).not.toEqual(weightsOf(before, '/conv1/Conv'));
    const zoo = await runSlim(['distill', '--teacher', out, '--student', 'resnet18-cifar', '--freeze', 'conv1', '--data', data, '--epochs', '1', '--out', path.join(dir, 'z.onnx')]);
    expect(zoo.code).toBe(2);
    expect(zoo.stderr).toMatch(/--freeze keeps layers of a trained student; resnet18-cifar is built fresh from the zoo/);

    const typo = await runSlim(['train', '--model', model, '--data', data, '--new-head', '--freeze', 'layer1', '--epochs', '1', '--out', path.join(dir, 'x.onnx')]);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/--freeze 'layer1' names no layer or parameter of .*torch-tiny-resnet-folded\.onnx — its layers are stem\.0, conv1/);
    const both = await runSlim(['train', '--model', model, '--data', data, '--new-head', '--freeze-backbone', '--freeze', 'stem', '--epochs', '1', '--out', path.join(dir, 'y.onnx')]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--freeze-backbone already keeps every layer but the classifier as it is/);
    const head = await runSlim(['train', '--model', model, '--data', data, '--new-head', '--freeze', 'fc', '--epochs', '1', '--out', path.join(dir, 'h.onnx')]);
    expect(head.code).toBe(2);
    expect(head.stderr).toMatch(/--freeze 'fc' names the new classifier/);
    const zooModel = await runSlim(['train', '--model', 'resnet18-cifar', '--data', data, '--freeze', 'conv1', '--epochs', '1', '--out', path.join(dir, 'zoo.onnx')]);
    expect(zooModel.code).toBe(2);
    expect(zooModel.stderr).toMatch(/--freeze works on an \.onnx model; resnet18-cifar is built fresh/);
    // A PyTorch checkpoint given as the model is named as one, with how to export ONNX.
    const checkpoint = path.join(dir, 'model.pt');
    writeFileSync(checkpoint, Buffer.from(`PK\x03\x04${'\x00'.repeat(26)}archive/data.pkl`, 'latin1'));
    const pt = await runSlim(['train', '--model', checkpoint, '--data', data, '--epochs', '1', '--out', path.join(dir, 'pt.onnx')]);
    expect(pt.code).toBe(1);
    expect(pt.stderr).toMatch(/model\.pt: is a PyTorch checkpoint \(torch\.save\), not an ONNX model — export it to ONNX in PyTorch/);
  }, 240_000);
});

describe('recipes: freeze', () => {
  it('slim info --layers lists an int8 (QDQ) model by its integer weights, adding up to its totals as the float one does', async () => {
    const float = await readModel(fixturePath('torch-tiny-resnet-folded.onnx'));
    const rng = new Random(3);
    const feeds = [{ [float.inputs[0]!.name]: float32([4, 3, 16, 16], Array.from({ length: 4 * 768 }, () => rng.normal())) }];
    const q = path.join(dir, 'int8-layers.onnx');
    await writeModel((await quantizeStatic(float, feeds, DEFAULT_STATIC, { threads: 1 })).graph, q);
    const layers = async (file: string): Promise<{ params: number; macs: number; layers: { layer: string; params: number; macs: number }[] }> => {
      const r = await runSlim(['info', file, '--layers', '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as { params: number; macs: number; layers: { layer: string; params: number; macs: number }[] };
    };
    const [int8, fp32] = [await layers(q), await layers(fixturePath('torch-tiny-resnet-folded.onnx'))];
    expect(int8.layers.map((l) => l.layer)).toEqual(fp32.layers.map((l) => l.layer));
    expect(int8.layers.reduce((a, l) => a + l.params, 0)).toBe(int8.params);
    expect(int8.layers.reduce((a, l) => a + l.macs, 0)).toBe(int8.macs);
    // Training it is refused at once, before any data is read (it has nothing a gradient can move).
    const started = Date.now();
    const train = await runSlim(['train', '--model', q, '--data', 'cifar10', '--epochs', '1', '--out', path.join(dir, 'x.onnx')], { env: { SLIM_DATA_DIR: '/nonexistent' } });
    expect(train.code).toBe(2);
    expect(train.stderr).toMatch(/int8-layers\.onnx: nothing in it can train: its weights are stored as int8 \(a quantized model\) — train or distill the float model/);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('is refused beside freeze_backbone, and on a zoo model built fresh, when the recipe is read', () => {
    const read = (): unknown => parseRecipe('name: t\nmodel: { file: m.onnx }\nstages:\n  - train: { epochs: 1, new_head: true, freeze_backbone: true, freeze: [stem] }\n', 'r.yaml');
    expect(read).toThrow(RecipeError);
    expect(read).toThrow(/stages\[0\]\.train\.freeze: freeze_backbone already keeps every layer but the classifier as it is/);
    const zoo = (): unknown => parseRecipe('name: t\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { epochs: 1, freeze: [conv1] }\n', 'r.yaml');
    expect(zoo).toThrow(/stages\[0\]\.train\.freeze: keeps layers of a trained model, and this stage builds resnet18-cifar fresh from the zoo/);
    // A later stage starts from the trained model: allowed.
    expect(() => parseRecipe('name: t\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { epochs: 1 }\n  - train: { id: again, epochs: 1, freeze: [conv1] }\n', 'r.yaml')).not.toThrow();
  });

  it.skipIf(!nativeAvailable())('a train stage keeps the layers it names; a name that is not there is refused before anything runs, saying which are', async () => {
    const data = path.join(dir, 'recipe-colours');
    await colourFolder(data, { train: 10, test: 5 });
    copyFileSync(fixturePath('torch-tiny-resnet-folded.onnx'), path.join(dir, 'folded.onnx'));
    const run = async (name: string, freeze: string): Promise<{ code: number; stderr: string; runDir: string }> => {
      const recipe = path.join(dir, `${name}.yaml`);
      writeFileSync(recipe, `name: ${name}\ndata: { dataset: recipe-colours }\nmodel: { file: folded.onnx }\nstages:\n  - train: { id: tuned, epochs: 1, batch: 10, lr: 0.05, augment: false, new_head: true, freeze: ${freeze} }\n`);
      const runDir = path.join(dir, `run-${name}`);
      const r = await runSlim(['run', recipe, '--run-dir', runDir, '--threads', '1', '--no-report'], { timeoutMs: 180_000 });
      return { code: r.code, stderr: r.stderr, runDir };
    };
    const r = await run('frozen', '[stem, conv1]');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/frozen: stem\.0, conv1 — 808 of/);
    const [before, after] = [await readModel(fixturePath('torch-tiny-resnet-folded.onnx')), await readModel(path.join(r.runDir, 'models', 'tuned.onnx'))];
    for (const layer of ['/stem/stem.0/Conv', '/conv1/Conv']) expect(weightsOf(after, layer)).toEqual(weightsOf(before, layer));
    expect(weightsOf(after, '/conv2/Conv')).not.toEqual(weightsOf(before, '/conv2/Conv'));
    // A typo is refused before anything runs (and by --plan), against the recipe's model.
    const typo = await run('typo', '[layer9]');
    expect(typo.code).toBe(1); // the recipe file's content, as its other errors (a --freeze flag is usage: 2)
    expect(typo.stderr).toMatch(/stages\[0\]\.train\.freeze: freeze 'layer9' names no layer or parameter of folded\.onnx — its layers are stem\.0, conv1/);
    expect(typo.stderr).not.toMatch(/\[1\/1\] train/);
    const plan = await runSlim(['run', path.join(dir, 'typo.yaml'), '--plan']);
    expect(plan.code).toBe(1);
    expect(plan.stderr).toMatch(/freeze 'layer9' names no layer or parameter of folded\.onnx/);
  }, 240_000);
});

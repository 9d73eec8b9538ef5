/** `slim quantize` end to end in a child process: JSON fields, files written, modes, and usage errors. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageFeeds } from '../src/compress/quantize/feeds.js';
import { hostInt8Cpu } from '../src/compress/quantize/cpu.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';
import { decodeModel, encodeModel, readModel, writeModel } from '../src/onnx/io.js';
import { float32 } from '../src/onnx/tensor.js';
import type { Graph } from '../src/onnx/graph.js';
import { openSession } from '../src/runtime/ort.js';
import { loadModel } from '../src/onnx/validate.js';
import { buildZooModel } from '../src/zoo/index.js';
import { runSlim } from './helpers/cli.js';
import { floatIslandNote, heldOutOverBudget, largerNote } from '../src/cli/commands/quantize.js';
import { prepareModel } from '../src/deploy/prepare-model.js';
import { readPreprocessing } from '../src/zoo/metadata.js';
import { CIFAR_DIR, fixturePath } from './helpers/fixtures.js';
import { SATURATING_HOST } from './helpers/int8-host.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slimkit-quantize-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hasCifar = existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'));
const model = path.join(dir, 'r18.onnx');
beforeAll(async () => {
  await writeModel(buildZooModel('resnet18-cifar', { width: 0.125 }), model);
});

/** The planted model (see the --max-drop test) and a folder of CIFAR-10 test images labelled by its predictions. */
async function plantedModelAndLabels(): Promise<{ file: string; folder: string }> {
  const g = buildZooModel('resnet18-cifar', { width: 0.125, seed: 1 });
  const set = (name: string, edit: (d: Float32Array) => void): void => {
    const t = g.initializers.get(name)!;
    const d = Float32Array.from(t.data as Float32Array);
    edit(d);
    g.initializers.set(name, float32(t.dims, d));
  };
  // Channel 0 of the last two blocks' outputs is −1 before the ReLU (BN scale 0, shift −1 or 0), so
  // pooled feature 0 is always 0, without widening any activation range.
  for (const [bn, shift] of [['layer4.0.bn2', -1], ['layer4.0.downsample.1', 0], ['layer4.1.bn2', -1]] as const) {
    const node = g.nodes.find((n) => n.name === bn)!;
    set(node.inputs[1]!, (d) => (d[0] = 0));
    set(node.inputs[2]!, (d) => (d[0] = shift));
  }
  const fc = g.nodes.find((n) => n.name === 'fc')!;
  set(fc.inputs[1]!, (d) => (d[0] = 1e4)); // W[class 0, feature 0]
  const images = await loadCifar10('test', { dataDir: CIFAR_DIR, limit: 500 });
  const session = await openSession(encodeModel(g).model, { threads: 1 });
  const logits: number[] = [];
  for (const f of imageFeeds(images, { inputName: 'input', normalization: CIFAR10_NORMALIZATION, batchSize: 100 })) logits.push(...(await session.run(f))['logits']!.data as Float32Array);
  await session.close();
  // Centre each class's logits so that all ten classes get predicted.
  const mean = Array.from({ length: 10 }, (_, k) => logits.filter((_, i) => i % 10 === k).reduce((a, v) => a + v, 0) / 500);
  set(fc.inputs[2]!, (d) => d.forEach((v, k) => (d[k] = v - mean[k]!)));
  const folder = path.join(dir, 'labelled');
  const perClass = new Array<number>(10).fill(0);
  for (let r = 0; r < 500; r++) {
    let best = 0;
    for (let k = 1; k < 10; k++) if (logits[r * 10 + k]! - mean[k]! > logits[r * 10 + best]! - mean[best]!) best = k;
    if (perClass[best]! >= 6) continue;
    const hwc = Buffer.alloc(3072);
    for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) hwc[p * 3 + c] = images.pixels[r * 3072 + c * 1024 + p]!;
    mkdirSync(path.join(folder, `c${best}`), { recursive: true });
    await sharp(hwc, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(folder, `c${best}`, `${r}.png`));
    perClass[best]!++;
  }
  expect(perClass.every((n) => n > 0)).toBe(true);
  const file = path.join(dir, 'planted.onnx');
  await writeModel(g, file);
  return { file, folder };
}

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('slim quantize', () => {
  it.runIf(hasCifar)('static: writes the int8 model, the report files, and the promised JSON fields', async () => {
    const out = path.join(dir, 'r18.int8.onnx');
    const report = path.join(dir, 'r18-report');
    const run = await runSlim(['quantize', model, '-o', out, '--calib', 'cifar10', '--data-dir', CIFAR_DIR, '--samples', '64', '--eval-limit', '200', '--report', report, '--json', '--threads', '1']);
    expect(run.code, run.stderr).toBe(0);
    // Scored on a CPU whose int8 sums saturate, the top-1 after is said to be this CPU's (helpers/int8-host.ts).
    expect(/note: this CPU \(x64 without VNNI\) adds ONNX Runtime's int8 products in 16 bits, which can saturate: .* quantize with --cpu avx2/.test(run.stderr)).toBe(SATURATING_HOST);
    const doc = json(run.stdout);
    expect(doc).toMatchObject({
      mode: 'static',
      samples: 64,
      size_bytes_before: statSync(model).size,
      size_bytes_after: statSync(out).size,
      seconds: expect.any(Number),
      top1_before: expect.any(Number),
      top1_after: expect.any(Number),
      eval_images: 200,
      quantized_nodes: 31,
      folded_activations: 17,
    });
    expect(doc['size_ratio'] as number).toBeLessThan(0.35);
    expect(doc['ort_float_ops']).toEqual({});
    expect(doc['ort_ops']).toMatchObject({ QLinearConv: 20, QLinearAdd: 8, QGemm: 1 });
    const { graph } = await loadModel(out);
    expect(graph.nodes.filter((n) => n.opType === 'QuantizeLinear').length).toBeGreaterThan(20);
    // --method auto (the default): every method built from one calibration, the best output SQNR kept.
    const scores = doc['method_scores'] as { held_out_images: number; output_sqnr_db: Record<string, number> };
    expect(scores.held_out_images).toBe(256);
    expect(Object.keys(scores.output_sqnr_db).sort()).toEqual(['entropy', 'minmax', 'mse', 'percentile']);
    expect(scores.output_sqnr_db[doc['method'] as string]).toBe(Math.max(...Object.values(scores.output_sqnr_db)));
    // Where this CPU's int8 sums saturate, the scores are exact kernels', and both the JSON and the log say so (trial 32).
    expect((scores as { on_exact_kernels?: boolean }).on_exact_kernels).toBe(SATURATING_HOST ? true : undefined);
    expect(run.stderr.includes('held-out images on exact int8 kernels')).toBe(SATURATING_HOST);
    expect(JSON.parse(graph.metadata['slimkit.quantization']!)).toMatchObject({ method: doc['method'], activations: 'uint8 asymmetric', bias_correction: true });
    // On a CPU with AMX, --cpu auto times each Conv on both ORT kernels at --threads and keeps the faster.
    if (hostInt8Cpu() === 'amx') {
      const layout = doc['conv_layout'] as { threads: number; amx_convs: number; convsym_convs: number; timings_us: unknown[] };
      expect(layout.threads).toBe(1);
      expect(layout.amx_convs + layout.convsym_convs).toBe(layout.timings_us.length);
      expect(JSON.parse(graph.metadata['slimkit.quantization']!)).toMatchObject({ cpu: 'amx', tuned_threads: 1 });
    } else {
      expect(doc['conv_layout']).toBeUndefined();
    }
    const md = readFileSync(`${report}.md`, 'utf8');
    expect(md).toMatch(/## Per-layer sensitivity/);
    expect(md).toMatch(/\| layer3\.0\.conv1 \| Conv \|/);
    // --samples 64: every measurement has those 64 images (sensitivity would take 128, the SQNRs 256).
    expect(md).toContain('Measured on calibration images: layer sensitivity on 64, SQNRs on 64, on ');
    const rep = JSON.parse(readFileSync(`${report}.json`, 'utf8')) as { activations: unknown[]; sensitivity: unknown[]; weights: unknown[]; measured: unknown; settings: { cpu: unknown } };
    expect(rep.measured).toMatchObject({ sensitivity_images: 64, sqnr_images: 64 });
    expect(rep.settings.cpu).toBe(doc['cpu']);
    expect(rep.sensitivity).toHaveLength(30);
    expect(rep.weights).toHaveLength(21);
    expect(rep.activations.length).toBeGreaterThan(30);
    expect(readFileSync(`${report}.svg`, 'utf8')).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(run.stderr).toMatch(/calibrate/);
  });

  it.runIf(hasCifar)('--max-drop finds the layer that breaks the model and keeps it float', async () => {
    // A model whose int8 version fails by construction: a huge Gemm weight on a feature that is always
    // 0 (no effect in float), so per-tensor weight scales round every other head weight to 0. Evaluation
    // images are labelled with the float model's own predictions: float top-1 = 100 %.
    const { file, folder } = await plantedModelAndLabels();
    const out = path.join(dir, 'planted.mixed.onnx');
    // Calibration from an image folder too (the same images: fine for this check).
    const run = await runSlim(['quantize', file, '-o', out, '--calib', folder, '--samples', '64', '--per-tensor', '--eval', folder, '--max-drop', '20', '--json', '--threads', '1']);
    expect(run.code, run.stderr).toBe(0);
    const doc = json(run.stdout);
    const mixed = doc['mixed_precision'] as { float_layers: string[]; met: boolean; chosen_on_images: number; steps: { float_layer_count: number; top1_drop_pt: number }[] };
    expect(doc['top1_before']).toBe(1);
    // Chosen on every other image of the folder, top-1 reported on the others.
    const images = doc['calibration_images'] as number;
    expect([mixed.chosen_on_images, doc['eval_images']]).toEqual([Math.ceil(images / 2), Math.floor(images / 2)]);
    expect(doc['eval_data']).toMatch(/\[half 2 of 2\]$/);
    expect(run.stderr).toContain(`--max-drop: choosing on ${mixed.chosen_on_images} of the ${images} evaluation images (every other one); top-1 is reported on the other ${images - mixed.chosen_on_images}`);
    expect(mixed.steps[0]).toMatchObject({ float_layer_count: 0 });
    expect(mixed.steps[0]!.top1_drop_pt).toBeGreaterThan(50);
    expect(mixed.steps.filter((s) => s.float_layer_count === 0)).toHaveLength(1);
    expect(mixed.met).toBe(true);
    // The choice's verdict and the reported images' (a script read "met" beside a 3.8 pt drop: trial 32).
    expect((mixed as { held_out_met?: boolean }).held_out_met).toBe(true);
    expect((mixed as { chosen_on_exact_kernels?: boolean }).chosen_on_exact_kernels).toBe(SATURATING_HOST ? true : undefined);
    expect(mixed.float_layers, JSON.stringify(mixed.steps)).toEqual(['fc']);
    expect(doc['top1_drop_pt'] as number).toBeLessThanOrEqual(20);
    const { graph } = await loadModel(out);
    const fc = graph.nodes.find((n) => n.opType === 'Gemm')!;
    expect(graph.initializers.get(fc.inputs[1]!)?.dtype).toBe('float32');
    expect(graph.nodes.filter((n) => n.opType === 'Conv').every((n) => graph.initializers.get(n.inputs[1]!) === undefined)).toBe(true);
  });

  it.runIf(hasCifar)('--resize N calibrates and evaluates a folder as slim eval --resize N reads it; refused for CIFAR-10 alone', async () => {
    const { file, folder } = await plantedModelAndLabels();
    const out = path.join(dir, 'planted.r40.onnx');
    const run = await runSlim(['quantize', file, '-o', out, '--calib', folder, '--samples', '64', '--per-tensor', '--eval', folder, '--eval-limit', '200', '--resize', '40', '--json', '--threads', '1']);
    expect(run.code, run.stderr).toBe(0);
    const evaluated = await runSlim(['eval', file, '--data', folder, '--limit', '200', '--resize', '40', '--json', '--threads', '1']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    const before = json(run.stdout)['top1_before'] as number;
    // Labelled with the model's own predictions at 32×32: Resize(40) + CenterCrop(32) shows it other pixels.
    expect(before).toBe((JSON.parse(evaluated.stdout) as { top1: number }).top1);
    expect(before).toBeLessThan(1);
    // The int8 top-1 --eval scored is recorded in the written model (its bundle states it), and the JSON's size is the file's.
    const doc = json(run.stdout);
    const written = await readModel(out);
    // With its exact-kernel top-1 where this CPU's differs (a bundle for arm64 or the web states that one: trial 32).
    const exactAfter = doc['top1_after_exact_kernels'] as number | undefined;
    expect(JSON.parse(written.metadata['slimkit.quantization']!).scored).toEqual({ top1: doc['top1_after'], images: doc['eval_images'], data: doc['eval_data'], ...(exactAfter !== undefined && exactAfter !== doc['top1_after'] ? { top1_exact_kernels: exactAfter } : {}) });
    expect(doc['size_bytes_after']).toBe(statSync(out).size);
    // The int8 model records --resize 40 (slimkit.resize): eval, info and deploy bring photos to it so untold.
    const recorded = await runSlim(['eval', out, '--data', folder, '--limit', '200', '--json', '--threads', '1']);
    expect(recorded.code, recorded.stderr).toBe(0);
    // Its 8-bit weights, scored on a CPU whose int8 sums saturate: said (helpers/int8-host.ts); the float one is not.
    expect(/note: this CPU \(x64 without VNNI\) .* can saturate with .*planted\.r40\.onnx's 8-bit weights/.test(recorded.stderr)).toBe(SATURATING_HOST);
    expect(evaluated.stderr).not.toMatch(/can saturate/);
    expect((JSON.parse(recorded.stdout) as { top1: number }).top1).toBe(json(run.stdout)['top1_after']);
    // There both also give its top-1 on exact kernels, and agree on it; a float model has none.
    const exact = (JSON.parse(recorded.stdout) as { top1_exact_kernels?: number }).top1_exact_kernels;
    expect(exact !== undefined).toBe(SATURATING_HOST);
    expect(exact).toBe(json(run.stdout)['top1_after_exact_kernels']);
    expect((JSON.parse(evaluated.stdout) as { top1_exact_kernels?: number }).top1_exact_kernels).toBeUndefined();
    const info = await runSlim(['info', out]);
    expect(info.stdout).toContain('photos resized shorter side to 40, then the centre 32×32 (slimkit.resize');
    expect((await prepareModel(out)).config.preprocess.resize).toEqual({ shorterSide: 40 });
    const stretched = await prepareModel(out, { resize: 'stretch' });
    expect(stretched.config.preprocess.resize).toBe('stretch');
    expect(stretched.warnings).toContain(`${out} records resize 40 (slimkit.resize); --resize stretch replaces it`);
    // The bundled model records the bundle's resize: `slim eval` of it reads photos as the bundle does.
    expect(readPreprocessing(decodeModel(stretched.bytes)).resize).toBe('stretch');
    const overridden = await runSlim(['eval', out, '--data', folder, '--limit', '200', '--resize', 'stretch', '--threads', '1']);
    expect(overridden.code, overridden.stderr).toBe(0);
    expect(overridden.stderr).toContain(`note: --resize stretch replaces the resize 40 that ${out} records (slimkit.resize)`);
    const cifar = await runSlim(['quantize', file, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--resize', '40']);
    expect(cifar.code).toBe(2);
    expect(cifar.stderr).toMatch(/--resize applies to image folders/);
  });

  it('dynamic and fp16 modes need no calibration data', async () => {
    const dynamic = path.join(dir, 'tiny.dyn.onnx');
    const d = await runSlim(['quantize', fixturePath('torch-tiny-resnet.onnx'), '-o', dynamic, '--mode', 'dynamic', '--json']);
    expect(d.code, d.stderr).toBe(0);
    expect(json(d.stdout)).toMatchObject({ mode: 'dynamic', quantized_nodes: 1, cpu: 'generic' });
    expect((await loadModel(dynamic)).graph.nodes.map((n) => n.opType)).toContain('MatMulInteger');
    // A CNN: its Convs stay float, and that is said.
    expect(d.stderr).toMatch(/note: dynamic quantization quantizes MatMul\/Gemm layers only: 1 here, and the \d+ Conv\(s\) stay float — for CNNs --mode static quantizes them too/);
    // Not scored here, it would meet this CPU's saturating sums first in slim eval: said after writing (helpers/int8-host.ts).
    expect(/note: this CPU \(x64 without VNNI\) .* can saturate with .*tiny\.dyn\.onnx's 8-bit weights/.test(d.stderr)).toBe(SATURATING_HOST);
    // --cpu avx2: the MatMulInteger weights as uint8 (quantize-cpu.test.ts checks what that computes).
    const unsigned = path.join(dir, 'tiny.dyn-avx2.onnx');
    const u = await runSlim(['quantize', fixturePath('torch-tiny-resnet.onnx'), '-o', unsigned, '--mode', 'dynamic', '--cpu', 'avx2', '--json']);
    expect(u.code, u.stderr).toBe(0);
    expect(json(u.stdout)).toMatchObject({ mode: 'dynamic', quantized_nodes: 1, cpu: 'avx2' });
    expect(u.stderr).not.toMatch(/can saturate/);
    const weightTypes = (g: Graph) => g.nodes.filter((n) => n.opType === 'MatMulInteger').map((n) => g.initializers.get(n.inputs[1]!)?.dtype);
    expect(weightTypes((await loadModel(dynamic)).graph)).toEqual(['int8']);
    expect(weightTypes((await loadModel(unsigned)).graph)).toEqual(['uint8']);
    const half = path.join(dir, 'r18.fp16.onnx');
    const h = await runSlim(['quantize', model, '-o', half, '--mode', 'fp16', '--json']);
    expect(h.code, h.stderr).toBe(0);
    expect(json(h.stdout)['size_ratio'] as number).toBeLessThan(0.52);
  });
});

describe('slim quantize errors: one line, the right exit code', () => {
  const cases: [string, () => string[], number, RegExp][] = [
    ['no calibration data', () => ['quantize', model, '-o', path.join(dir, 'x.onnx')], 2, /needs calibration images.*--calib cifar10/],
    ['bad method', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--method', 'kl'], 2, /--method/],
    ['--percentile with another method', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--method', 'mse', '--percentile', '99.9'], 2, /--percentile applies to --method percentile/],
    ['--report outside static mode', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--mode', 'dynamic', '--report'], 2, /--report only applies to --mode static/],
    ['a calibration flag with fp16 (it did nothing)', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--mode', 'fp16', '--method', 'entropy'], 2, /--method applies to --mode static, not fp16 — drop --method$/m],
    ['an int8 flag dynamic mode ignores', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--mode', 'dynamic', '--no-bias-correction'], 2, /--no-bias-correction applies to --mode static, not dynamic — drop --no-bias-correction \(--mode dynamic takes --per-tensor, --reduce-range, --cpu, --exclude\)/],
    ['unknown node in --exclude', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--data-dir', CIFAR_DIR, '--samples', '8', '--exclude', 'conv9'], 2, /--exclude names 'conv9'/],
    ['an already quantized model', () => ['quantize', path.join(dir, 'tiny.dyn.onnx'), '-o', path.join(dir, 'x.onnx'), '--mode', 'dynamic'], 2, /already quantized/],
    ['CIFAR-10 for a model of another input size', () => ['quantize', fixturePath('torch-tiny-mobilenet.onnx'), '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--data-dir', CIFAR_DIR], 2, /takes 3×16×16 images but --calib cifar10\/train has 3×32×32 images — pass --calib <image folder>/],
    ['--max-drop with an image-folder calibration set and no --eval', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', dir, '--max-drop', '1'], 2, /--eval/],
    // Refused before calibrating (it came after the calibration and the method scores).
    ['--max-drop on one evaluation image', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', 'cifar10', '--data-dir', CIFAR_DIR, '--eval-limit', '1', '--max-drop', '1'], 2, /^(?![\s\S]*calibrat)[\s\S]*--max-drop chooses on half the evaluation images and reports top-1 on the other half, and cifar10\/test has 1/],
    // A budget finer than one image is said before any work; here the calibration folder then fails.
    ['--max-drop finer than one image', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--calib', path.join(dir, 'no-such-folder'), '--eval', 'cifar10', '--data-dir', CIFAR_DIR, '--eval-limit', '9', '--max-drop', '5'], 1, /note: one of the 5 images --max-drop chooses on is 20\.00 pt, more than --max-drop 5: it allows no net loss of an image[\s\S]*no-such-folder/],
    // The usage error alone: no note about AMX or this CPU before it.
    ['--mode dynamic --cpu amx', () => ['quantize', model, '-o', path.join(dir, 'x.onnx'), '--mode', 'dynamic', '--cpu', 'amx', '--eval', 'cifar10', '--data-dir', CIFAR_DIR], 2, /^(?![\s\S]*note:)[\s\S]*--cpu amx lays int8 Conv weights out for Intel AMX, and dynamic quantization quantizes MatMul\/Gemm layers only — drop --cpu amx \(--cpu avx2 stores the weights as uint8/],
  ];
  // These read CIFAR-10 before they fail.
  const needsCifar = new Set(['unknown node in --exclude', 'CIFAR-10 for a model of another input size', '--max-drop on one evaluation image', '--max-drop finer than one image']);
  for (const [what, args, code, message] of cases) {
    it.runIf(hasCifar || !needsCifar.has(what))(what, async () => {
      const run = await runSlim(args());
      expect(run.code, run.stderr).toBe(code);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(message);
      expect(run.stderr).not.toMatch(/internal error|\n\s+at /);
      expect(existsSync(path.join(dir, 'x.onnx'))).toBe(false);
    });
  }
});

describe("--max-drop's held-out check", () => {
  it('warns when the split chosen on half the images misses the budget on the other half, with the size of one image', () => {
    expect(heldOutOverBudget(0.5, { budgetPt: 0.5, chosenOn: 1000, met: true }, 1000)).toBeUndefined();
    // 1700/2000 − 1690/2000 comes out a hair above 0.5: within, as the search counts it.
    expect(heldOutOverBudget((1700 / 2000 - 1690 / 2000) * 100, { budgetPt: 0.5, chosenOn: 2000, met: true }, 2000)).toBeUndefined();
    expect(heldOutOverBudget(0.8, { budgetPt: 0.5, chosenOn: 1000, met: true }, 1000)).toBe(
      'warning: top-1 drops 0.80 pt on the 1000 images --max-drop did not choose on, past its 0.5 (met on the 1000 it chose on; one image is 0.10 pt here): evaluate on more images (--eval-limit) for a choice that holds, or allow a larger drop',
    );
    expect(heldOutOverBudget(3, { budgetPt: 1, chosenOn: 51, met: false }, 50)).toContain('(missed as well on the 51 it chose on; one image is 2.00 pt here)');
  });
});

describe('the size note', () => {
  it('says why an int8 file came out larger than the float one, and how to see whether it still pays', () => {
    expect(largerNote(89_321, 118_374, 'static', 'p.onnx', 'p.int8.onnx')).toBe('note: the int8 file is larger than the float one: its weights are too few for their 4× saving to pay for the QuantizeLinear/DequantizeLinear nodes around every layer (its latency may still be lower: slim bench p.onnx p.int8.onnx)');
    expect(largerNote(89_321, 40_000, 'static', 'p.onnx', 'q.onnx')).toBeUndefined();
    expect(largerNote(89_321, 90_000, 'fp16', 'p.onnx', 'q.onnx')).toBeUndefined();
  });

  it('says that float ops between int8 ones convert back and forth, with the command that times both (trial 27: int8 1.3–2× slower, unsaid)', () => {
    expect(floatIslandNote([['DequantizeLinear', 14], ['HardSigmoid', 14]], 'm.onnx', 'm int8.onnx')).toBe("note: each of the 14 float ops between int8 ones (HardSigmoid ×14) converts int8 to float and back: on a small model that can cost more than int8 saves — time both: slim bench m.onnx 'm int8.onnx'");
    expect(floatIslandNote([['Softmax', 1]], 'a.onnx', 'b.onnx')).toMatch(/^note: the float Softmax between int8 ops converts int8 to float and back/);
    // Conversions alone (a final DequantizeLinear) are no island.
    expect(floatIslandNote([['DequantizeLinear', 1]], 'a.onnx', 'b.onnx')).toBeUndefined();
    expect(floatIslandNote([], 'a.onnx', 'b.onnx')).toBeUndefined();
  });
});

// slimkit used as a library: the package entry resolves by name to the build, its declarations type-check a
// user's program (and reject a wrong one), the task-level calls give what the commands give, and the
// examples the README shows run as shown.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { buildZooModel, deploy, distill, encodeModel, evaluateModel, loadCifar10, measureModel, modelSteps, pruneStructured, pruneUnstructured, quantizeModel, readModel, SlimError, take, trainModel, writeModel, type ImageSet } from '../src/index.js';
import { fixturePath } from './helpers/fixtures.js';
import { nativeAvailable } from '../src/engine/native.js';
import { realCifar10Dir, removeTempDirs, REPO, tempDir } from './data-fixtures.js';
import { SATURATING_HOST } from './helpers/int8-host.js';
import { runSlim } from './helpers/cli.js';

afterAll(removeTempDirs);

const cifar = realCifar10Dir();
/** tsx's loader by URL: the train-prune example runs in a folder of its own, outside this package. */
const TSX = import.meta.resolve('tsx');
const SUBPATHS = ['data', 'passes', 'quantize', 'prune', 'qat', 'distill', 'engine'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(file: string, args: string[], o: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(file, args, { cwd: o.cwd ?? REPO, env: { ...process.env, ...o.env }, timeout: o.timeoutMs ?? 120_000, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? String(e) };
  }
}

describe('the package', () => {
  it("resolves 'slimkit' and each subpath by name to the build", async () => {
    const script = [
      "const root = await import('slimkit');",
      `const subs = {}; for (const s of ${JSON.stringify(SUBPATHS)}) subs[s] = Object.keys(await import('slimkit/' + s)).length;`,
      "console.log(JSON.stringify({ url: import.meta.resolve('slimkit'), fns: ['readModel', 'writeModel', 'quantizeModel', 'evaluateModel', 'measureModel', 'trainModel', 'pruneStructured', 'deploy', 'loadCifar10'].map((n) => typeof root[n]), subs }));",
    ].join('\n');
    const r = await run(process.execPath, ['--input-type=module', '-e', script]);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { url: string; fns: string[]; subs: Record<string, number> };
    expect(out.url).toBe(`file://${path.join(REPO, 'dist/index.js')}`);
    expect(out.fns.every((t) => t === 'function')).toBe(true);
    for (const s of SUBPATHS) expect(out.subs[s], s).toBeGreaterThan(0);
  });

  it('type-checks a program against the built declarations, and rejects a wrong option', async () => {
    const dir = tempDir('consumer');
    fs.mkdirSync(path.join(dir, 'node_modules'));
    fs.symlinkSync(REPO, path.join(dir, 'node_modules', 'slimkit'));
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
    const tsconfig = { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, typeRoots: [path.join(REPO, 'node_modules/@types')], types: ['node'] }, include: ['*.ts'] };
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(tsconfig));
    const program = [
      "import { loadCifar10, quantizeModel, readModel, type QuantizeModelResult } from 'slimkit';",
      "import { CALIBRATION_METHODS } from 'slimkit/quantize';",
      "const result: QuantizeModelResult = await quantizeModel(await readModel('m.onnx'), await loadCifar10('train'), { method: CALIBRATION_METHODS[0], samples: SAMPLES });",
      'const images: number = result.calibrationImages;',
      'console.log(images, result.graph.nodes.length);',
    ].join('\n');
    const tsc = path.join(REPO, 'node_modules/typescript/bin/tsc');
    fs.writeFileSync(path.join(dir, 'program.ts'), program.replace('SAMPLES', '256'));
    const good = await run(process.execPath, [tsc, '-p', dir]);
    expect(good.stdout + good.stderr).toBe('');
    expect(good.code).toBe(0);
    fs.writeFileSync(path.join(dir, 'program.ts'), program.replace('SAMPLES', "'many'"));
    const bad = await run(process.execPath, [tsc, '-p', dir]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toMatch(/program\.ts\(3,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
    // A project on the older resolution (no "exports"): the subpaths' types through typesVersions.
    const legacy = path.join(dir, 'legacy');
    fs.mkdirSync(legacy);
    fs.writeFileSync(path.join(legacy, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'commonjs', moduleResolution: 'node10', strict: true, noEmit: true, skipLibCheck: true, types: [] }, include: ['*.ts'] }));
    fs.writeFileSync(path.join(legacy, 'program.ts'), SUBPATHS.map((sub, i) => `import * as m${i} from 'slimkit/${sub}';\nexport const k${i} = Object.keys(m${i});`).join('\n'));
    const old = await run(process.execPath, [tsc, '-p', legacy]);
    expect(old.stdout + old.stderr).toBe('');
    expect(old.code).toBe(0);
  });

  it('the README shows examples/quantize.ts as it is', () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const example = fs.readFileSync(path.join(REPO, 'examples/quantize.ts'), 'utf8');
    expect(readme).toContain('```ts\n' + example + '```');
  });
});

describe.skipIf(!cifar)('task-level calls on CIFAR-10', () => {
  it('quantizeModel writes the bytes slim quantize writes; evaluateModel scores what slim eval scores', async () => {
    const dir = tempDir('toolkit');
    const floatFile = path.join(dir, 'net.onnx');
    // Made by another tool, calibrated with statistics of the caller's: both are recorded alike.
    await writeModel({ ...buildZooModel('resnet18-cifar', { width: 0.125, seed: 3 }), producerName: 'pytorch', producerVersion: '1.13.0' }, floatFile);
    const cliFile = path.join(dir, 'cli.int8.onnx');
    const cli = await runSlim(['quantize', floatFile, '--calib', 'cifar10', '--samples', '128', '--data-dir', cifar!, '--mean', '0.5,0.5,0.5', '--std', '0.25,0.25,0.25', '-o', cliFile]);
    expect(cli.stderr).not.toMatch(/error/);
    expect(cli.code).toBe(0);

    // The same statistics for pixels as they are (scale 1), not × 1/255.
    const normalization = { scale: 1, mean: [127.5, 127.5, 127.5], std: [63.75, 63.75, 63.75] };
    const ours = await quantizeModel(floatFile, await loadCifar10('train', { dataDir: cifar! }), { samples: 128, normalization });
    expect(ours.graph.producerName).toBe('slimkit');
    expect(ours.graph.metadata['slimkit.source_producer']).toBe('pytorch 1.13.0');
    expect(ours.graph.metadata['slimkit.mean']).toBe('[0.5,0.5,0.5]');
    expect(modelSteps(ours.graph.metadata).at(-1)).toMatchObject({ key: 'slimkit.quantization', record: { calibration_images: 128 } });
    expect(ours.calibrationImages).toBe(128);
    // Scored on this machine, a model whose int8 sums saturate here would understate itself: the warnings say so.
    expect(ours.warnings.some((w) => /this CPU \(x64 without VNNI\)/.test(w))).toBe(SATURATING_HOST);
    expect(Object.keys(ours.methodScores ?? {}).sort()).toEqual(['entropy', 'minmax', 'mse', 'percentile']);
    expect(Buffer.compare(Buffer.from(encodeModel(ours.graph).model), Buffer.from(encodeModel(await readModel(cliFile)).model))).toBe(0);

    const evalCli = await runSlim(['eval', cliFile, '--data', 'cifar10', '--data-dir', cifar!, '--limit', '300', '--json']);
    expect(evalCli.code).toBe(0);
    const cliTop1 = (JSON.parse(evalCli.stdout) as { top1: number }).top1;
    const result = await evaluateModel(cliFile, await loadCifar10('test', { dataDir: cifar!, limit: 300 }));
    expect(result.count).toBe(300);
    expect(result.top1).toBe(cliTop1);
  }, 180_000);

  it('quantizeModel leaves an op slimkit has no definition for float, writing the bytes slim quantize writes', async () => {
    const dir = tempDir('toolkit-opaque');
    const file = fixturePath('torch-tiny-pixelshuffle.onnx');
    const cliFile = path.join(dir, 'cli.int8.onnx');
    const cli = await runSlim(['quantize', file, '--calib', 'cifar10', '--samples', '64', '--data-dir', cifar!, '--threads', '1', '-o', cliFile]);
    expect(cli.code, cli.stderr).toBe(0);
    const ours = await quantizeModel(file, await loadCifar10('train', { dataDir: cifar! }), { samples: 64, threads: 1 });
    expect(ours.graph.nodes.filter((n) => n.opType === 'DepthToSpace')).toHaveLength(1);
    expect(Buffer.compare(Buffer.from(encodeModel(ours.graph).model), Buffer.from(encodeModel(await readModel(cliFile)).model))).toBe(0);
  }, 120_000);

  it('examples/quantize.ts quantizes, writes and compares a model', async () => {
    const dir = tempDir('example-q');
    const model = path.join(dir, 'net.onnx');
    await writeModel(buildZooModel('resnet18-cifar', { width: 0.125 }), model);
    const r = await run(process.execPath, ['--import', TSX, path.join(REPO, 'examples/quantize.ts'), model], { env: { SLIM_DATA_DIR: cifar! } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/net\.int8\.onnx: \w+ calibration on 512 images, \d+ nodes int8, 0 left float/);
    expect(r.stdout).toMatch(/^fp32: top-1 [\d.]+ % on 2000 test images/m);
    expect(r.stdout).toMatch(/^int8: top-1 [\d.]+ % on 2000 test images/m);
    expect(fs.existsSync(path.join(dir, 'net.int8.onnx'))).toBe(true);
  }, 120_000);

  it.skipIf(!nativeAvailable())('examples/train-prune.ts trains, prunes to half the MACs and writes both models', async () => {
    const dir = tempDir('example-tp');
    const r = await run(process.execPath, ['--import', TSX, path.join(REPO, 'examples/train-prune.ts'), '1', '256'], { cwd: dir, env: { SLIM_DATA_DIR: cifar! }, timeoutMs: 240_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const macs = [...r.stdout.matchAll(/([\d.]+) M MACs/g)].map((m) => Number(m[1]));
    expect(macs).toHaveLength(2);
    expect(macs[1]! / macs[0]!).toBeLessThanOrEqual(0.5);
    for (const file of ['resnet18-w025.onnx', 'resnet18-w025-pruned.onnx']) expect(fs.existsSync(path.join(dir, file)), file).toBe(true);
  }, 300_000);
});

describe('refusals a program meets instead of a wrong number or a LibTorch error', () => {
  // Ten classes, one 32×32 image each (no data set needed).
  const images: ImageSet = { name: 'made', classes: Array.from({ length: 10 }, (_, i) => `c${i}`), imageShape: [3, 32, 32], pixels: new Uint8Array(10 * 3 * 32 * 32).fill(100), labels: Uint16Array.from({ length: 10 }, (_, i) => i) };
  const net = buildZooModel('resnet18-cifar', { width: 0.0625 });

  it('an image set that does not hold what it says, or none', async () => {
    await expect(evaluateModel(net, { ...images, pixels: images.pixels.subarray(0, 3072 * 5) })).rejects.toThrow(/evaluation images \(made\): hold 15360 pixel bytes for 10 labels of 3×32×32 images \(30720 expected\)/);
    await expect(evaluateModel(net, { ...images, labels: Uint16Array.from(images.labels, (l) => l + 1) })).rejects.toThrow(/image 9 has label 10, but there are 10 classes/);
    await expect(quantizeModel(net, take(images, 0))).rejects.toThrow(/calibration images \(made\[:0\]\): there are none/);
    await expect(evaluateModel(net, images, { limit: 0 })).rejects.toThrow(/limit must be a whole number ≥ 1, got 0/);
    // threads: 0 ran on the default count, as if left out (a trial).
    await expect(evaluateModel(net, images, { threads: 0 })).rejects.toThrow(/^threads must be a whole number ≥ 1, got 0/);
  });

  it('an option name a function does not take, from plain JavaScript: named with the nearest it does take (a trial met a TypeError deep in pruneStructured)', async () => {
    await expect(pruneStructured(net, { targetMacs: 0.5 } as never)).rejects.toThrow(/^pruneStructured has no option 'targetMacs' \(did you mean 'target'\?\) — its options are target, importance, scope, roundTo/);
    await expect(pruneStructured(net, {} as never)).rejects.toThrow(/^pruneStructured needs a target, got none — pass target: \{ kind: 'macs', value: 0\.5 \}/);
    await expect(pruneStructured(net, { target: { kind: 'mac', value: 0.5 } } as never)).rejects.toThrow(/^pruneStructured needs a target, got \{"kind":"mac","value":0\.5\}/);
    expect(() => pruneUnstructured(net, { sparsity: 0.5, nM: '2:4' } as never)).toThrow(/^pruneUnstructured has no option 'nM' \(did you mean 'nm'\?\)/);
    await expect(quantizeModel(net, images, { sample: 64 } as never)).rejects.toThrow(/^quantizeModel has no option 'sample' \(did you mean 'samples'\?\)/);
    await expect(evaluateModel(net, images, { batch: 8 } as never)).rejects.toThrow(/^evaluateModel has no option 'batch' \(did you mean 'batchSize'\?\)/);
    await expect(evaluateModel(net, images, 'fast' as never)).rejects.toThrow(/^evaluateModel takes an options object, got string/);
    await expect(deploy({ model: 'm.onnx', target: 'web', out: 'x', lables: ['a'] } as never)).rejects.toThrow(/^deploy has no option 'lables' \(did you mean 'labels'\?\)/);
    // Every error is a SlimError, as the README promises.
    await expect(pruneStructured(net, { targetMacs: 0.5 } as never)).rejects.toBeInstanceOf(SlimError);
  });

  it('quantization options out of range, before any calibration; an int8 model', async () => {
    await expect(quantizeModel(net, images, { method: 'percentile', percentile: 150 })).rejects.toThrow(/percentile must be in \(0, 100\], got 150/);
    await expect(quantizeModel(net, images, { method: 'minmx' as never })).rejects.toThrow(/method must be one of minmax, percentile, entropy, mse, auto, got 'minmx'/);
    // A cpu typo laid the model out for no CPU at all, without a word (a trial).
    await expect(quantizeModel(net, images, { cpu: 'amx2' as never })).rejects.toThrow(/^cpu must be one of auto, amx, generic, avx2, got 'amx2'/);
    // resize: how the caller's photos were brought to the input, recorded for eval and deploy to read.
    const int8 = await quantizeModel(net, images, { method: 'minmax', samples: 10, resize: { shorterSide: 40 } });
    expect(int8.graph.metadata['slimkit.resize']).toBe('40');
    // Checked before calibrating: a resize the commands could not read back, or smaller than the input.
    await expect(quantizeModel(net, images, { resize: { shorterSide: 25.5 } })).rejects.toThrow(/^resize must be 'shorter-side', 'stretch' or \{ shorterSide: N \} with N a whole number ≥ 1, got \{"shorterSide":25\.5\}/);
    await expect(quantizeModel(net, images, { resize: { shorterSide: 16 } })).rejects.toThrow(/^resize 16 is smaller than the model's 32×32 input/);
    await expect(quantizeModel(int8.graph, images)).rejects.toThrow(/: node '[^']+' \((QuantizeLinear|DequantizeLinear)\): the model is already quantized — quantize the float model it was made from/);
  });

  it('a model that does not fit the data, before the first training step', async () => {
    const data = { train: images, test: images };
    await expect(trainModel({ graph: buildZooModel('resnet18-cifar', { width: 0.0625, classes: 3 }), data, epochs: 1, batch: 4 })).rejects.toThrow(/the model scores 3 classes but the data has 10 \(c0, c1, c2, c3, c4, c5, c6, c7, …\)/);
    await expect(trainModel({ graph: await readModel(fixturePath('torch-tiny-resnet.onnx')), data, epochs: 1, batch: 4, file: 'tiny.onnx' })).rejects.toThrow(/^tiny\.onnx: the model takes 3×16×16 images \(C×H×W\) but the training images are 3×32×32/);
    await expect(trainModel({ graph: net, data, epochs: 1, batch: 4, trainLimit: 0 })).rejects.toThrow(/trainLimit must be a whole number ≥ 1, got 0/);
    await expect(trainModel({ graph: net, data: { train: images, test: take(images, 0) }, epochs: 1, batch: 4 })).rejects.toThrow(/test images \(made\[:0\]\): there are none/);
    const larger: ImageSet = { ...images, name: 'larger', imageShape: [3, 40, 40], pixels: new Uint8Array(10 * 3 * 40 * 40) };
    await expect(trainModel({ graph: net, data: { train: images, test: larger }, epochs: 1, batch: 4 })).rejects.toThrow(/test images \(larger\): are 3×40×40 but the training images are 3×32×32 \(C×H×W\)/);
  });

  it("names options as a program writes them, not as the CLI's flags", async () => {
    expect(() => buildZooModel('resnet18-cifar', { width: -1 })).toThrow(/^width: must be a number > 0, got -1/);
    expect(() => buildZooModel('resnet18-cifar', { channels: 2 })).toThrow(/^channels: must be 3 \(RGB\) or 1 \(grayscale\), got 2 — pass channels: 1 for grayscale images/);
    await expect(quantizeModel(net, images, { method: 'minmax', samples: 0 })).rejects.toThrow(/^samples must be a whole number ≥ 1, got 0/);
    await expect(distill({ teacher: net, student: net, data: { train: images, test: images }, epochs: 1, batch: 4, alpha: 2 })).rejects.toThrow(/^alpha must be in \[0, 1\], got 2/);
    await expect(trainModel({ graph: net, data: { train: images, test: images }, epochs: 1, batch: 4, labelSmoothing: 1 })).rejects.toThrow(/^labelSmoothing must be in \[0, 1\), got 1/);
    // A normalization without its scale fed NaN to every image (top-1 0, no error).
    await expect(evaluateModel(net, images, { normalization: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] } as never })).rejects.toThrow(/^normalization: scale must be a number > 0 \(pixels × scale: 1\/255 for the usual mean and std in \[0, 1\]\), got undefined/);
    await expect(trainModel({ graph: net, data: { train: images, test: images }, epochs: 1, batch: 4, normalization: { scale: 1 / 255, mean: [0.5], std: [0] } })).rejects.toThrow(/std must be numbers > 0/);
    await expect(loadCifar10('test', { dataDir: path.join(REPO, 'no-such-cifar') })).rejects.toThrow(/no-such-cifar: dataDir: does not exist — point dataDir at the folder/);
    // The CLI names the same checks by its flags (distill-cli, engine-cli and qat-cli tests).
  });

  it('a Graph given where a file is taken, and a torch.onnx graph named for what it is', async () => {
    await expect(deploy(net as never)).rejects.toThrow(/^deploy takes one options object whose model is a file path: deploy\(\{ model: 'm\.onnx', target: 'linux-x64', out: 'bundle\/' \}\) — write a Graph to a file first \(writeModel\)/);
    const exported = { ...net, name: 'torch_jit', metadata: { ...net.metadata, 'slimkit.classes': JSON.stringify(images.classes.map((c) => `x${c}`)) } };
    await expect(evaluateModel(exported, images)).rejects.toThrow(/^made: its classes are not the ones the model \(graph 'torch_jit'\) records \(slimkit.classes\)/);
  });

  it('measureModel of a file is what slim info measures: its bytes as stored', async () => {
    const file = fixturePath('torch-tiny-resnet-functions.onnx');
    const stats = await measureModel(file);
    expect(stats.sizeBytes).toBe(fs.statSync(file).size);
    const info = await runSlim(['info', file, '--json']);
    expect(info.code).toBe(0);
    const shown = JSON.parse(info.stdout) as { size_bytes: number; gzip_bytes: number; macs: number };
    expect([shown.size_bytes, shown.gzip_bytes, shown.macs]).toEqual([stats.sizeBytes, stats.gzipBytes, stats.macs]);
    // A Graph is measured as slimkit encodes it (this export's functions are inlined on reading).
    expect((await measureModel(await readModel(file))).params).toBe(stats.params);
  });

  it('measureModel counts the MACs of the ops slimkit defines in a model with one it does not (DepthToSpace), and names it', async () => {
    const file = fixturePath('torch-tiny-pixelshuffle.onnx');
    const expected = { macs: 216 * 256 + 288 * 256 + 160, unknownOps: ['DepthToSpace'] };
    expect(await measureModel(file)).toMatchObject(expected);
    expect(await measureModel(await readModel(file))).toMatchObject(expected);
  });
});

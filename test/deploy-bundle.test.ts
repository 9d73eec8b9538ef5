/**
 * `slim deploy` for linux targets, run as a user would: the bundle's predict.js (a separate Node
 * process, its own generated code) must give the top-1 that slimkit's eval path (loadImageFolder +
 * evaluate) gives on the same image files — PNG, JPEG and WebP, resized and cropped — and the bundle's
 * files, errors and safety rules must hold.
 */
import { execFile, spawnSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10_CLASSES, loadImageFolder, type ResizeMode } from '../src/data/index.js';
import { CIFAR10_NORMALIZATION } from '../src/data/types.js';
import { deploy, type DeployResult } from '../src/deploy/bundle.js';
import { readBundle } from '../src/deploy/open-bundle.js';
import { HOST_TAG } from '../src/onnx/io.js';
import { parseBundleConfig } from '../src/deploy/config.js';
import { prepareModel } from '../src/deploy/prepare-model.js';
import { convertFloat16 } from '../src/compress/quantize/index.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { buildZooModel } from '../src/zoo/index.js';
import { withLastStepAmended, withStep } from '../src/onnx/provenance.js';
import { stepLines } from '../src/report/provenance.js';
import { evaluate } from '../src/runtime/evaluate.js';
import { openSession } from '../src/runtime/ort.js';
import { makeInt8CifarModel, writeTestImages, type TestImage } from './helpers/deploy-models.js';
import { REPO_ROOT } from './helpers/fixtures.js';
import { runSlim } from './helpers/cli.js';
import { request, startListening } from './helpers/deploy-http.js';

const run = promisify(execFile);
let dir: string;
let modelFile: string;
let images: TestImage[];
let bundle: DeployResult;

/** Runs a bundle script with the repo's node_modules (same onnxruntime-node and sharp versions). */
async function node(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, ...args], { maxBuffer: 64 * 2 ** 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'slim-deploy-bundle-'));
  modelFile = await makeInt8CifarModel(path.join(dir, 'int8.onnx'));
  images = await writeTestImages(path.join(dir, 'images'), { count: 40, resized: 10 });
  bundle = await deploy({ model: modelFile, target: 'linux-x64', out: path.join(dir, 'bundle') });
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(bundle.out, 'node_modules'));
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('linux bundle', () => {
  it('holds the model, config, device code, unit and README — and nothing else', async () => {
    const names = bundle.files.map((f) => f.path);
    for (const f of ['model.onnx', 'slim.json', 'package.json', 'predict.js', 'server.js', 'doctor.js', 'install.sh', 'README.md', 'slim-int8.service']) expect(names).toContain(f);
    expect(names.filter((n) => !n.startsWith('lib/')).sort()).toEqual(['README.md', 'doctor.js', 'install.sh', 'model.onnx', 'package.json', 'predict.js', 'server.js', 'slim-int8.service', 'slim.json']);
    const pkg = JSON.parse(await readFile(path.join(bundle.out, 'package.json'), 'utf8'));
    const ours = JSON.parse(await readFile(path.join(REPO_ROOT, 'node_modules/onnxruntime-node/package.json'), 'utf8')).version;
    const sharp = JSON.parse(await readFile(path.join(REPO_ROOT, 'node_modules/sharp/package.json'), 'utf8')).version;
    expect(pkg.dependencies).toEqual({ 'onnxruntime-node': ours, sharp });
    expect(pkg.type).toBe('module');
    const config = parseBundleConfig(await readFile(path.join(bundle.out, 'slim.json'), 'utf8'), 'slim.json');
    expect(config).toMatchObject({ target: 'linux-x64', labels: CIFAR10_CLASSES, model: { inputType: 'float32', outputKind: 'logits' } });
    expect(config.preprocess).toEqual({ size: [32, 32], resize: 'shorter-side', layout: 'NCHW', channels: 'RGB', scale: 1 / 255, mean: CIFAR10_NORMALIZATION.mean, std: CIFAR10_NORMALIZATION.std });
    expect(await readFile(path.join(bundle.out, 'model.onnx'))).toEqual(await readFile(modelFile));
    // The device code is plain JS that imports only Node built-ins, the two pinned packages and itself.
    for (const f of names.filter((n) => n.endsWith('.js'))) {
      const code = await readFile(path.join(bundle.out, f), 'utf8');
      const specifiers = [...code.matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)].map((m) => m[1]!);
      for (const s of specifiers) expect(s, `${f} imports ${s}`).toMatch(/^(node:|onnxruntime-node$|sharp$|\.\/|\.\.\/)/);
      expect(code).not.toMatch(/protobufjs/);
    }
    const unit = await readFile(path.join(bundle.out, 'slim-int8.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/env node \/opt\/slim-int8\/server\.js$/m);
    expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
    const readme = await readFile(path.join(bundle.out, 'README.md'), 'utf8');
    for (const s of ['sh install.sh', 'node predict.js', 'node server.js', '/v1/classify', 'systemctl enable --now slim-int8', 'node doctor.js', config.model.sha256]) expect(readme).toContain(s);
  });

  it('states what the model scores and how it was made, from its own records; no top-1 of another model passes as its own (trial 28)', async () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.125, seed: 1 });
    const trained = withStep(graph, 'slimkit.training', { epochs: 2, batch: 64, device: 'cpu', test_top1: 0.5, data: 'cifar10/test', eval_images: 1000 });
    const quantized = withStep(trained, 'slimkit.quantization', { mode: 'static', method: 'mse', calibration_images: 512, activations: 'uint8 asymmetric', weights: 'int8 per-channel' });
    const scored = withLastStepAmended(quantized, 'slimkit.quantization', { scored: { top1: 0.4725, images: 2000, data: 'cifar10/test' } });
    for (const [name, g, top1] of [['scored', scored, 0.4725], ['unscored', quantized, undefined]] as const) {
      const file = path.join(dir, `${name}.onnx`);
      await writeModel(g, file);
      const made = await deploy({ model: file, target: 'linux-arm64', out: path.join(dir, `made-${name}`) });
      const config = parseBundleConfig(await readFile(path.join(made.out, 'slim.json'), 'utf8'), 'slim.json');
      const readme = await readFile(path.join(made.out, 'README.md'), 'utf8');
      expect(config.model.made).toEqual([expect.stringMatching(/^1\. built from the zoo: resnet18-cifar/), expect.stringMatching(/^2\. trained 2 epochs/), expect.stringMatching(/^3\. quantized \(static int8, mse calibration on 512 images\)/)]);
      for (const line of config.model.made!) expect(readme).toContain(line);
      if (top1 === undefined) {
        // The training's 50 % is the float model's: not this one's.
        expect(config.model.top1).toBeUndefined();
        expect(readme).toContain('No top-1 is recorded for this model as it is');
        expect(readme).not.toContain('50.00 %**');
      } else {
        expect(config.model.top1).toEqual({ value: top1, images: 2000, data: 'cifar10/test' });
        expect(readme).toContain('Top-1 **47.25 %** on 2,000 images of cifar10/test');
        expect(config.model.made![2]).toContain(': top-1 47.25 % on 2,000 images of cifar10/test (ONNX Runtime)');
      }
      // The size claim is the weights', not a generic "~4× smaller" of the file.
      expect(readme).not.toMatch(/~4×/);
    }
    // Fed other preprocessing than it was scored with, the bundle states no top-1, and says why (a trial's
    // 64×64 model deployed at 32×32 claimed 36.13 % and scored 31.09 %).
    const warnings: string[] = [];
    const other = await deploy({ model: path.join(dir, 'scored.onnx'), target: 'linux-x64', out: path.join(dir, 'made-stretched'), resize: 'stretch', log: (l) => void warnings.push(l) });
    const config = parseBundleConfig(await readFile(path.join(other.out, 'slim.json'), 'utf8'), 'slim.json');
    expect(config.model.top1).toBeUndefined();
    expect(config.model.top1Note).toBe('the top-1 the model records (47.25 %) was measured with its own preprocessing, and this bundle feeds it --resize stretch (it records shorter-side)');
    expect(await readFile(path.join(other.out, 'README.md'), 'utf8')).toContain(`No top-1 is stated: ${config.model.top1Note}.`);
    expect(warnings.join('\n')).toMatch(/the bundle states no top-1 — measure it as the bundle runs it: slim eval .*scored\.onnx --data DATA --image-size 32,32 --resize stretch/);
  });

  it('an int8 model scored where its sums saturate states the exact-kernel top-1 for arm64 and the browser, and both for x64 (trial 32: the bundles promised 3 pt less)', async () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.125, seed: 1 });
    const quantized = withStep(graph, 'slimkit.quantization', { mode: 'static', method: 'mse', calibration_images: 512, activations: 'uint8 asymmetric', weights: 'int8 per-channel' });
    const scored = withLastStepAmended(quantized, 'slimkit.quantization', { scored: { top1: 0.363, images: 2000, data: 'cifar10/test', top1_exact_kernels: 0.3935 } });
    const file = path.join(dir, 'saturated.onnx');
    await writeModel(scored, file);
    const said: Record<string, string[]> = {};
    const bundle = async (target: 'linux-arm64' | 'linux-x64'): Promise<{ config: ReturnType<typeof parseBundleConfig>; readme: string }> => {
      const made = await deploy({ model: file, target, out: path.join(dir, `saturated-${target}`), log: (l) => void (said[target] ??= []).push(l) });
      return { config: parseBundleConfig(await readFile(path.join(made.out, 'slim.json'), 'utf8'), 'slim.json'), readme: await readFile(path.join(made.out, 'README.md'), 'utf8') };
    };
    const arm = await bundle('linux-arm64');
    expect(arm.config.model.top1).toEqual({ value: 0.363, images: 2000, data: 'cifar10/test', exactKernels: 0.3935 });
    expect(arm.readme).toContain("Top-1 **39.35 %** on this device's int8 kernels, which compute exactly (the machine that made it (an x64 CPU without VNNI, whose int8 sums saturate) measured 36.30 %), on 2,000 images of cifar10/test");
    expect(arm.readme).not.toContain('borderline');
    expect(said['linux-arm64']!.join('\n')).toMatch(/the README states \S*saturated\.onnx's top-1 on exact int8 kernels, which arm64 runs: 39\.35 % \(the x64 CPU that made it, whose int8 sums saturate, measured 36\.30 %\)/);
    const x64 = await bundle('linux-x64');
    expect(x64.readme).toContain('Top-1 **39.35 %** on x64 CPUs with VNNI or AMX (exact int8 kernels), **36.30 %** on x64 CPUs without them');
    expect(said['linux-x64']!.join('\n')).toMatch(/saturated\.onnx scores 39\.35 % top-1 on x64 CPUs with VNNI or AMX and 36\.30 % on those without/);
    expect(stepLines(scored.metadata).at(-1)).toContain('top-1 36.30 % on 2,000 images of cifar10/test (ONNX Runtime on an x64 CPU whose int8 sums saturate; 39.35 % on exact int8 kernels: arm64, VNNI x64, the browser)');
  });

  it('predict.js gives the same top-1 as slimkit\'s eval path on PNG, JPEG and WebP files', async () => {
    const set = await loadImageFolder(path.join(dir, 'images'), { size: [32, 32], classes: CIFAR10_CLASSES });
    expect(set.labels.length).toBe(images.length);
    const session = await openSession(modelFile, { threads: 1 });
    const evaluated = await evaluate(session, set, { normalization: CIFAR10_NORMALIZATION, keepPredictions: true });
    await session.close();

    const out = await node(path.join(bundle.out, 'predict.js'), ['--json', '--top', '3', ...images.map((i) => i.file)]);
    expect(out.code, out.stderr).toBe(0);
    const results = JSON.parse(out.stdout).results as { file: string; top: { index: number; score: number }[]; model_ms: number; latency_ms: number }[];
    expect(results.map((r) => r.file)).toEqual(images.map((i) => i.file));
    // The model's own time is part of the whole (reading, decoding, preprocessing, the run).
    for (const r of results) {
      expect(r.model_ms).toBeGreaterThan(0);
      expect(r.model_ms).toBeLessThanOrEqual(r.latency_ms);
    }
    const devicePredictions = results.map((r) => r.top[0]!.index);
    expect(devicePredictions).toEqual(Array.from(evaluated.predictions!));
    // The model is a real (weak) classifier: a preprocessing slip would not keep it above chance.
    const correct = devicePredictions.filter((p, i) => p === images[i]!.label).length;
    expect(correct / images.length).toBeGreaterThan(0.2);
    expect(new Set(devicePredictions).size).toBeGreaterThanOrEqual(4);
    for (const r of results) {
      expect(r.top).toHaveLength(3);
      expect(r.top[0]!.score).toBeGreaterThanOrEqual(r.top[1]!.score);
    }
    // A port out of range is a usage error on one line (it was an internal error with a stack).
    const badPort = await node(path.join(bundle.out, 'server.js'), ['--port', '70000']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr.trim().split('\n')).toEqual([expect.stringMatching(/--port: must be a whole number from 0 to 65535, got '70000'/)]);
    // The bundle's server writes one access-log line per request (the journal's, under systemd); --no-access-log none.
    for (const quiet of [false, true]) {
      const served = await startListening(process.execPath, [path.join(bundle.out, 'server.js'), '--port', '0', '--host', '127.0.0.1', ...(quiet ? ['--no-access-log'] : [])], () => undefined);
      try {
        expect((await request(`${served.url}/v1/classify`, { method: 'POST', body: await readFile(images[0]!.file) })).status).toBe(200);
      } finally {
        expect(await served.stop()).toBe(0);
      }
      expect(/ POST \/v1\/classify 200 \d+\.\d ms \S+ \d\.\d{3}\n/.test(served.stderr())).toBe(!quiet);
    }
    // --top above the class count gives every class, as the server's ?top does.
    const all = await node(path.join(bundle.out, 'predict.js'), ['--json', '--top', '99', images[0]!.file]);
    expect(JSON.parse(all.stdout).results[0].top).toHaveLength(10);
  });

  /** A linux-x64 bundle made with `resize`: its README, and the confusion matrix of its predict.js on the images. */
  async function bundleConfusion(name: string, resize: ResizeMode | undefined, model = modelFile): Promise<{ readme: string; confusion: number[][] }> {
    const bundle = await deploy({ model, target: 'linux-x64', out: path.join(dir, name), ...(resize ? { resize } : {}) });
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(bundle.out, 'node_modules'));
    const out = await node(path.join(bundle.out, 'predict.js'), ['--json', '--top', '1', ...images.map((i) => i.file)]);
    expect(out.code, out.stderr).toBe(0);
    const predicted = (JSON.parse(out.stdout).results as { top: { index: number }[] }[]).map((r) => r.top[0]!.index);
    const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
    predicted.forEach((p, i) => confusion[images[i]!.label]![p]!++);
    return { readme: await readFile(path.join(bundle.out, 'README.md'), 'utf8'), confusion };
  }

  it('a --resize stretch bundle predicts what `slim eval --resize stretch` scores (its README names that command)', async () => {
    const { readme, confusion } = await bundleConfusion('stretch', 'stretch');
    expect(readme).toContain('stretched to the size (each side scaled on its own), then\nnormalized with mean [0.4914,0.4822,0.4465] and std [0.247,0.2435,0.2616] (pixels scaled to 0..1) — exactly as\n`slim eval --resize stretch` does it');
    const evaluated = await runSlim(['eval', modelFile, '--data', path.join(dir, 'images'), '--resize', 'stretch', '--threads', '1', '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout).confusion).toEqual(confusion);
    // Without --resize the non-square images are centre-cropped: another preprocessing, other scores.
    const cropped = await runSlim(['eval', modelFile, '--data', path.join(dir, 'images'), '--threads', '1', '--json']);
    expect(JSON.parse(cropped.stdout).confusion).not.toEqual(confusion);
    const cifar = await runSlim(['eval', modelFile, '--data', 'cifar10', '--resize', 'stretch']);
    expect(cifar.code).toBe(2);
    expect(cifar.stderr).toContain("--resize applies to image folders: CIFAR-10's images are fed at 32×32 as they are");
  });

  it('a --resize 40 bundle (Resize(40) + CenterCrop(32)) predicts what `slim eval --resize 40` scores', async () => {
    const { readme, confusion } = await bundleConfusion('resize40', { shorterSide: 40 });
    expect(readme).toMatch(/scaled so its shorter side is 40 and centre-cropped \(torchvision Resize\(40\) \+ CenterCrop\)[\s\S]*`slim eval --resize 40`/);
    const evaluated = await runSlim(['eval', modelFile, '--data', path.join(dir, 'images'), '--resize', '40', '--threads', '1', '--json']);
    expect(evaluated.code, evaluated.stderr).toBe(0);
    expect(JSON.parse(evaluated.stdout).confusion).toEqual(confusion);
    await expect(deploy({ model: modelFile, target: 'web', out: path.join(dir, 'resize24'), resize: { shorterSide: 24 } })).rejects.toThrow(/resize 24 is smaller than the model's 32×32 input/);
    const small = await runSlim(['eval', modelFile, '--data', path.join(dir, 'images'), '--resize', '24']);
    expect(small.code).toBe(2);
    expect(small.stderr).toMatch(/--resize 24 is smaller than the model's 32×32 input/);
    const bad = await runSlim(['eval', modelFile, '--data', path.join(dir, 'images'), '--resize', 'crop']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--resize must be 'shorter-side', 'stretch' or the shorter side's size before the centre crop \(e\.g\. 256\), got 'crop'/);
  });

  it("a model recording resize 40 (slimkit.resize) deploys and evaluates as --resize 40 does, untold; the bundle's model keeps it", async () => {
    const recorded = path.join(dir, 'recorded40.onnx');
    const graph = await readModel(modelFile);
    await writeModel({ ...graph, metadata: { ...graph.metadata, 'slimkit.resize': '40' } }, recorded);
    const { confusion } = await bundleConfusion('recorded40', undefined, recorded);
    const given = await runSlim(['eval', modelFile, '--data', path.join(dir, 'images'), '--resize', '40', '--threads', '1', '--json']);
    expect(given.code, given.stderr).toBe(0);
    expect(confusion).toEqual(JSON.parse(given.stdout).confusion);
    const untold = await runSlim(['eval', recorded, '--data', path.join(dir, 'images'), '--threads', '1', '--json']);
    expect(untold.code, untold.stderr).toBe(0);
    expect(JSON.parse(untold.stdout).confusion).toEqual(confusion);
    // Not what the default resize gives: the record is what made them agree.
    const plain = await runSlim(['eval', modelFile, '--data', path.join(dir, 'images'), '--threads', '1', '--json']);
    expect(JSON.parse(plain.stdout).confusion).not.toEqual(confusion);
    expect(parseBundleConfig(await readFile(path.join(dir, 'recorded40', 'slim.json'), 'utf8'), 'slim.json').preprocess.resize).toEqual({ shorterSide: 40 });
  });

  it('predict.js classifies a folder, prints text, names unreadable files and exits 1', async () => {
    const folder = path.join(dir, 'images', 'cat');
    const text = await node(path.join(bundle.out, 'predict.js'), ['--top', '1', folder]);
    expect(text.code, text.stderr).toBe(0);
    const files = (await readdir(folder)).sort();
    expect(text.stdout.trim().split('\n')).toHaveLength(files.length);
    expect(text.stdout).toMatch(/cat[/\\]\S+: \w+ \d+\.\d %  \(\d+\.\d ms, model \d+\.\d ms\)/);
    // A folder of class folders: every image below it.
    const all = await node(path.join(bundle.out, 'predict.js'), ['--top', '1', path.join(dir, 'images')]);
    expect(all.code, all.stderr).toBe(0);
    const below = (await readdir(path.join(dir, 'images'), { recursive: true })).filter((n) => /\.(png|jpe?g|webp)$/i.test(n));
    expect(all.stdout.trim().split('\n')).toHaveLength(below.length);
    expect(below.length).toBeGreaterThan(files.length);
    const bad = path.join(dir, 'not-an-image.png');
    await writeFile(bad, 'hello');
    const mixed = await node(path.join(bundle.out, 'predict.js'), ['--json', images[0]!.file, bad]);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toContain(`${bad}: cannot read image`);
    expect(mixed.stderr).toContain('give a valid JPEG, PNG, WebP, GIF, TIFF or AVIF image');
    // Files of a folder that are not images by name are skipped, and said to be (a trial's notes.txt went unmentioned).
    const withNotes = path.join(dir, 'with-notes');
    await mkdir(withNotes);
    await writeFile(path.join(withNotes, path.basename(images[0]!.file)), await readFile(images[0]!.file));
    await writeFile(path.join(withNotes, 'notes.txt'), 'my notes');
    const noted = await node(path.join(bundle.out, 'predict.js'), [withNotes]);
    expect(noted.code, noted.stderr).toBe(0);
    expect(noted.stdout.trim().split('\n')).toHaveLength(1);
    expect(noted.stderr).toContain(`predict: note: skipped 1 file(s) in ${withNotes} whose names are not images' (notes.txt)`);
    expect(JSON.parse(mixed.stdout).results).toHaveLength(2);
    const usage = await node(path.join(bundle.out, 'predict.js'), ['--bogus']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/predict: .*bogus/);
  });

  it('refuses a damaged model copy with a message that says what to do', async () => {
    const copy = path.join(dir, 'damaged');
    await deploy({ model: modelFile, target: 'linux-arm64', out: copy });
    await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(copy, 'node_modules'));
    const model = await readFile(path.join(copy, 'model.onnx'));
    await writeFile(path.join(copy, 'model.onnx'), model.subarray(0, model.length - 10));
    // An arm64 bundle's README says how to try it here first, under qemu (an x64 one has no such line).
    expect(await readFile(path.join(copy, 'README.md'), 'utf8')).toContain('`scripts/qemu-arm64.sh BUNDLE/predict.js photo.jpg`');
    expect(await readFile(path.join(bundle.out, 'README.md'), 'utf8')).not.toContain('qemu');
    const out = await node(path.join(copy, 'predict.js'), [images[0]!.file]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/model\.onnx: has \d+ bytes but slim\.json records \d+ .*copy the bundle again/);
  });
});

describe('a bundle whose native modules are missing or built for another CPU', () => {
  it('answers in one line what to do, before Node tries to load them; --help and doctor.js still run', async () => {
    const bare = path.join(dir, 'bare');
    await deploy({ model: modelFile, target: 'linux-x64', out: bare });
    for (const script of ['predict.js', 'server.js']) {
      const out = await node(path.join(bare, script), script === 'predict.js' ? [images[0]!.file] : []);
      expect(out.code, out.stderr).toBe(1);
      expect(out.stderr.trim()).toMatch(/^(predict|server): .*bare: has no node_modules \(the dependencies are not installed\) — run `sh install\.sh` in the bundle folder$/);
    }
    const help = await node(path.join(bare, 'predict.js'), ['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: node predict.js');
    const doctor = await node(path.join(bare, 'doctor.js'), ['--json']);
    expect(doctor.code, doctor.stderr).toBe(0);
    // Without node_modules it reports what it can: Node and the OS, not ONNX Runtime or sharp.
    const versions = (JSON.parse(doctor.stdout) as { versions: Record<string, string> }).versions;
    expect(versions['node']).toBe(process.version);
    expect(versions['onnxruntime']).toBeUndefined();
    expect(versions['sharp']).toBeUndefined();
    // A bundle for this machine has no word about another target; one for another (an arm64 bundle tried
    // here) says the report is of this machine, not the device (a trial read x64 advice from a Pi bundle).
    const adviceOf = (out: string): string[] => (JSON.parse(out) as { advice: { text: string }[] }).advice.map((a) => a.text);
    expect(adviceOf(doctor.stdout).some((t) => t.startsWith('this bundle is for'))).toBe(false);
    const elsewhere = path.join(dir, 'other-target');
    await deploy({ model: modelFile, target: process.arch === 'x64' ? 'linux-arm64' : 'linux-x64', out: elsewhere });
    const foreign = await node(path.join(elsewhere, 'doctor.js'), ['--json']);
    expect(adviceOf(foreign.stdout)[0]).toBe(`this bundle is for ${process.arch === 'x64' ? 'linux-arm64' : 'linux-x64'} and this machine is linux-${process.arch}: the report is of this machine, not the device — run node doctor.js there`);

    // An --install bundle for the other architecture, copied here: its sharp and ONNX Runtime binaries.
    const other = process.arch === 'x64' ? 'arm64' : 'x64';
    await mkdir(path.join(bare, 'node_modules', '@img', `sharp-linux-${other}`), { recursive: true });
    await mkdir(path.join(bare, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', other), { recursive: true });
    const wrong = await node(path.join(bare, 'predict.js'), [images[0]!.file]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`holds native modules for linux-${other}, but this machine is linux-${process.arch} — delete node_modules and run \`sh install.sh\` on this machine`);
    // Only ONNX Runtime's binary for the other CPU (sharp's for this one): still caught.
    await rm(path.join(bare, 'node_modules', '@img'), { recursive: true });
    await mkdir(path.join(bare, 'node_modules', '@img', `sharp-linux-${process.arch}`), { recursive: true });
    const ortOnly = await node(path.join(bare, 'server.js'), []);
    expect(ortOnly.stderr).toContain(`holds native modules for linux-${other}`);
  });
});

describe('slim deploy safety and errors', () => {
  it('a folder that is not a bundle is named plainly; a run folder points to its bundles (a trial got "no slim.json: ENOENT")', async () => {
    const run = path.join(dir, 'a-run');
    await mkdir(path.join(run, 'models'), { recursive: true });
    await writeFile(path.join(run, 'manifest.json'), '{}');
    await expect(readBundle(run)).rejects.toThrow(/a-run: is not a slimkit bundle \(it has no slim\.json\) — it is a slim run folder without a deploy stage: pass one of its models \(.*a-run\/models\/<id>\.onnx\)/);
    await deploy({ model: modelFile, target: 'web', out: path.join(run, 'deploy', 'web') });
    await expect(readBundle(run)).rejects.toThrow(/it is a slim run folder: pass its bundle, .*a-run\/deploy\/web$/);
    await expect(readBundle(path.join(run, 'models'))).rejects.toThrow(/models: is not a slimkit bundle \(it has no slim\.json\) — pass a folder written by `slim deploy`, or an \.onnx model$/);
  });

  it('never overwrites a folder that is not a bundle, and replaces a bundle only with --force', async () => {
    const other = path.join(dir, 'precious');
    await mkdir(other);
    await writeFile(path.join(other, 'thesis.txt'), 'do not delete');
    await expect(deploy({ model: modelFile, target: 'web', out: other, force: true })).rejects.toThrow(/not a slimkit bundle/);
    expect(await readFile(path.join(other, 'thesis.txt'), 'utf8')).toBe('do not delete');
    const out = path.join(dir, 'again');
    await deploy({ model: modelFile, target: 'web', out });
    await expect(deploy({ model: modelFile, target: 'web', out })).rejects.toThrow(/already exists \(a previous bundle\) — pass force: true to replace it/);
    // The staging folder of a deploy killed midway (its process is gone) is swept by the next one.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const orphan = path.join(dir, `.again.${HOST_TAG}.${gone}.0a1b2c3d.tmp`);
    await mkdir(orphan);
    await writeFile(path.join(orphan, 'model.onnx'), 'partial');
    const replaced = await deploy({ model: modelFile, target: 'linux-x64', out, force: true });
    expect(replaced.files.map((f) => f.path)).toContain('server.js');
    expect(replaced.files.map((f) => f.path)).not.toContain('index.html');
    // No staging folders are left behind.
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp') || n.endsWith('.old'))).toEqual([]);
    // Killed between moving the old bundle aside and moving the new one in: no bundle was left at all,
    // the old one hidden for good. The next deploy puts it back first.
    await rename(out, path.join(dir, `.again.${HOST_TAG}.old.${gone}.tmp`));
    const notes: string[] = [];
    await expect(deploy({ model: modelFile, target: 'web', out, log: (l) => notes.push(l) })).rejects.toThrow(/already exists \(a previous bundle\)/);
    expect(notes).toContain(`deploy: note: put back the bundle in ${out} that a deploy killed midway had moved aside`);
    expect(await readdir(out)).toContain('server.js');
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('deploys through a link to a folder (the link stays), and says on linux-x64 that 8-bit int8 weights saturate on x64 without VNNI', async () => {
    const target = path.join(dir, 'releases', 'v1');
    await mkdir(target, { recursive: true });
    const link = path.join(dir, 'current');
    await symlink(path.join('releases', 'v1'), link);
    const notes: string[] = [];
    await deploy({ model: modelFile, target: 'linux-x64', out: link, log: (l) => notes.push(l) });
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readdir(target)).toContain('server.js');
    // Replaced with --force, still through the link.
    await deploy({ model: modelFile, target: 'linux-x64', out: link, force: true });
    expect([(await lstat(link)).isSymbolicLink(), (await readdir(target)).includes('server.js')]).toEqual([true, true]);
    // The model's weights use all 8 bits (±127): the x64 device may be one whose sums saturate.
    expect(notes.join('\n')).toMatch(/deploy: .*int8\.onnx's int8 weights use 8 bits: on x64 CPUs without VNNI .* quantize with --cpu avx2 or --reduce-range/);
    const web: string[] = [];
    await deploy({ model: modelFile, target: 'web', out: path.join(dir, 'web-note'), log: (l) => web.push(l) });
    expect(web.join('\n')).not.toMatch(/use 8 bits/);
  });

  it('names the problem: label count, bad target, missing model, free image size', async () => {
    await expect(deploy({ model: modelFile, target: 'linux-x64', out: path.join(dir, 'x1'), labels: ['a', 'b'] })).rejects.toThrow(/outputs 10 class scores but 2 labels were given.*--labels/);
    await expect(deploy({ model: modelFile, target: 'linux-riscv' as never, out: path.join(dir, 'x2') })).rejects.toThrow(/^target must be one of linux-arm64, linux-x64, web/);
    await expect(deploy({ model: path.join(dir, 'nope.onnx'), target: 'web', out: path.join(dir, 'x3') })).rejects.toThrow(/nope\.onnx/);
    await expect(deploy({ model: modelFile, target: 'web', out: path.join(dir, 'x4'), imageSize: [64, 64] })).rejects.toThrow(/metadata slimkit.input_size|--image-size/);
    // A web bundle is static files: a port there would be silently meaningless.
    await expect(deploy({ model: modelFile, target: 'web', out: path.join(dir, 'x5'), port: 9000 })).rejects.toThrow(/^port applies to linux targets.*drop port; serve a web bundle with slim serve DIR --port 9000/);
    expect((await readdir(dir)).filter((n) => /^x\d$/.test(n) || n.endsWith('.tmp'))).toEqual([]);
  });

  it('slim deploy --json prints one JSON document and writes the bundle', async () => {
    const out = path.join(dir, 'cli-bundle');
    const r = await run(process.execPath, [path.join(REPO_ROOT, 'bin/slim.js'), 'deploy', modelFile, '--target', 'linux-arm64', '--out', out, '--json']);
    const doc = JSON.parse(r.stdout);
    expect(doc).toMatchObject({ out, target: 'linux-arm64', service: 'slim-int8', installed: false, model: { classes: 10, size: [32, 32] } });
    const bad = (await run(process.execPath, [path.join(REPO_ROOT, 'bin/slim.js'), 'deploy', modelFile, '--target', 'mars', '--out', out]).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    ));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--target must be one of/);
  });
});

describe('output kind', () => {
  it('a Softmax behind fp16 conversion casts still gives probabilities (scored once, not softmaxed twice)', async () => {
    const graph = buildZooModel('resnet18-cifar', { width: 0.125 });
    const logits = graph.outputs[0]!.name;
    graph.nodes.push({ name: 'softmax', opType: 'Softmax', domain: '', inputs: [`${logits}_raw`], outputs: [logits], attributes: { axis: { type: 'int', value: 1 } } });
    for (const n of graph.nodes.slice(0, -1)) n.outputs = n.outputs.map((o) => (o === logits ? `${logits}_raw` : o));
    const float = path.join(dir, 'softmax.onnx');
    const half = path.join(dir, 'softmax.fp16.onnx');
    await writeModel(graph, float);
    await writeModel(convertFloat16(graph, 'full').graph, half);
    expect((await prepareModel(float)).config.model.outputKind).toBe('probabilities');
    expect((await prepareModel(half)).config.model.outputKind).toBe('probabilities');
    expect((await prepareModel(modelFile)).config.model.outputKind).toBe('logits');
  });
});

describe('install.sh', () => {
  it('refuses a 32-bit Node (Raspberry Pi OS 32-bit on a 64-bit kernel) before installing anything', async () => {
    const fakeBin = path.join(dir, 'fake-bin');
    await mkdir(fakeBin, { recursive: true });
    // `node -p process.arch` on 32-bit Raspberry Pi OS prints arm, whatever `uname -m` says.
    await writeFile(path.join(fakeBin, 'node'), '#!/bin/sh\necho arm\n', { mode: 0o755 });
    const result = await run('sh', [path.join(bundle.out, 'install.sh')], { env: { ...process.env, PATH: `${fakeBin}:${process.env['PATH']}` } }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Node\.js here is built for arm; bundles run on 64-bit Node/);
  });
});

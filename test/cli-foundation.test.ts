import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModel, writeModel } from '../src/onnx/io.js';
import { emptyGraph } from '../src/onnx/graph.js';
import { runSlim } from './helpers/cli.js';
import { CIFAR_DIR, fixturePath, REPO_ROOT } from './helpers/fixtures.js';
import { Net } from './prune-fixtures.js';
import { VERSION } from '../src/version.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slimkit-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hasCifar = existsSync(path.join(CIFAR_DIR, 'test_batch.bin'));

/** One JSON document on stdout, nothing else. */
function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('slim zoo / info', () => {
  const model = path.join(dir, 'r18.onnx');

  it('builds a zoo model and reports it with --json', async () => {
    const zoo = await runSlim(['zoo', 'resnet18-cifar', '--width', '0.125', '-o', model, '--json']);
    expect(zoo.code).toBe(0);
    expect(json(zoo.stdout)).toMatchObject({ model: 'resnet18-cifar', file: model });
    const info = await runSlim(['info', model, '--json']);
    expect(info.code).toBe(0);
    const doc = json(info.stdout);
    expect(doc).toMatchObject({ params: expect.any(Number), macs: expect.any(Number), opsets: { '': 17 } });
    expect((doc['op_histogram'] as Record<string, number>)['Conv']).toBe(20);
    expect(doc['inputs']).toEqual([{ name: 'input', dtype: 'float32', shape: ['batch', 3, 32, 32] }]);
    // --image-size builds it for photos of another size, as slim train --image-size does (a trial's zoo file was fixed at 32×32).
    const at64 = path.join(dir, 'r18-64.onnx');
    const sized = await runSlim(['zoo', 'resnet18-cifar', '--width', '0.125', '--image-size', '64,48', '-o', at64]);
    expect(sized.code, sized.stderr).toBe(0);
    expect(sized.stdout).toMatch(/64×48 input/);
    expect((await readModel(at64)).inputs[0]!.shape).toEqual(['batch', 3, 64, 48]);
  });

  it("-o's long form is taken in both spellings, --out and --output, by every command that writes", async () => {
    // zoo and optimize spell it --output; train, distill, deploy and report --out.
    const spelled = path.join(dir, 'spelled.onnx');
    expect((await runSlim(['zoo', 'resnet18-cifar', '--width', '0.125', '--out', spelled])).code).toBe(0);
    const optimized = path.join(dir, 'optimized.onnx');
    const r = await runSlim(['optimize', spelled, `--out=${optimized}`]);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(optimized)).toBe(true);
    // A misspelling is still unknown.
    expect((await runSlim(['zoo', 'resnet18-cifar', '--outx', spelled])).stderr).toMatch(/unknown option '--outx'/);
  });

  it('reads a PyTorch export (foreign model) and prints a human summary', async () => {
    const info = await runSlim(['info', fixturePath('torch-tiny-resnet-folded.onnx')]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/producer pytorch/);
    expect(info.stdout).toMatch(/params 2\.9 k/);
    expect(info.stdout).not.toMatch(/note:/);
    // What eval and deploy will assume: a plain export records no statistics and no names.
    expect(info.stdout).toContain("images 16×16, RGB; mean/std not recorded (commands use CIFAR-10's: mean [0.4914, 0.4822, 0.4465], std [0.247, 0.2435, 0.2616]; --mean/--std to change)");
    expect(info.stdout).toContain('classes not named (labels by position)');
    const zoo = await runSlim(['info', model]); // the zoo model of the test above
    expect(zoo.stdout).toContain('images 32×32, RGB; mean [0.4914, 0.4822, 0.4465], std [0.247, 0.2435, 0.2616]');
  });

  it('a model a command rewrote names slimkit as its producer, and the tool it came from', async () => {
    const optimized = path.join(dir, 'torch-optimized.onnx');
    expect((await runSlim(['optimize', fixturePath('torch-tiny-resnet-folded.onnx'), '-o', optimized])).code).toBe(0);
    const graph = await readModel(optimized);
    expect([graph.producerName, graph.producerVersion, graph.metadata['slimkit.source_producer']]).toEqual(['slimkit', VERSION, 'pytorch 1.13.0']);
    const info = await runSlim(['info', optimized, '--json']);
    expect(JSON.parse(info.stdout)).toMatchObject({ producer: `slimkit ${VERSION}`, source_producer: 'pytorch 1.13.0' });
    // A second step keeps the first source.
    const again = path.join(dir, 'torch-optimized-again.onnx');
    expect((await runSlim(['optimize', optimized, '-o', again])).code).toBe(0);
    expect((await readModel(again)).metadata['slimkit.source_producer']).toBe('pytorch 1.13.0');
  });

  it('slim optimize --passes upgrade-opset says the opset it went to, or why it had nothing to do', async () => {
    const out = path.join(dir, 'upgraded.onnx');
    const old = await runSlim(['optimize', fixturePath('torch-tiny-mobilenet-op9.onnx'), '-o', out, '--passes', 'upgrade-opset']);
    expect(old.stdout).toContain('27 → 27 nodes, opset 9 → 13');
    const current = await runSlim(['optimize', fixturePath('torch-tiny-resnet.onnx'), '-o', out, '--passes', 'upgrade-opset', '--json']);
    expect(current.stderr).toContain('upgrade-opset: nothing to rewrite: the model is at opset 17 already (this pass converts opsets 7–12 to 13)');
    expect(JSON.parse(current.stdout)).toMatchObject({ opset_before: 17, opset_after: 17, passes: [{ pass: 'upgrade-opset', note: expect.stringContaining('opset 17 already') }] });
  });

  it('a model whose input is not an image is described as such; a free-size one at the --image-size given', async () => {
    const vector = path.join(dir, 'vector.onnx');
    await writeModel({
      ...emptyGraph('vector'),
      inputs: [{ name: 'features', dtype: 'float32', shape: [1, 100] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [1, 100] }],
      nodes: [{ name: 'relu', opType: 'Relu', domain: '', inputs: ['features'], outputs: ['y'], attributes: {} }],
    }, vector);
    const info = await runSlim(['info', vector]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain("input 'features' [1, 100] is not an image (N×C×H×W or N×H×W×C): slim bench times it on random inputs");
    expect(info.stdout).not.toMatch(/RGB|--image-size/);
    const freeGraph = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    freeGraph.inputs = freeGraph.inputs.map((v) => ({ ...v, shape: ['batch', 3, 'h', 'w'] }));
    const free = path.join(dir, 'free-size.onnx');
    await writeModel(freeGraph, free);
    expect((await runSlim(['info', free])).stdout).toContain('images of a size not recorded (--image-size), RGB');
    const sized = await runSlim(['info', free, '--image-size', '24,20']);
    expect(sized.stdout, sized.stderr).toContain('images 24×20, RGB');
  });

  it('says what an export form means for the other commands (fixed batch, older opset)', async () => {
    const noteOf = async (file: string): Promise<string[]> => json((await runSlim(['info', fixturePath(file), '--json'])).stdout)['notes'] as string[];
    expect(await noteOf('torch-tiny-mobilenet-static.onnx')).toEqual([expect.stringMatching(/^takes batches of 2 only \(exported without dynamic_axes\): training, calibration and fine-tuning free the batch/)]);
    expect(await noteOf('torch-tiny-mobilenet-op9.onnx')).toEqual(['ONNX opset 9: slim quantize converts it to opset 13 first (per-channel QDQ needs it)']);
    expect(await noteOf('torch-tiny-resnet.onnx')).toEqual([]);
  });
});

describe('errors are one clear line with the right exit code', () => {
  // CIFAR-10's usual wrong turns: the archive, its Python version.
  writeFileSync(path.join(dir, 'cifar-10-binary.tar.gz'), 'x');
  mkdirSync(path.join(dir, 'cifar-py'), { recursive: true });
  writeFileSync(path.join(dir, 'cifar-py', 'data_batch_1'), 'x');
  const cases: [string, string[], number, RegExp][] = [
    ['missing file', ['info', path.join(dir, 'nope.onnx')], 1, /nope\.onnx/],
    ['garbage file', ['info', path.join(dir, 'garbage.onnx')], 1, /garbage\.onnx: is a text file, not an ONNX model/],
    // One mistake, one exit code: deploy said 1 where eval and info say 2.
    ['--image-size on a fixed model, in deploy as in eval', ['deploy', fixturePath('torch-tiny-resnet.onnx'), '--target', 'linux-x64', '--image-size', '64,64', '-o', path.join(dir, 'never-bundle')], 2, /input 'input' is fixed at 16×16 but --image-size says 64×64 — drop --image-size/],
    ['truncated file', ['info', path.join(dir, 'truncated.onnx')], 1, /truncated\.onnx/],
    ['unknown flag', ['info', fixturePath('torch-tiny-resnet.onnx'), '--bogus'], 2, /unknown option/],
    // A mistyped required flag is named as the typo, not as the flag it missed.
    ['a required flag mistyped', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--dta', 'cifar10'], 2, /^slim: unknown option '--dta' \(Did you mean --data\?\) — run `slim eval --help` for usage$/m],
    // A flag's value left out: commander took the next flag as the value, then said "too many arguments".
    ['a value left out', ['quantize', fixturePath('torch-tiny-resnet.onnx'), '-o', path.join(dir, 'q.onnx'), '--eval', '--eval-limit', '500'], 2, /^slim: --eval needs a value \(name\|folder\), but --eval-limit follows it — give --eval its value, or drop it \(`slim quantize --help` says what each flag takes\)$/m],
    // A flag that is part of others, which commander's spelling distance does not suggest.
    ['a flag that is part of others', ['train', '--model', 'resnet18-cifar', '--data', 'cifar10', '--limit', '50', '-o', path.join(dir, 'x.onnx')], 2, /^slim: unknown option '--limit' \(Did you mean --train-limit or --test-limit\?\) — run `slim train --help` for usage$/m],
    ['a required flag missing', ['eval', fixturePath('torch-tiny-resnet.onnx')], 2, /^slim: required option '--data <name\|folder>' not specified — run `slim eval --help` for usage$/m],
    ['unknown zoo model', ['zoo', 'resnet19-cifar', '-o', path.join(dir, 'x.onnx')], 2, /resnet18-cifar/],
    ['bad number', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--limit', '-3'], 2, /--limit must be a positive integer/],
    ['missing data folder', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', path.join(dir, 'no-such-folder')], 1, /no-such-folder: does not exist \(--data takes/],
    ['mean in 0..255 units', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--mean', '125.3,123.0,113.9', '--std', '63.0,62.1,66.7'], 2, /--mean takes means of pixels scaled to 0\.\.1, .*in 0\.\.255 units they are 0\.4914,0\.4824,0\.4467 here \(divide --std by 255 too\)/],
    // Before any model is timed (it failed at the evaluation after timing every model).
    ['bench on images that do not fit', ['bench', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--runs', '50'], 2, /^(?![\s\S]*: p50)[\s\S]*torch-tiny-resnet\.onnx takes 3×16×16 images but --data cifar10\/test has 3×32×32 images/],
    ['a zoo name mistyped', ['train', '--model', 'resnet18cifar', '--data', 'cifar10', '-o', path.join(dir, 'x.onnx')], 2, /--model 'resnet18cifar' is neither a zoo model nor a model file — did you mean 'resnet18-cifar'\?/],
    // A model file misspelt, or named without .onnx: the file beside it is suggested (a trial's 'mbnet.onx').
    ['a model file misspelt', ['distill', '--teacher', fixturePath('torch-tiny-resnet.onnx'), '--student', fixturePath('torch-tiny-resnet.onx'), '--data', 'cifar10', '--out', path.join(dir, 'x.onnx')], 2, /--student '.*torch-tiny-resnet\.onx' is neither a zoo model nor a model file — did you mean '.*fixtures\/torch-tiny-resnet\.onnx'\?/],
    ['a model file without .onnx', ['distill', '--teacher', fixturePath('torch-tiny-resnet.onnx'), '--student', fixturePath('torch-tiny-resnet'), '--data', 'cifar10', '--out', path.join(dir, 'x.onnx')], 2, /did you mean '.*fixtures\/torch-tiny-resnet\.onnx'\?/],
    ['a deploy target mistyped', ['deploy', fixturePath('torch-tiny-resnet.onnx'), '--target', 'linux-arm6', '-o', path.join(dir, 'b')], 2, /--target must be one of linux-arm64, linux-x64, web, got 'linux-arm6'; did you mean 'linux-arm64'\?/],
    // A device for a target: which target it is, the value said once (commander's own sentence said it too).
    ['a device given for a target', ['deploy', fixturePath('torch-tiny-resnet.onnx'), '--target', 'raspberrypi', '-o', path.join(dir, 'b')], 2, /^slim: --target must be one of linux-arm64, linux-x64, web, got 'raspberrypi'; a Raspberry Pi or Jetson on a 64-bit OS is linux-arm64 — run `slim deploy --help` for usage$/m],
    ['the CIFAR-10 folder as an image folder', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', CIFAR_DIR], 1, /holds CIFAR-10's binary files, not class subfolders of images — pass --data cifar10 --data-dir /],
    ['a --data-dir that is not there', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--data-dir', path.join(dir, 'nope')], 1, /nope: --data-dir: does not exist — point --data-dir at the folder with data_batch_1\.\.5\.bin/],
    ['the archive as --data-dir', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--data-dir', path.join(dir, 'cifar-10-binary.tar.gz')], 1, /is the archive: slimkit reads the extracted files — extract it \(tar xzf cifar-10-binary\.tar\.gz\)/],
    ["CIFAR-10's Python version", ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--data-dir', path.join(dir, 'cifar-py')], 1, /holds CIFAR-10's Python version \(pickled data_batch_1, …\), not the binary one/],
    ['std in 0..255 units', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--mean', '0.49,0.48,0.45', '--std', '63,62,66'], 2, /--std takes standard deviations of pixels scaled to 0\.\.1, each at most 1, got '63,62,66'; in 0\.\.255 units they are 0\.2471,0\.2431,0\.2588 here/],
    ['zero std', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--std', '0,0,0'], 2, /--std values must be > 0/],
    ['empty mean field', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--mean', '0.5,,0.5'], 2, /--mean takes 3 or 1 comma-separated numbers/],
    ['hex count', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--limit', '0x10'], 2, /--limit must be a positive integer/],
    ['port out of range', ['serve', fixturePath('torch-tiny-resnet.onnx'), '--port', '70000'], 2, /--port must be a port number in 0–65535/],
    ['bad weight decay', ['train', '--model', 'resnet18-cifar', '--data', 'cifar10', '--out', path.join(dir, 'x.onnx'), '--weight-decay', 'abc'], 2, /--weight-decay must be a number ≥ 0/],
    // Flags that would otherwise be silently ignored.
    ['--data-dir beside an image folder', ['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', dir, '--data-dir', CIFAR_DIR], 2, /--data-dir names the folder of CIFAR-10's files/],
    ['--port for a web bundle', ['deploy', fixturePath('torch-tiny-resnet.onnx'), '--target', 'web', '--out', path.join(dir, 'web'), '--port', '9000'], 2, /--port applies to linux targets only/],
    ['--image-size against a fixed input', ['info', fixturePath('torch-tiny-resnet.onnx'), '--image-size', '32'], 2, /fixed at 16×16 but --image-size says 32×32/],
    ['free H×W and no size for an image folder', ['eval', path.join(dir, 'free-hw.onnx'), '--data', dir], 2, /height and width are free.*pass --image-size H,W/],
    ['--data-dir with only image folders', ['quantize', fixturePath('torch-tiny-resnet.onnx'), '-o', path.join(dir, 'q.onnx'), '--calib', dir, '--data-dir', CIFAR_DIR], 2, /no --calib, --eval or --data here is cifar10/],
    ['free H×W and no size for calibration images', ['quantize', path.join(dir, 'free-hw.onnx'), '-o', path.join(dir, 'q.onnx'), '--calib', dir], 2, /have no size to be resized to — pass --image-size H,W/],
    ['free H×W pinned to a size CIFAR-10 is not', ['bench', path.join(dir, 'free-hw.onnx'), '--image-size', '64', '--data', 'cifar10'], 2, /used at 64×64 .* but CIFAR-10's images are 32×32/],
    ['--image-size recorded for calibration on CIFAR-10 at another size', ['quantize', path.join(dir, 'free-hw.onnx'), '-o', path.join(dir, 'q.onnx'), '--calib', 'cifar10', '--image-size', '64'], 2, /CIFAR-10's images are 32×32/],
    // Oracle: the fixture's stem conv (stride 2) then a 2×2 max pool needs a 3×3 image, and 2×2 leaves the pool 1×1.
    ['free H×W at a size its pool window does not fit', ['info', path.join(dir, 'free-hw.onnx'), '--image-size', '2'], 2, /--image-size 2×2 does not fit this model \(node '\/pool\/MaxPool'.*— the smallest square image it takes is 3×3/],
    ['free H×W at a size too small to prune at', ['prune', path.join(dir, 'free-hw.onnx'), '-o', path.join(dir, 'p.onnx'), '--structured', '--ratio', '0.5', '--image-size', '1'], 2, /does not fit this model.*smallest square image it takes is 3×3/],
    ['free H×W and no size to benchmark at', ['bench', path.join(dir, 'free-hw.onnx')], 2, /MACs and latency depend on the image size — pass --image-size H,W/],
    ['--resize without --data', ['bench', fixturePath('torch-tiny-resnet.onnx'), '--resize', 'stretch'], 2, /--resize says how the images of --data are brought to the model, and no --data is given/],
    ['a data problem found before any model is timed', ['bench', path.join(dir, 'free-hw.onnx'), path.join(dir, 'free-hw.onnx'), '--image-size', '32', '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--resize', 'stretch'], 2, /^(?![\s\S]*bench 2 models in turns)[\s\S]*--resize applies to image folders/],
    ['a bench chart without top-1', ['bench', fixturePath('torch-tiny-resnet.onnx'), '--chart', path.join(dir, 'c.svg')], 2, /--chart plots top-1 against latency and size, and top-1 needs --data — add --data cifar10/],
    ['a bench chart that is not an SVG', ['bench', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--chart', path.join(dir, 'c.png')], 2, /--chart writes an SVG file, got '.*c\.png' — name it something\.svg/],
    ['a bench chart in a missing folder', ['bench', fixturePath('torch-tiny-resnet.onnx'), '--data', 'cifar10', '--chart', path.join(dir, 'no-such', 'c.svg')], 2, /--chart .*c\.svg: the folder .*no-such does not exist — create it first \(mkdir -p .*no-such\)/],
    ['a zoo model at an image size CIFAR-10 is not', ['train', '--model', 'resnet18-cifar', '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--image-size', '64', '--out', path.join(dir, 'x.onnx')], 2, /--image-size 64,64 but CIFAR-10's images are 32×32/],
    ['a zoo width no ONNX file can hold', ['zoo', 'resnet18-cifar', '--width', '100', '-o', path.join(dir, 'huge.onnx')], 2, /use a width ≤ 6\.9/],
  ];
  beforeAll(async () => {
    const free = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    free.inputs = free.inputs.map((v) => ({ ...v, shape: ['batch', 3, 'h', 'w'] }));
    await writeModel(free, path.join(dir, 'free-hw.onnx'));
  });
  writeFileSync(path.join(dir, 'garbage.onnx'), 'this is not a model\n'.repeat(20));
  const real = readFileSync(fixturePath('torch-tiny-resnet.onnx'));
  writeFileSync(path.join(dir, 'truncated.onnx'), real.subarray(0, Math.floor(real.length / 2)));

  it('bench checks every model before timing any: a bad last one costs no timing and no half table', async () => {
    const run = await runSlim(['bench', fixturePath('torch-tiny-resnet.onnx'), path.join(dir, 'free-hw.onnx'), '--runs', '50']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/free-hw\.onnx: .*pass --image-size H,W/);
    expect(run.stderr).not.toMatch(/p50/);
  });

  it.skipIf(!hasCifar)('bench --data measures a free-size model at --image-size, not at the size it records', async () => {
    const recorded = await readModel(path.join(dir, 'free-hw.onnx'));
    recorded.metadata = { ...recorded.metadata, 'slimkit.input_size': '[3,16,16]' };
    await writeModel(recorded, path.join(dir, 'free-hw-16.onnx'));
    const run = await runSlim(['bench', path.join(dir, 'free-hw-16.onnx'), '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--image-size', '32', '--limit', '50', '--runs', '50', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect((json(run.stdout) as { models: { eval_images: number }[] }).models[0]!.eval_images).toBe(50);
    // And it says so: the size the model records is not the one timed.
    expect(run.stderr).toMatch(/note: .*free-hw-16\.onnx records 16×16 as its input size; --image-size 32×32 replaces it here/);
  });

  it.skipIf(!hasCifar)('a free-size model that records no size takes CIFAR-10\'s 32×32, says so, and records it in what quantize and prune write', async () => {
    const cifar = ['--data-dir', CIFAR_DIR];
    const quantized = path.join(dir, 'free-hw.int8.onnx');
    const q = await runSlim(['quantize', path.join(dir, 'free-hw.onnx'), '-o', quantized, '--calib', 'cifar10', ...cifar, '--samples', '32']);
    const pruned = path.join(dir, 'free-hw.pruned.onnx');
    const p = await runSlim(['prune', path.join(dir, 'free-hw.onnx'), '-o', pruned, '--structured', '--ratio', '0.5', '--data', 'cifar10', ...cifar]);
    for (const [run, out] of [[q, quantized], [p, pruned]] as const) {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(/note: .*free-hw\.onnx does not state its input size; using CIFAR-10's 32×32, recorded in the model written \(slimkit\.input_size\)/);
      const written = await readModel(out);
      expect(written.metadata['slimkit.input_size'], out).toBe('[3,32,32]');
      expect(written.inputs[0]!.shape, out).toEqual((await readModel(path.join(dir, 'free-hw.onnx'))).inputs[0]!.shape);
    }
    // What bench reads next: no --image-size needed any more.
    const b = await runSlim(['bench', quantized, pruned, '--runs', '50', '--json']);
    expect(b.code, b.stderr).toBe(0);
    // eval and bench take the same 32×32 for the original (they write nothing, so record nothing).
    for (const args of [['eval', path.join(dir, 'free-hw.onnx')], ['bench', path.join(dir, 'free-hw.onnx'), '--runs', '50']]) {
      const r = await runSlim([...args, '--data', 'cifar10', ...cifar, '--limit', '20']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/note: .*free-hw\.onnx does not state its input size; using CIFAR-10's 32×32\n/);
    }
    // One that takes 16×16 only (a Flatten before its classifier): CIFAR-10's size is named as what does not fit, not an --image-size nobody gave.
    const n = new Net(['batch', 3, 'h', 'w']);
    const flat = n.op('Flatten', n.node('MaxPool', [n.op('Relu', n.conv('input', 3, 4))], { kernel_shape: { type: 'ints', value: [2, 2] }, strides: { type: 'ints', value: [2, 2] } })[0]!);
    await writeModel(n.output(n.gemm(flat, 4 * 8 * 8, 10)), path.join(dir, 'flatten16.onnx'));
    const fixedBySize = await runSlim(['quantize', path.join(dir, 'flatten16.onnx'), '-o', path.join(dir, 'f.onnx'), '--calib', 'cifar10', ...cifar]);
    expect(fixedBySize.code).toBe(2);
    expect(fixedBySize.stderr).toMatch(/CIFAR-10's 32×32 images \(no --image-size given, none recorded\) do not fit this model .* it takes 16×16, .*with an image folder/);
    expect(fixedBySize.stderr).not.toMatch(/note:/);
  });

  for (const [what, args, code, message] of cases) {
    it(what, async () => {
      const run = await runSlim(args);
      expect(run.code).toBe(code);
      expect(run.stdout).toBe('');
      const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(lines.length).toBeGreaterThanOrEqual(1);
      expect(run.stderr).toMatch(message);
      if (code === 1) expect(lines).toHaveLength(1);
      expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
    });
  }

  it('--version --json is a JSON document too', async () => {
    const r = await runSlim(['--version', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect((await runSlim(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('with --json a failure is one JSON document on stdout too, made of the same parts', async () => {
    const missing = await runSlim(['info', path.join(dir, 'nope.onnx'), '--json']);
    expect(missing.code).toBe(1);
    const doc = JSON.parse(missing.stdout) as { error: Record<string, unknown> };
    expect(doc.error).toMatchObject({ kind: 'input', exit_code: 1, file: path.join(dir, 'nope.onnx') });
    expect(missing.stderr).toContain(doc.error['message'] as string);
    const usage = await runSlim(['info', fixturePath('torch-tiny-resnet.onnx'), '--bogus', '--json']);
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stdout)).toMatchObject({ error: { kind: 'usage', exit_code: 2, message: expect.stringMatching(/unknown option '--bogus'/) as unknown as string, fix: 'run `slim info --help` for usage' } });
  });
});

describe.skipIf(!hasCifar)('slim eval / bench on real CIFAR-10 images', () => {
  const model = path.join(dir, 'eval.onnx');

  it('evaluates a zoo model on 200 test images', async () => {
    await runSlim(['zoo', 'resnet18-cifar', '--width', '0.125', '-o', model]);
    const run = await runSlim(['eval', model, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '200', '--threads', '2', '--json']);
    expect(run.code).toBe(0);
    const doc = json(run.stdout);
    expect(doc['eval_images']).toBe(200);
    expect(doc['top1']).toBeGreaterThanOrEqual(0);
    expect(doc['top5']).toBeGreaterThanOrEqual(doc['top1'] as number);
    const perClass = doc['per_class'] as { total: number }[];
    expect(perClass).toHaveLength(10);
    expect(perClass.reduce((s, c) => s + c.total, 0)).toBe(200);
    const confusion = doc['confusion'] as number[][];
    expect(confusion.flat().reduce((a, b) => a + b, 0)).toBe(200);
    // Five images leave classes without any: their accuracy is null, not 0.
    const five = json((await runSlim(['eval', model, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '5', '--json'])).stdout)['per_class'] as { total: number; accuracy: number | null }[];
    expect(five.filter((c) => c.total === 0).length).toBeGreaterThan(0);
    for (const c of five) expect(c.accuracy === null, JSON.stringify(c)).toBe(c.total === 0);
  });

  it('benchmarks two models side by side with the documented JSON fields', async () => {
    const small = path.join(dir, 'small.onnx');
    await runSlim(['zoo', 'resnet18-cifar', '--width', '0.125', '-o', small]);
    const chart = path.join(dir, 'compare.svg');
    const run = await runSlim(['bench', small, model, '--runs', '50', '--threads', '1', '--batch', '4', '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '64', '--json', '--chart', chart]);
    expect(run.code, run.stderr).toBe(0);
    const doc = json(run.stdout) as { models: Record<string, unknown>[]; cores?: number; other_load_cores?: number };
    expect(doc.models).toHaveLength(2);
    for (const m of doc.models) {
      expect(m).toMatchObject({
        file: expect.any(String),
        size_bytes: expect.any(Number),
        gzip_bytes: expect.any(Number),
        params: expect.any(Number),
        macs: expect.any(Number),
        latency_ms: { p50: expect.any(Number), p90: expect.any(Number), p99: expect.any(Number) },
        throughput_ips: expect.any(Number),
        top1: expect.any(Number),
      });
      // 50 runs are 5 turns of 10, each with its p50.
      const turns = m['turn_p50_ms'] as number[];
      expect(turns).toHaveLength(5);
      expect(turns.every((ms) => ms > 0)).toBe(true);
      const lat = m['latency_ms'] as { p50: number; p90: number; p99: number };
      expect(lat.p50).toBeLessThanOrEqual(lat.p90);
      expect(lat.p90).toBeLessThanOrEqual(lat.p99);
    }
    // Timed in turns, each in a process of its own; without a terminal the progress is a line every few
    // seconds and one at the end, not one per update.
    expect(doc).toMatchObject({ timed_in_turns: true, threads: 1 });
    // How much of the machine other processes took meanwhile (Linux: /proc), in cores.
    if (existsSync('/proc/stat')) {
      expect(doc.cores).toBe(readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d+ /.test(l)).length);
      expect(doc.other_load_cores).toBeGreaterThanOrEqual(0);
      expect(doc.other_load_cores).toBeLessThanOrEqual(doc.cores!);
    }
    // The same comparison as a picture: both panels, each model labelled by its file name.
    const svg = readFileSync(chart, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of ['Top-1 vs batch-1 latency', 'Top-1 vs file size', '>small.onnx<', '>eval.onnx<']) expect(svg).toContain(text);
    const done = run.stderr.split('\n').filter((l) => l.startsWith('bench 2 models in turns: 100/100'));
    expect(done, run.stderr).toHaveLength(1);
  });
});

describe('a model with an op neither slimkit nor ONNX Runtime knows', () => {
  it('info says no command can run it, instead of promising eval and bench', async () => {
    const g = await readModel(fixturePath('torch-tiny-resnet.onnx'));
    const conv = g.nodes.find((n) => n.opType === 'Conv')!;
    const misspelled = { ...g, nodes: g.nodes.map((n) => (n === conv ? { ...n, opType: 'Conw' } : n)) };
    const file = path.join(dir, 'conw.onnx');
    await writeModel(misspelled, file);
    const info = await runSlim(['info', file]);
    expect(info.stderr).toMatch(/neither slimkit nor ONNX Runtime knows op Conw \(ONNX Runtime: .*Conw.*\); no command can run this model — re-export it/);
    expect(info.stderr).not.toMatch(/so eval, bench and deploy work/);
  });
});

describe('a model with an op slimkit has no definition for (F.pixel_shuffle, exported as DepthToSpace)', () => {
  const model = fixturePath('torch-tiny-pixelshuffle.onnx');

  it('info, bench and deploy run it with ONNX Runtime; MACs count the other ops and say so', async () => {
    const info = await runSlim(['info', model, '--json', '--layers']);
    expect(info.code, info.stderr).toBe(0);
    // PyTorch: conv+BN fused (216 + 8), conv (288 + 16), linear (160 + 10). MACs: the stride-2 stem (216 × 16·16),
    // the stride-2 conv after pixel_shuffle's [2, 32, 32] (288 × 16·16; the shape measured by ONNX Runtime), the linear (160).
    expect(json(info.stdout)).toMatchObject({ params: 698, macs: 216 * 256 + 288 * 256 + 160, unknown_ops: ['DepthToSpace'] });
    expect((json(info.stdout) as { layers: { layer: string; macs: number }[] }).layers.map((l) => [l.layer, l.macs])).toEqual([['stem.0', 216 * 256], ['conv', 288 * 256], ['fc', 160]]);
    expect(info.stderr).toContain('no definition for op DepthToSpace; ONNX Runtime runs it, so eval, bench and deploy work (MACs count the other ops only); quantize leaves it float, and prune and train cannot take this model');
    const human = await runSlim(['info', model]);
    expect(human.stdout).toContain('MACs 129.2 k per image (without DepthToSpace, which slimkit has no definition for)');
    // A free image size leaves the op's output unmeasurable: MACs unknown, and why.
    const free = await readModel(model);
    const freeFile = path.join(dir, 'shuffle-free.onnx');
    await writeModel({ ...free, inputs: free.inputs.map((v) => ({ ...v, shape: ['batch', 3, 'height', 'width'] })) }, freeFile);
    const freeInfo = await runSlim(['info', freeFile]);
    expect(freeInfo.code, freeInfo.stderr).toBe(0);
    expect(freeInfo.stdout).toContain('MACs unknown: slimkit has no definition for DepthToSpace, and the shapes after it are not known before the model runs');
    expect(freeInfo.stderr).toContain('so eval, bench and deploy work, but MACs are unknown;');

    const few = await runSlim(['bench', model, '--runs', '20']);
    expect(few.code).toBe(2);
    expect(few.stderr).toMatch(/--runs must be a whole number ≥ 50, got '20' \(p99 needs at least 50 samples\)/);
    const bench = await runSlim(['bench', model, '--runs', '50', '--warmup', '0', '--threads', '1', '--json']);
    expect(bench.code, bench.stderr).toBe(0);
    const row = (json(bench.stdout) as { models: Record<string, unknown>[] }).models[0]!;
    expect(row).toMatchObject({ params: 698, macs: 129184, macs_without_ops: ['DepthToSpace'], latency_ms: { p50: expect.any(Number) } });
    const benchHuman = await runSlim(['bench', model, '--runs', '50', '--warmup', '0', '--threads', '1']);
    expect(benchHuman.stdout).toContain(`MACs leave out the ops slimkit has no definition for: ${model} (DepthToSpace)`);

    // slim optimize works around the op (its output types measured), and the result still runs (trial 31 F8).
    const optimized = path.join(dir, 'shuffle.opt.onnx');
    const opt = await runSlim(['optimize', model, '-o', optimized]);
    expect(opt.code, opt.stderr).toBe(0);
    expect(opt.stderr).toContain('note: slimkit has no definition for DepthToSpace: left as it is (its output shapes measured with ONNX Runtime); the passes work around it');
    expect((await readModel(optimized)).nodes.filter((n) => n.opType === 'DepthToSpace')).toHaveLength(1);

    const bundle = path.join(dir, 'shuffle-bundle');
    // Debian's name for the target is taken as slimkit's; -o is --out.
    const deploy = await runSlim(['deploy', model, '--target', 'linux-amd64', '-o', bundle, '--json']);
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(existsSync(path.join(bundle, 'model.onnx'))).toBe(true);
    expect((json(deploy.stdout) as { target: string }).target).toBe('linux-x64');
  });

  it.skipIf(!hasCifar)('eval scores it; quantize leaves the op float and says so; --qat, prune and train refuse it naming what still works', async () => {
    const run = await runSlim(['eval', model, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--limit', '100', '--threads', '1', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(json(run.stdout)['eval_images']).toBe(100);
    const int8 = path.join(dir, 'shuffle.int8.onnx');
    const quant = await runSlim(['quantize', model, '-o', int8, '--calib', 'cifar10', '--data-dir', CIFAR_DIR, '--samples', '64', '--eval', 'cifar10', '--eval-limit', '100', '--threads', '1', '--json']);
    expect(quant.code, quant.stderr).toBe(0);
    expect(quant.stderr).toContain('note: slimkit has no definition for DepthToSpace (1 node): it stays float, as exported, with int8 values dequantized before it (its output shapes measured with ONNX Runtime)');
    const doc = json(quant.stdout) as { float_nodes: { node: string; reason: string }[]; top1_drop_pt: number; ort_ops: Record<string, number> };
    expect(doc.float_nodes).toContainEqual({ node: '/DepthToSpace', op_type: 'DepthToSpace', reason: 'an op slimkit has no definition for: left as exported, in float on dequantized inputs' });
    expect(doc.ort_ops).toMatchObject({ QLinearConv: 2, DepthToSpace: 1 });
    expect(Math.abs(doc.top1_drop_pt)).toBeLessThan(5);
    const info = await runSlim(['info', int8, '--json']);
    expect(json(info.stdout)).toMatchObject({ unknown_ops: ['DepthToSpace'] });
    // fp16: the op runs in float32 between Casts, and the note says so (it spoke of int8 values).
    const half = await runSlim(['quantize', model, '--mode', 'fp16', '-o', path.join(dir, 'shuffle.fp16.onnx')]);
    expect(half.code, half.stderr).toBe(0);
    expect(half.stderr).toContain('note: slimkit has no definition for DepthToSpace (1 node): it stays float32, as exported, computing in float32 between Casts (its output shapes measured with ONNX Runtime)');
    // Exported for batch size 1 (no dynamic_axes): measured there, and again with its batch freed; the written model keeps 1.
    const given = await readModel(model);
    const b1 = path.join(dir, 'shuffle-b1.onnx');
    await writeModel({ ...given, inputs: [{ ...given.inputs[0]!, shape: [1, 3, 32, 32] }], outputs: [{ ...given.outputs[0]!, shape: [1, 10] }] }, b1);
    const fixed = await runSlim(['quantize', b1, '-o', path.join(dir, 'shuffle-b1.int8.onnx'), '--calib', 'cifar10', '--data-dir', CIFAR_DIR, '--samples', '32', '--threads', '1']);
    expect(fixed.code, fixed.stderr).toBe(0);
    const written = await readModel(path.join(dir, 'shuffle-b1.int8.onnx'));
    expect(written.inputs[0]!.shape).toEqual([1, 3, 32, 32]);
    expect(written.valueInfo.get('/DepthToSpace_output_0')?.shape).toEqual([1, 2, 32, 32]);

    const qat = await runSlim(['quantize', model, '--qat', '--epochs', '1', '--data', 'cifar10', '--data-dir', CIFAR_DIR, '-o', path.join(dir, 'shuffle.qat.onnx')]);
    expect(qat.code).toBe(1); // the model's ops, not the flags: as prune's and train's refusal below
    expect(qat.stderr).toContain("--qat trains the model in slimkit's engine, which has no definition for DepthToSpace — quantize it without --qat: post-training quantization leaves those ops float");
    for (const command of [['prune', model, '--structured', '--ratio', '0.5', '-o', path.join(dir, 'shuffle.pruned.onnx')], ['train', '--model', model, '--data', 'cifar10', '--data-dir', CIFAR_DIR, '--epochs', '1', '--out', path.join(dir, 'shuffle.trained.onnx')]]) {
      const refused = await runSlim(command);
      expect(refused.code, command[0]).toBe(1);
      expect(refused.stderr).toContain('op DepthToSpace is not supported');
      expect(refused.stderr).toContain('slim eval, bench, info and deploy still run it with ONNX Runtime, and quantize leaves it float');
      // The fix is in reach: the README lists the ops (a trial's error carried ~80 op names, ~1,000 characters).
      expect(refused.stderr).toMatch(/prune and train need each op to be one of slimkit's \d+ \(README, "Ops slimkit defines"\): export the model without DepthToSpace, and `slim info` names every such op it has/);
      // Counted without the model's path, whose length is the checkout's (a clone's deeper folder made it 401).
      expect(refused.stderr.replaceAll(model, 'M').trim().length).toBeLessThan(400);
    }
  });

  it("the README's list of the ops slimkit defines is the registry's", async () => {
    const { OPS } = await import('../src/ops/registry.js');
    const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const listed = /Ops slimkit defines \((\d+)[^)]*\):\s*([^.]+)\./.exec(readme.replace(/\n\s*/g, ' '));
    expect(listed, 'README: "Ops slimkit defines (N, …): `A`, `B`, …."').not.toBeNull();
    const names = [...listed![2]!.matchAll(/`([A-Za-z0-9]+)`/g)].map((m) => m[1]);
    expect(names).toEqual(Object.keys(OPS).sort());
    expect(Number(listed![1])).toBe(names.length);
  });
});

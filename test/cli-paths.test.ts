/**
 * Output paths are checked before the work: a command does not calibrate, train or prune for minutes and
 * then fail on a missing folder, nor write its result over the model it read.
 */
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { emptyGraph } from '../src/onnx/graph.js';
import { writeModel } from '../src/onnx/io.js';
import { writeMadeModel } from '../src/cli/write-result.js';
import { freshStartNote, leftOverNote, limitsBeyondDataNote, resumedNote } from '../src/cli/train-options.js';
import { float32 } from '../src/onnx/tensor.js';
import { keptAtInterrupt } from '../src/cli/train-options.js';
import { runSlim } from './helpers/cli.js';
import { fixturePath, REPO_ROOT } from './helpers/fixtures.js';
import { nativeAvailable } from '../src/engine/native.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-paths-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('output paths', () => {
  const model = path.join(dir, 'm.onnx');
  copyFileSync(fixturePath('torch-tiny-resnet.onnx'), model);
  const folder = path.join(dir, 'a-folder');
  mkdirSync(folder);
  const file = path.join(dir, 'a-file');
  writeFileSync(file, 'x');

  it('a model is never written over the model it is made from', async () => {
    for (const args of [
      ['quantize', model, '-o', model, '--mode', 'dynamic'],
      ['quantize', model, '-o', path.join(dir, '.', 'm.onnx'), '--mode', 'dynamic'],
      ['prune', model, '-o', model, '--unstructured', '--sparsity', '0.5'],
      ['optimize', model, '-o', model],
      ['train', '--model', model, '--data', folder, '--out', model],
    ]) {
      const r = await runSlim(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/is the input model: writing it would replace the model it is made from — write to another file, e\.g\. .*m\.out\.onnx/);
    }
  });

  it('a model is written over an earlier model, never over an image or any other file', async () => {
    const image = path.join(dir, 'cat_000.png');
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]);
    writeFileSync(image, png);
    const notes = path.join(dir, 'keep.txt');
    writeFileSync(notes, 'results of last week\n');
    for (const [args, kind] of [
      [['quantize', model, '-o', image, '--mode', 'dynamic'], 'a PNG image'],
      [['zoo', 'resnet18-cifar', '--width', '0.125', '-o', notes], 'a text file'],
      [['train', '--model', model, '--data', folder, '--out', image], 'a PNG image'],
    ] as const) {
      const r = await runSlim([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(`exists and is ${kind}, not an ONNX model: writing the model would replace it — give a new path, e.g. `);
    }
    expect(readFileSync(image).equals(png)).toBe(true);
    expect(readFileSync(notes, 'utf8')).toBe('results of last week\n');
    // An earlier model, and an empty file, are replaced.
    const earlier = path.join(dir, 'earlier.onnx');
    copyFileSync(model, earlier);
    const empty = path.join(dir, 'empty.onnx');
    writeFileSync(empty, '');
    for (const out of [earlier, empty]) {
      const r = await runSlim(['quantize', model, '-o', out, '--mode', 'dynamic']);
      expect(r.code, r.stderr).toBe(0);
    }
  });

  it('a model is not written to a path whose extension names something else (-o notes.txt, --out model.pt)', async () => {
    for (const [args, named] of [
      [['optimize', model, '-o', path.join(dir, 'optimized.txt')], 'a text file'],
      [['train', '--model', model, '--data', folder, '--out', path.join(dir, 'model.pt')], 'a PyTorch file'],
      [['quantize', model, '-o', path.join(dir, 'int8.JSON'), '--mode', 'dynamic'], 'a JSON file'],
    ] as const) {
      const r = await runSlim([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`names ${named}, but what is written there is an ONNX model — give a \\.onnx path, e\\.g\\. .*\\.onnx`));
    }
    for (const name of ['optimized.txt', 'model.pt', 'int8.JSON']) expect(existsSync(path.join(dir, name)), name).toBe(false);
  });

  it('a folder output named like a file (deploy -o bundle.zip) is refused before anything is made', async () => {
    const r = await runSlim(['deploy', model, '--target', 'linux-x64', '-o', path.join(dir, 'bundle.zip')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--out .*bundle\.zip names a \.zip file, but what is written there is a folder — give a folder name, e\.g\. .*bundle \(then pack it yourself: tar czf .*bundle\.tar\.gz -C .*bundle \.\)/);
    expect(existsSync(path.join(dir, 'bundle.zip'))).toBe(false);
  });

  it('a pipe or device given for a file is refused, not replaced (as root a rename replaces even /dev/null)', async () => {
    const fifo = path.join(dir, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    for (const args of [['zoo', 'resnet18-cifar', '--width', '0.125', '-o', fifo], ['optimize', model, '-o', fifo]]) {
      const r = await runSlim(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/out\.fifo is a pipe \(FIFO\), not a file: slimkit writes a file beside it and renames it into place, which would replace it — give a file path/);
    }
    // The library refuses too, whatever checked the path before it.
    await expect(writeModel(emptyGraph(), fifo)).rejects.toThrow(/out\.fifo: is a pipe \(FIFO\), not a file/);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
  });

  it('a missing folder, a folder given for a file and a file given for a folder are named before any work', async () => {
    const missing = await runSlim(['quantize', model, '-o', path.join(dir, 'nodir', 'q.onnx'), '--mode', 'dynamic']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/-o .*nodir\/q\.onnx: the folder .*nodir does not exist — create it first/);
    const onFolder = await runSlim(['zoo', 'resnet18-cifar', '-o', folder]);
    expect(onFolder.code).toBe(2);
    expect(onFolder.stderr).toMatch(/-o .*a-folder is a folder — give a file path/);
    // One path for two outputs: the checkpoint folder was made where the model was then to be written.
    const same = path.join(dir, 'same.onnx');
    for (const args of [
      ['train', '--model', 'resnet18-cifar', '--data', folder, '--out', same, '--checkpoint-dir', same],
      ['prune', model, '-o', same, '--structured', '--ratio', '0.3', '--finetune', '1', '--data', folder, '--checkpoint-dir', same],
      ['quantize', model, '-o', same, '--qat', '--epochs', '1', '--data', folder, '--calib', folder, '--log', same],
    ]) {
      const r = await runSlim(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/(--out|-o) and (--checkpoint-dir|--log) are both .*same\.onnx|--log .*same\.onnx is also a model file/);
      expect(existsSync(same)).toBe(false);
    }
    const checkpoints = await runSlim(['train', '--model', 'resnet18-cifar', '--data', folder, '--out', path.join(dir, 't.onnx'), '--checkpoint-dir', file]);
    expect(checkpoints.code).toBe(2);
    expect(checkpoints.stderr).toMatch(/--checkpoint-dir .*a-file is a file, not a folder/);
    const logOnFolder = await runSlim(['train', '--model', 'resnet18-cifar', '--data', folder, '--out', path.join(dir, 't.onnx'), '--log', folder]);
    expect(logOnFolder.code).toBe(2);
    expect(logOnFolder.stderr).toMatch(/--log .*a-folder is a folder — give a file path, e\.g\. .*a-folder\/train\.jsonl/);
    // Log lines are appended: never to a model the command reads or writes, nor to a file that is no log.
    for (const [args, message] of [
      [['train', '--model', model, '--data', folder, '--out', path.join(dir, 't.onnx'), '--log', model], /--log .*m\.onnx is also a model file of this command/],
      [['train', '--model', 'resnet18-cifar', '--data', folder, '--out', path.join(dir, 't.onnx'), '--log', path.join(dir, 't.onnx')], /--log .*t\.onnx is also a model file of this command/],
      [['distill', '--teacher', model, '--student', 'resnet18-cifar', '--data', folder, '--out', path.join(dir, 't.onnx'), '--log', model], /--log .*m\.onnx is also a model file/],
      [['quantize', model, '-o', path.join(dir, 'q.onnx'), '--qat', '--data', folder, '--log', model], /--log .*m\.onnx is also a model file/],
      [['train', '--model', 'resnet18-cifar', '--data', folder, '--out', path.join(dir, 't.onnx'), '--log', file], /--log .*a-file exists and is not a JSON-lines log/],
    ] as const) {
      const r = await runSlim([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(readFileSync(file, 'utf8')).toBe('x');
    // A symlink to the -o model not written yet, and a pretty-printed JSON document, are refused too.
    // Through a chain of links, too.
    symlinkSync(path.join(dir, 'later.onnx'), path.join(dir, 'link0.jsonl'));
    symlinkSync(path.join(dir, 'link0.jsonl'), path.join(dir, 'link.jsonl'));
    const linked = await runSlim(['train', '--model', 'resnet18-cifar', '--data', folder, '--out', path.join(dir, 'later.onnx'), '--log', path.join(dir, 'link.jsonl')]);
    expect(linked.stderr).toMatch(/--log .*link\.jsonl is also a model file of this command/);
    writeFileSync(path.join(dir, 'result.json'), '{\n  "file": "m.onnx"\n}\n');
    const pretty = await runSlim(['train', '--model', 'resnet18-cifar', '--data', folder, '--out', path.join(dir, 't.onnx'), '--log', path.join(dir, 'result.json')]);
    expect(pretty.stderr).toMatch(/--log .*result\.json exists and is not a JSON-lines log/);
    // An earlier run's checkpoint is not replaced by a new run: --resume continues it.
    const earlier = path.join(dir, 'ckpts');
    mkdirSync(earlier);
    writeFileSync(path.join(earlier, 'last.ckpt'), 'x');
    const again = await runSlim(['train', '--model', 'resnet18-cifar', '--data', folder, '--out', path.join(dir, 't.onnx'), '--checkpoint-dir', earlier]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--checkpoint-dir .*ckpts holds the checkpoint of an earlier run .* — add --resume to continue that run, or give another --checkpoint-dir/);
    const recipe = path.join(dir, 'r.yaml');
    writeFileSync(recipe, 'name: r\nmodel: { zoo: resnet18-cifar }\nstages:\n  - train: { epochs: 1 }\n');
    const runDir = await runSlim(['run', recipe, '--run-dir', file]);
    expect(runDir.code).toBe(2);
    expect(runDir.stderr).toMatch(/--run-dir .*a-file is a file, not a folder/);
    const report = await runSlim(['quantize', model, '-o', path.join(dir, 'q.onnx'), '--calib', folder, '--report', path.join(dir, 'nodir', 'rep')]);
    expect(report.code).toBe(2);
    expect(report.stderr).toMatch(/--report .*nodir\/rep\.md: the folder .*nodir does not exist/);
    // A bundle folder is created, but not the folders above it: a typo should not grow a new tree.
    const bundle = await runSlim(['deploy', model, '--target', 'linux-x64', '--out', path.join(dir, 'nodir', 'bundle/')]);
    expect(bundle.code).toBe(2);
    expect(bundle.stderr).toMatch(/--out .*nodir\/bundle\/?: the folder .*nodir does not exist — create it first/);
    expect(existsSync(path.join(dir, 'nodir'))).toBe(false);
    const made = await runSlim(['deploy', model, '--target', 'linux-x64', '--out', path.join(dir, 'bundle/')]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`(see ${path.join(dir, 'bundle', 'README.md')})`);
  }, 300_000); // about twenty commands started: minutes on a loaded 2-core machine
});

describe('the model a long command made', () => {
  it('goes to the temp folder when its path fails at the end, and the error says where and what the refusal asks for; when that fails too, how to get it back', async () => {
    const graph = emptyGraph('made');
    const gone = path.join(dir, 'removed-meanwhile', 'out.onnx');
    const error = (await writeMadeModel(graph, gone).catch((e: unknown) => e)) as Error;
    const rescued = /written to (\S+) instead/.exec(error.message)?.[1];
    expect(error.message).toMatch(/out\.onnx: .*: the model was written to \S+slim-rescued-\d+-out\.onnx instead — check the output path and free space, then move it: mv /);
    expect(existsSync(rescued!)).toBe(true);
    rmSync(rescued!);
    const tmp = process.env['TMPDIR'];
    process.env['TMPDIR'] = path.join(dir, 'no-temp-folder');
    try {
      const lost = (await writeMadeModel(graph, gone, { checkpointDir: 'ck' }).catch((e: unknown) => e)) as Error;
      expect(lost.message).toMatch(/nor could the system's temp folder take it: this run's model is lost — check the output path and free space, then run the same command with --resume: ck\/last\.ckpt holds every epoch/);
    } finally {
      if (tmp === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = tmp;
    }
  });
});

describe('a resumed run', () => {
  it('says what the checkpoint held, since steps and time count the earlier run too', () => {
    expect(resumedNote(undefined, 3)).toEqual([]);
    expect(resumedNote(1, 3)).toEqual(['  resumed after epoch 1 of 3: this run trained epochs 2–3; steps and time count the earlier run too']);
    expect(resumedNote(2, 3)[0]).toMatch(/this run trained epoch 3;/);
    expect(resumedNote(3, 3)).toEqual(["  the checkpoint had finished all 3 epochs: nothing was trained, the model was written from it (the figures are that run's)"]);
  });

  it('--resume with no checkpoint yet says training starts at epoch 1; images left out of whole batches are counted', () => {
    const empty = path.join(dir, 'no-checkpoint-yet');
    expect(freshStartNote({ checkpointDir: empty, resume: true })).toBe(`note: --resume: ${empty} holds no checkpoint yet, so training starts at epoch 1`);
    expect(freshStartNote({ checkpointDir: empty })).toBeUndefined();
    mkdirSync(empty, { recursive: true });
    writeFileSync(path.join(empty, 'last.ckpt'), 'x');
    expect(freshStartNote({ checkpointDir: empty, resume: true })).toBeUndefined();
    expect(leftOverNote(1000, 250, 128)).toBe('note: 250 training images make 1 batch of 128; each epoch leaves out 122 (a different 122: the shuffle changes every epoch) — --batch 125 uses them all');
    // A trial's 360 images left 104 out of every epoch; a prime count has no batch that uses them all; a few left out are not worth one.
    expect(leftOverNote(360, undefined, 128)).toMatch(/leaves out 104 .* — --batch 120 uses them all$/);
    expect(leftOverNote(367, undefined, 128)).toMatch(/leaves out 111 \(a different 111: the shuffle changes every epoch\)$/);
    expect(leftOverNote(50_010, undefined, 128)).toMatch(/leaves out 90 \(a different 90: the shuffle changes every epoch\)$/);
    expect(leftOverNote(1000, 256, 128)).toBeUndefined();
    expect(leftOverNote(100, undefined, 128)).toBe('note: 100 training images are fewer than one batch of 128: each epoch is one step on all 100 (lower --batch for more steps)');
    expect(leftOverNote(128, undefined, 128)).toBeUndefined();
    // Limits above the data: said (a trial's 10,000 on a folder of 360 passed without a word).
    expect(limitsBeyondDataNote({ train: 360, test: 90 }, { trainLimit: 10_000, testLimit: 5000 })).toBe('note: --train-limit 10000 (there are 360 training images) and --test-limit 5000 (there are 90 test images) ask for more images than there are: all are used');
    expect(limitsBeyondDataNote({ train: 360, test: 90 }, { trainLimit: 100 })).toBeUndefined();
    expect(limitsBeyondDataNote({ train: 50_000, test: 10_000 }, { testLimit: 20_000 })).toBe('note: --test-limit 20000 (there are 10,000 test images) asks for more images than there are: all are used');
  });
});

describe('flags that would not apply', () => {
  it('--width with a model file (it builds zoo models only)', async () => {
    const onFile = await runSlim(['train', '--model', fixturePath('torch-tiny-resnet.onnx'), '--data', dir, '--width', '0.5', '--out', path.join(dir, 'w.onnx')]);
    expect(onFile.code).toBe(2);
    expect(onFile.stderr).toMatch(/--width builds zoo models; .*torch-tiny-resnet\.onnx keeps the widths it was exported with — drop --width/);
    const student = await runSlim(['distill', '--teacher', fixturePath('torch-tiny-resnet.onnx'), '--student', fixturePath('torch-tiny-resnet.onnx'), '--data', dir, '--width', '0.5', '--out', path.join(dir, 'w.onnx')]);
    expect(student.code).toBe(2);
    expect(student.stderr).toMatch(/--width builds zoo models/);
  });

  it('slim serve of a bundle refuses model flags (its slim.json decides labels and preprocessing)', async () => {
    const bundle = mkdtempSync(path.join(tmpdir(), 'slim-bundle-'));
    try {
      const r = await runSlim(['serve', bundle, '--labels', 'l.txt', '--mean', '0.9']);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toMatch(/--labels, --mean apply to a model file, not to a bundle: .*slim\.json decides its labels and preprocessing — drop --labels, --mean, or deploy the model again with them/);
    } finally {
      rmSync(bundle, { recursive: true, force: true });
    }
  });
});

describe('a model with two inputs', () => {
  it('eval, quantize and deploy say the same thing: one image input, and how to get there', async () => {
    const g = emptyGraph('two', 17);
    g.inputs = [{ name: 'image', dtype: 'float32', shape: ['batch', 3, 8, 8] }, { name: 'bias', dtype: 'float32', shape: ['batch', 4, 1, 1] }];
    g.nodes = [
      { name: 'conv', opType: 'Conv', domain: '', inputs: ['image', 'w'], outputs: ['c'], attributes: {} },
      { name: 'add', opType: 'Add', domain: '', inputs: ['c', 'bias'], outputs: ['a'], attributes: {} },
      { name: 'pool', opType: 'GlobalAveragePool', domain: '', inputs: ['a'], outputs: ['p'], attributes: {} },
      { name: 'flat', opType: 'Flatten', domain: '', inputs: ['p'], outputs: ['scores'], attributes: {} },
    ];
    g.outputs = [{ name: 'scores', dtype: 'float32', shape: ['batch', 4] }];
    g.initializers.set('w', float32([4, 3, 1, 1], Array.from({ length: 12 }, (_, i) => i / 12)));
    const file = path.join(dir, 'two.onnx');
    await writeModel(g, file);
    const images = path.join(dir, 'two-images');
    for (const c of ['a', 'b', 'c', 'd']) {
      mkdirSync(path.join(images, c), { recursive: true });
      await sharp(Buffer.alloc(8 * 8 * 3, c.charCodeAt(0)), { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(path.join(images, c, 'x.png'));
    }
    for (const args of [
      ['eval', file, '--data', images],
      ['quantize', file, '-o', path.join(dir, 'two.int8.onnx'), '--calib', images],
      ['deploy', file, '--target', 'linux-x64', '--out', path.join(dir, 'two-bundle')],
    ]) {
      const r = await runSlim(args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(1);
      expect(r.stderr, args[0]).toMatch(/two\.onnx: takes 2 inputs \(image, bias\); .* feeds a classifier one image input — export the classifier with the image as its only input/);
    }
  });
});

describe('data named by the user', () => {
  it('a missing data folder is bad input (exit 1), named by the flag that gave it', async () => {
    const model = fixturePath('torch-tiny-resnet.onnx');
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    for (const [args, message] of [
      [['eval', model, '--data', path.join(dir, 'nodir')], /nodir: does not exist \(--data takes 'cifar10' or a folder\) — pass --data cifar10 or a folder with one subfolder of images per class/],
      [['quantize', model, '-o', path.join(dir, 'q.onnx'), '--calib', path.join(dir, 'nodir')], /nodir: does not exist \(--calib takes 'cifar10' or a folder\) — pass --calib cifar10 or a folder of images$/m],
      [['quantize', model, '-o', path.join(dir, 'q.onnx'), '--calib', 'cifar10', '--eval', file], /a-file: is a file; --eval takes 'cifar10' or a folder/],
      [['train', '--model', 'resnet18-cifar', '--data', path.join(dir, 'nodir'), '--out', path.join(dir, 't.onnx')], /nodir: does not exist \(--data takes 'cifar10' or a folder\) — pass --data cifar10, or a folder with train\/ and test\//],
    ] as const) {
      const r = await runSlim([...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });
});

describe('run folders named by the user', () => {
  it('a missing folder and a folder of something else are told apart', async () => {
    const missing = await runSlim(['report', path.join(dir, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope: does not exist — pass a folder made by slim run or slim demo/);
    const other = await runSlim(['recommend', dir, '--min-top1', '0.5']);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/is not a run folder \(it has no manifest\.json\) — pass a folder made by slim run or slim demo/);
    // Before the missing limits: the folder is the mistake to hear about first.
    const noLimits = await runSlim(['recommend', path.join(dir, 'nope')]);
    expect(noLimits.stderr).toMatch(/nope: does not exist/);
    // The manifest itself (it said "does not exist"): its folder is named.
    const runDir = path.join(dir, 'a-run');
    mkdirSync(runDir, { recursive: true });
    writeFileSync(path.join(runDir, 'manifest.json'), '{}');
    const file = await runSlim(['report', path.join(runDir, 'manifest.json')]);
    expect(file.code).toBe(1);
    expect(file.stderr).toMatch(/manifest\.json: is a file; a run folder is expected — pass its folder: .*a-run/);
  });
});

describe('slim bench given a file twice, or a run folder', () => {
  it('times the file once, saying so; points a run folder to its models', async () => {
    const model = fixturePath('torch-tiny-resnet.onnx');
    const twice = await runSlim(['bench', model, path.join(path.dirname(model), '.', path.basename(model)), '--runs', '50', '--warmup', '2', '--threads', '1', '--json']);
    expect(twice.code, twice.stderr).toBe(0);
    expect((JSON.parse(twice.stdout) as { models: unknown[] }).models).toHaveLength(1);
    expect(twice.stderr).toMatch(/note: .*torch-tiny-resnet\.onnx is named twice: benched once/);
    const run = path.join(dir, 'bench-run');
    mkdirSync(path.join(run, 'models'), { recursive: true });
    writeFileSync(path.join(run, 'manifest.json'), '{}');
    const folder = await runSlim(['bench', run]);
    expect(folder.code).toBe(1);
    expect(folder.stderr).toMatch(/bench-run: is a folder, not a file — it is a slim run folder: give its models, .*bench-run\/models\/\*\.onnx \(slim report .*bench-run shows the run's own bench\)/);
  }, 120_000);
});

describe('Ctrl-C in a command that keeps nothing', () => {
  it('says so in one line, and --json still prints its one JSON document (a trial got nothing at all)', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), 'bench', fixturePath('torch-tiny-resnet.onnx'), '--runs', '1000000', '--threads', '1', '--json'], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Timing has begun once its first turn is under way (a few seconds in).
    for (let waited = 0; waited < 60_000 && !/turn|runs|bench/i.test(stderr); waited += 200) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1000));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/\nslim bench: interrupted before it finished \(files are written whole or not at all: any it wrote are complete\)\n/);
    expect(stderr).not.toMatch(/slim: slim/);
    expect(JSON.parse(stdout)).toEqual({ error: { kind: 'interrupted', message: 'slim bench: interrupted before it finished (files are written whole or not at all: any it wrote are complete)', signal: 'SIGINT', exit_code: 130 } });
  }, 120_000);
});

describe.skipIf(!nativeAvailable())('Ctrl-C while training', () => {
  it('says what was kept and how to go on; the rerun needs --resume and continues', async () => {
    const images = path.join(dir, 'ctrl-c');
    for (const split of ['train', 'test']) {
      // The fixture scores 10 classes.
      for (let c = 0; c < 10; c++) {
        mkdirSync(path.join(images, split, `c${c}`), { recursive: true });
        for (let i = 0; i < 2; i++) {
          await sharp(Buffer.alloc(16 * 16 * 3, 20 * c + i), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(images, split, `c${c}`, `${i}.png`));
        }
      }
    }
    const ckpt = path.join(dir, 'ctrl-c-ckpt');
    const logFile = path.join(dir, 'ctrl-c.jsonl');
    const args = ['train', '--model', fixturePath('torch-tiny-resnet.onnx'), '--data', images, '--batch', '4', '--threads', '1', '--epochs', '100000',
      '--checkpoint-dir', ckpt, '--log', logFile, '--out', path.join(dir, 'ctrl-c.onnx')];
    const events = (): { event: string; epoch?: number }[] => (existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string }) : []);
    /** Runs `slim train args`, interrupts it once `ready()` holds, and returns its exit code and stderr. */
    const interrupted = async (extra: string[], ready: () => boolean, signal: NodeJS.Signals = 'SIGINT'): Promise<{ code: number | null; stderr: string }> => {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), ...args, ...extra], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      for (let waited = 0; !ready() && waited < 120_000; waited += 200) await new Promise((r) => setTimeout(r, 200));
      child.kill(signal);
      return { code: await exited, stderr };
    };
    // Interrupted once an epoch has been saved.
    const first = await interrupted([], () => existsSync(path.join(ckpt, 'last.ckpt')));
    expect(first.code).toBe(130);
    expect(first.stderr).toMatch(/slim train: interrupted — .*ctrl-c-ckpt\/last\.ckpt holds the last finished epoch; run the same command with --resume to continue from it/);
    const again = await runSlim(args);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/holds the checkpoint of an earlier run/);
    // With --resume it starts after the saved epoch.
    const second = await interrupted(['--resume'], () => events().some((e) => e.event === 'resume'));
    expect(second.code).toBe(130);
    const resume = events().find((e) => e.event === 'resume') as { epoch: number; last_epoch?: { epoch: number } };
    expect(resume.epoch).toBeGreaterThanOrEqual(1);
    // The checkpoint's last epoch is in the resume record (a kill before its own 'epoch' record loses nothing).
    expect(resume.last_epoch?.epoch).toBe(resume.epoch);
    // SIGTERM (timeout, docker stop) says the same, and exits as terminated programs do.
    const resumes = events().filter((e) => e.event === 'resume').length;
    const third = await interrupted(['--resume'], () => events().filter((e) => e.event === 'resume').length > resumes, 'SIGTERM');
    expect(third.code).toBe(143);
    expect(third.stderr).toMatch(/slim train: stopped \(SIGTERM\) — .*ctrl-c-ckpt\/last\.ckpt holds the last finished epoch; run the same command with --resume/);
    // After the last epoch, while the model is written and scored, a Ctrl-C is explained too (the
    // handlers were gone by then: exit 130 without a word, and no model).
    expect(keptAtInterrupt(ckpt, { out: 'm.onnx' })).toMatch(/^training had finished but m\.onnx was not written: .*ctrl-c-ckpt\/last\.ckpt holds the whole run; run the same command with --resume to write it \(nothing trains again\)$/);
    expect(keptAtInterrupt(undefined, { out: 'm.onnx' })).toBe('training had finished but m.onnx was not written, and without --checkpoint-dir nothing was kept');
    expect(keptAtInterrupt(ckpt, { out: 'm.onnx', written: true })).toBe('training had finished and m.onnx was written; its check in ONNX Runtime was cut short (slim eval m.onnx runs it)');

    // prune --finetune says it too (it exited 130 without a word): its checkpoints are per fine-tuning.
    const pruneCkpt = path.join(dir, 'ctrl-c-prune-ckpt');
    const pruneArgs = ['prune', fixturePath('torch-tiny-resnet.onnx'), '-o', path.join(dir, 'ctrl-c-pruned.onnx'), '--structured', '--ratio', '0.3', '--round-to', '1',
      '--finetune', '100000', '--data', images, '--batch', '4', '--threads', '1', '--checkpoint-dir', pruneCkpt];
    const pruning = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test/helpers/slim-entry.ts'), ...pruneArgs], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let pruneErr = '';
    pruning.stderr.on('data', (d: Buffer) => (pruneErr += d.toString()));
    const pruneExit = new Promise<number | null>((resolve) => pruning.on('close', (code) => resolve(code)));
    for (let waited = 0; !existsSync(path.join(pruneCkpt, 'finetune-1', 'last.ckpt')) && waited < 120_000; waited += 200) await new Promise((r) => setTimeout(r, 200));
    pruning.kill('SIGINT');
    expect(await pruneExit).toBe(130);
    expect(pruneErr).toMatch(/slim prune: interrupted — .*ctrl-c-prune-ckpt holds the fine-tuning checkpoints; run the same command with --resume to continue: the cuts come out the same, finished fine-tunings are read back/);
  }, 300_000);
});

describe('calibration images', () => {
  it('a folder of images without class folders calibrates; an empty class folder beside others does not block it', async () => {
    const flat = path.join(dir, 'calib-flat');
    mkdirSync(flat);
    for (let i = 0; i < 6; i++) {
      await sharp(Buffer.alloc(16 * 16 * 3, 30 * i), { raw: { width: 16, height: 16, channels: 3 } }).png().toFile(path.join(flat, `${i}.png`));
    }
    const out = path.join(dir, 'calib-flat.int8.onnx');
    const r = await runSlim(['quantize', fixturePath('torch-tiny-resnet.onnx'), '-o', out, '--calib', flat, '--method', 'minmax', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ calibration_images: 6 });
    const withEmpty = path.join(dir, 'calib-classes');
    mkdirSync(path.join(withEmpty, 'empty'), { recursive: true });
    mkdirSync(path.join(withEmpty, 'full'));
    copyFileSync(path.join(flat, '0.png'), path.join(withEmpty, 'full', '0.png'));
    copyFileSync(path.join(flat, '1.png'), path.join(withEmpty, 'full', '1.png'));
    const r2 = await runSlim(['quantize', fixturePath('torch-tiny-resnet.onnx'), '-o', path.join(dir, 'calib-classes.int8.onnx'), '--calib', withEmpty, '--method', 'minmax', '--json']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout)).toMatchObject({ calibration_images: 2 });
    // Scoring still needs class folders: labels are what it measures.
    const scored = await runSlim(['eval', fixturePath('torch-tiny-resnet.onnx'), '--data', flat]);
    expect(scored.code).toBe(1);
    expect(scored.stderr).toMatch(/has no class subfolders/);
  });
});

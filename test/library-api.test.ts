// slimkit used as a library: the package entry resolves by name to the build, its declarations type-check a
// user's program (and reject a wrong one), the task-level calls give what the commands give, and the
// examples the README shows run as shown.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { buildZooModel, encodeModel, evaluateModel, loadCifar10, quantizeModel, readModel, writeModel } from '../src/index.js';
import { nativeAvailable } from '../src/engine/native.js';
import { realCifar10Dir, removeTempDirs, REPO, tempDir } from './data-fixtures.js';
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
    await writeModel(buildZooModel('resnet18-cifar', { width: 0.125, seed: 3 }), floatFile);
    const cliFile = path.join(dir, 'cli.int8.onnx');
    const cli = await runSlim(['quantize', floatFile, '--calib', 'cifar10', '--samples', '128', '--data-dir', cifar!, '-o', cliFile]);
    expect(cli.stderr).not.toMatch(/error/);
    expect(cli.code).toBe(0);

    const ours = await quantizeModel(floatFile, await loadCifar10('train', { dataDir: cifar! }), { samples: 128 });
    expect(ours.calibrationImages).toBe(128);
    expect(Object.keys(ours.methodScores ?? {}).sort()).toEqual(['entropy', 'minmax', 'mse', 'percentile']);
    expect(Buffer.compare(Buffer.from(encodeModel(ours.graph).model), Buffer.from(encodeModel(await readModel(cliFile)).model))).toBe(0);

    const evalCli = await runSlim(['eval', cliFile, '--data', 'cifar10', '--data-dir', cifar!, '--limit', '300', '--json']);
    expect(evalCli.code).toBe(0);
    const cliTop1 = (JSON.parse(evalCli.stdout) as { top1: number }).top1;
    const result = await evaluateModel(cliFile, await loadCifar10('test', { dataDir: cifar!, limit: 300 }));
    expect(result.count).toBe(300);
    expect(result.top1).toBe(cliTop1);
  }, 180_000);

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

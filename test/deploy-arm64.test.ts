/**
 * The linux-arm64 bundle of an int8 model, with node_modules vendored for arm64 by `slim deploy
 * --install`, run under qemu-aarch64 user emulation with an arm64 Node: predict.js must give the same
 * top-1 as the x64 bundle on the same images (as a Cortex-A72 / Pi 4 and as a Cortex-A76 / Pi 5, whose
 * int8 kernels differ), and server.js must answer and stop gracefully. qemu is slow: a handful of images.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deploy, type DeployResult } from '../src/deploy/bundle.js';
import { makeInt8CifarModel, writeTestImages, type TestImage } from './helpers/deploy-models.js';
import { request, startListening } from './helpers/deploy-http.js';
import { REPO_ROOT } from './helpers/fixtures.js';
import { arm64Ready, gate } from './helpers/deploy-prereq.js';

const run = promisify(execFile);
const QEMU = path.join(REPO_ROOT, 'scripts/qemu-arm64.sh');
const ready = gate('arm64 under qemu', await arm64Ready());

let dir: string;
let images: TestImage[];
let arm: DeployResult;
let x64: DeployResult;

interface PredictOut {
  results: { file: string; top: { index: number; label: string; score: number }[] }[];
}

beforeAll(async () => {
  if (!ready) return;
  dir = await mkdtemp(path.join(tmpdir(), 'slim-deploy-arm64-'));
  const model = await makeInt8CifarModel(path.join(dir, 'int8.onnx'));
  images = await writeTestImages(path.join(dir, 'images'), { count: 6, resized: 2 });
  arm = await deploy({ model, target: 'linux-arm64', out: path.join(dir, 'arm64'), install: true });
  x64 = await deploy({ model, target: 'linux-x64', out: path.join(dir, 'x64') });
  await symlink(path.join(REPO_ROOT, 'node_modules'), path.join(x64.out, 'node_modules'));
}, 300_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.runIf(ready)('linux-arm64 bundle under qemu', () => {
  it('vendors arm64 binaries only', async () => {
    expect(arm.installed).toBe(true);
    const { stdout } = await run('find', [path.join(arm.out, 'node_modules'), '-name', '*.node']);
    const natives = stdout.trim().split('\n');
    expect(natives.some((f) => f.includes('onnxruntime-node/bin/napi-v6/linux/arm64/'))).toBe(true);
    expect(natives.some((f) => f.includes('sharp-linux-arm64'))).toBe(true);
    expect(natives.filter((f) => /x64|darwin|win32/.test(f))).toEqual([]);
    const { stdout: elf } = await run('file', ['-L', path.join(arm.out, 'node_modules/onnxruntime-node/bin/napi-v6/linux/arm64/onnxruntime_binding.node')]).catch(() => ({ stdout: 'ARM aarch64 (file(1) unavailable)' }));
    expect(elf).toMatch(/aarch64/);
  });

  it.each(['cortex-a72', 'cortex-a76'])('predict.js on arm64 (%s) gives the x64 top-1 on every image', async (cpu) => {
    const files = images.map((i) => i.file);
    const reference = JSON.parse((await run(process.execPath, [path.join(x64.out, 'predict.js'), '--json', ...files])).stdout) as PredictOut;
    const { stdout } = await run('bash', [QEMU, path.join(arm.out, 'predict.js'), '--json', ...files], { env: { ...process.env, SLIM_QEMU_CPU: cpu }, timeout: 240_000 });
    const emulated = JSON.parse(stdout) as PredictOut;
    expect(emulated.results.map((r) => r.file)).toEqual(files);
    expect(emulated.results.map((r) => r.top[0]!.label)).toEqual(reference.results.map((r) => r.top[0]!.label));
    emulated.results.forEach((r, i) => {
      r.top.forEach((p, k) => expect(Math.abs(p.score - reference.results[i]!.top.find((q) => q.index === p.index)!.score), `${r.file} #${k}`).toBeLessThan(0.02));
    });
    const doctor = await run('bash', [QEMU, path.join(arm.out, 'doctor.js'), '--json'], { env: { ...process.env, SLIM_QEMU_CPU: cpu } });
    const report = JSON.parse(doctor.stdout);
    expect(report.cpu).toMatchObject({ arch: 'arm64', model: cpu === 'cortex-a72' ? 'Cortex-A72' : 'Cortex-A76', features: { dotprod: cpu === 'cortex-a76' } });
    expect(report.versions.onnxruntime).toBe(JSON.parse(await readFile(path.join(arm.out, 'package.json'), 'utf8')).dependencies['onnxruntime-node']);
  }, 300_000);

  it('server.js answers /healthz and /v1/classify under qemu and exits 0 on SIGTERM', async () => {
    const server = await startListening('bash', [QEMU, path.join(arm.out, 'server.js'), '--port', '0', '--host', '127.0.0.1'], () => undefined, 180_000);
    try {
      expect((await request(`${server.url}/healthz`)).json()).toMatchObject({ status: 'ok' });
      const reply = await request(`${server.url}/v1/classify?top=1`, { method: 'POST', body: await readFile(images[0]!.file) });
      expect(reply.status, reply.body.toString()).toBe(200);
      const reference = JSON.parse((await run(process.execPath, [path.join(x64.out, 'predict.js'), '--json', '--top', '1', images[0]!.file])).stdout) as PredictOut;
      expect(reply.json().top[0].label).toBe(reference.results[0]!.top[0]!.label);
      expect((await request(`${server.url}/v1/classify`, { method: 'POST', body: 'junk' })).status).toBe(415);
      expect((await request(`${server.url}/metrics`)).body.toString()).toMatch(/slim_model_info\{[^}]*target="linux-arm64"/);
    } finally {
      expect(await server.stop()).toBe(0);
      // The bundle's server names itself as the user started it, not as `slim serve`.
      expect(server.stderr()).toMatch(/^server: [^\n]*\(10 classes, \d+ threads?\) listening on/m);
      expect(server.stderr()).toMatch(/^server: SIGTERM received[\s\S]*^server: closed/m);
      expect(server.stderr()).not.toContain('slim serve');
    }
  }, 240_000);
});

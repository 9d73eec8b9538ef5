// The GPU host has Node (staged by gpu-prep) but no node_modules: bench/bundle.sh's bundles must load
// with only onnxruntime beside them (it is sent as .gpu-ort). A bundle that pulled in sharp through an
// import chain failed there with "Could not load the sharp module" before doing any work.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
/** Every entry bench/gpu-all.sh runs on the host. */
const ENTRIES = ['train-step', 'cifar-gpu', 'qat-gpu', 'distill-gpu', 'prune-finetune-gpu'];
const bare = mkdtempSync(path.join(tmpdir(), 'slim-gpu-bundles-'));
afterAll(() => rmSync(bare, { recursive: true, force: true }));

describe('GPU-host bundles', () => {
  it('each loads with nothing but onnxruntime beside it, as on the bare host', () => {
    const built = spawnSync('bash', ['bench/bundle.sh', ...ENTRIES], {
      cwd: ROOT, env: { ...process.env, SLIM_BUNDLE_DIR: bare }, encoding: 'utf8', timeout: 120_000,
    });
    expect(built.stderr).toBe('');
    expect(built.status).toBe(0);
    // What .gpu-ort/onnxruntime.tar.xz unpacks next to the bundles on the host.
    mkdirSync(path.join(bare, 'node_modules'));
    for (const pkg of ['onnxruntime-node', 'onnxruntime-common']) {
      symlinkSync(path.join(ROOT, 'node_modules', pkg), path.join(bare, 'node_modules', pkg));
    }
    for (const entry of ENTRIES) {
      // An unknown option stops the script at its argument parsing: by then every module it imports
      // has been evaluated, and nothing has been trained or read.
      const run = spawnSync(process.execPath, [path.join(bare, `${entry}.mjs`), '--no-such-option'], { cwd: bare, encoding: 'utf8', timeout: 60_000 });
      const firstError = run.stderr.split('\n').find((line) => /^\w*Error\b/.test(line));
      expect({ entry, firstError }).toEqual({ entry, firstError: expect.stringMatching(/Unknown option '--no-such-option'/) });
      expect(run.status).not.toBe(0);
    }
  }, 180_000);
});

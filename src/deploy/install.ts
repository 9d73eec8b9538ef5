/**
 * `slim deploy --install`: vendors node_modules for the *target* platform into the bundle with npm's
 * own cross-platform install (--os/--cpu/--libc), so the folder runs as copied on a device without
 * network. onnxruntime-node ships every platform's binaries in one package; the others are pruned
 * (288 MB → ~30 MB for linux-arm64).
 */
import { spawn } from 'node:child_process';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { SlimError } from '../errors.js';

export const NPM_CPU = { 'linux-arm64': 'arm64', 'linux-x64': 'x64' } as const;
export type NodeTarget = keyof typeof NPM_CPU;

export async function installDependencies(dir: string, target: NodeTarget, log: (line: string) => void = () => {}): Promise<void> {
  const cpu = NPM_CPU[target];
  const args = ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', '--os=linux', `--cpu=${cpu}`, '--libc=glibc'];
  log(`deploy: npm ${args.join(' ')} (in the bundle)`);
  const output = await run('npm', args, dir);
  if (output.code !== 0) {
    throw new SlimError({
      file: dir,
      problem: `npm install for ${target} failed (exit ${output.code}): ${output.text.trim().split('\n').slice(-3).join(' / ')}`,
      fix: 'check that the npm registry is reachable, or deploy without --install and run install.sh on the device',
    });
  }
  await pruneForeignBinaries(dir, cpu);
  const sharpNative = path.join(dir, 'node_modules', '@img', `sharp-linux-${cpu}`);
  if (!(await stat(sharpNative).catch(() => undefined))?.isDirectory()) {
    throw new SlimError({ file: dir, problem: `npm did not install @img/sharp-linux-${cpu}`, fix: 'deploy without --install and run install.sh on the device' });
  }
}

/** Keeps onnxruntime-node's bin/napi-v*\/linux/<cpu> and removes every other platform's binaries. */
export async function pruneForeignBinaries(dir: string, cpu: string): Promise<void> {
  const bin = path.join(dir, 'node_modules', 'onnxruntime-node', 'bin');
  for (const napi of await readdir(bin).catch(() => [] as string[])) {
    for (const os of await readdir(path.join(bin, napi)).catch(() => [] as string[])) {
      if (os !== 'linux') {
        await rm(path.join(bin, napi, os), { recursive: true, force: true });
        continue;
      }
      for (const arch of await readdir(path.join(bin, napi, os))) {
        if (arch !== cpu) await rm(path.join(bin, napi, os, arch), { recursive: true, force: true });
      }
    }
  }
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; text: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ONNXRUNTIME_NODE_INSTALL_CUDA: 'skip' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(new SlimError({ problem: `cannot run ${cmd} (${e.code ?? e.message})`, fix: 'install npm (it comes with Node.js), or deploy without --install' })));
    child.on('close', (code) => resolve({ code: code ?? 1, text }));
  });
}

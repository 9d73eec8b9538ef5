/**
 * What `slim doctor` says beyond the bundle's own doctor.js: whether this slimkit can train (the LibTorch
 * addon), time models in a browser (Chromium), run an arm64 bundle here (qemu), and how busy the machine
 * is now — what a new user wants to know before a long command fails or measures a loaded machine.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadNative } from '../../engine/native.js';
import { findBrowser } from '../../runtime/benchmark-web.js';
import type { Advice } from '../../deploy/doctor.js';

export interface SlimkitTools {
  /** LibTorch as the addon was built against it, or why training is unavailable. */
  training: { ready: true; torch: string; cuda: boolean } | { ready: false; why: string };
  /** The browser `--target web` times models in, or none. */
  browser: string | null;
  /** scripts/qemu-arm64.sh can run an arm64 bundle here (qemu-aarch64-static and an arm64 Node set up). */
  arm64Emulation: boolean;
  /** One-minute load average and the CPUs it is spread over. */
  load: { average: number; cpus: number };
}

export function slimkitTools(): SlimkitTools {
  let training: SlimkitTools['training'];
  try {
    const info = loadNative().info();
    training = { ready: true, torch: info.torchVersion, cuda: info.cuda };
  } catch (e) {
    training = { ready: false, why: e instanceof Error ? e.message : String(e) };
  }
  let browser: string | null = null;
  try {
    browser = findBrowser();
  } catch {
    browser = null;
  }
  return { training, browser, arm64Emulation: os.arch() === 'arm64' || arm64Emulation(), load: { average: os.loadavg()[0]!, cpus: os.availableParallelism() } };
}

/** What scripts/qemu-arm64.sh checks: the emulator, and an arm64 Node of this Node's version in the cache. */
function arm64Emulation(): boolean {
  const dir = process.env['SLIM_ARM64_DIR'] ?? path.join(process.env['XDG_CACHE_HOME'] ?? path.join(os.homedir(), '.cache'), 'slimkit', 'arm64');
  if (!existsSync(path.join(dir, `node-v${process.versions.node}`, 'bin', 'node'))) return false;
  try {
    execFileSync('qemu-aarch64-static', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The tools as lines under the report's versions. */
export function toolLines(t: SlimkitTools): string[] {
  return [
    `training  ${t.training.ready ? `LibTorch ${t.training.torch} (CPU${t.training.cuda ? ' and CUDA' : ''})` : `not available: ${t.training.why}`}`,
    `browser   ${t.browser ?? 'none (slim bench --target web needs Chromium or Chrome: apt install chromium)'}`,
    `arm64     ${t.arm64Emulation ? (os.arch() === 'arm64' ? 'native' : 'runs under qemu: scripts/qemu-arm64.sh BUNDLE/predict.js IMAGE') : 'not set up here (scripts/setup-arm64.sh: qemu and an arm64 Node from the npm registry, to try an arm64 bundle before copying it)'}`,
  ];
}

/** Advice from the tools: a busy machine measures slow. */
export function toolAdvice(t: SlimkitTools): Advice[] {
  const busy = t.load.average / t.load.cpus;
  return busy > 0.5
    ? [{ level: 'warn', text: `the machine is busy now (load average ${t.load.average.toFixed(2)} on ${t.load.cpus} CPUs): latencies measured now (slim bench) will be slower than on a quiet machine, and training slower — measure when it is idle, or compare models in one slim bench run (they take turns)` }]
    : [];
}

export function toolsJson(t: SlimkitTools): Record<string, unknown> {
  return {
    training: t.training.ready ? { ready: true, torch: t.training.torch, cuda: t.training.cuda } : { ready: false, why: t.training.why },
    browser: t.browser,
    arm64_emulation: t.arm64Emulation,
    load: { average_1min: t.load.average, cpus: t.load.cpus },
  };
}

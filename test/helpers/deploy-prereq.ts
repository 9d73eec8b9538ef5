/**
 * Prerequisites of the arm64 and browser tests. They are installed by scripts/setup.sh (Debian
 * packages) and scripts/setup-arm64.sh; a test skips — with the reason printed — only when they are
 * missing and cannot be installed (not root). In CI (CI=true) a missing prerequisite is a failure.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './fixtures.js';

const run = promisify(execFile);

export interface Prereq {
  ok: boolean;
  reason?: string;
}

/** Decides skip vs. fail for a missing prerequisite. */
export function gate(name: string, p: Prereq): boolean {
  if (p.ok) return true;
  const message = `${name}: ${p.reason}`;
  if (process.env.CI) throw new Error(`${message} (required in CI: scripts/setup.sh installs it)`);
  console.warn(`skipping — ${message}`);
  return false;
}

/** Runs scripts/setup-arm64.sh (idempotent: installs what is missing when root, fetches arm64 node once). */
export async function arm64Ready(): Promise<Prereq> {
  try {
    await run('bash', [path.join(REPO_ROOT, 'scripts/setup-arm64.sh')], { timeout: 300_000 });
    return { ok: true };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { ok: false, reason: `scripts/setup-arm64.sh failed (exit ${err.code}): ${(err.stderr ?? '').trim().split('\n').pop()}` };
  }
}

export const CHROMIUM = '/usr/bin/chromium';

export function chromiumReady(): Prereq {
  return existsSync(CHROMIUM) ? { ok: true } : { ok: false, reason: `${CHROMIUM} is missing (Debian package chromium; scripts/setup.sh installs it as root)` };
}

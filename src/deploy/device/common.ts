/**
 * What the bundle's commands share: where the bundle is (the folder of the running script), numeric
 * flags/env parsing, and error printing in slimkit's one-line form.
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { SlimError } from '../../errors.js';

/** The bundle folder, from an entry script's import.meta.url (entry scripts sit at its top). */
export function bundleDir(entryUrl: string): string {
  return path.dirname(fileURLToPath(entryUrl));
}

/**
 * Native modules must match this machine: a bundle installed with --install for linux-arm64 and copied
 * to an x86 box (or the reverse) would otherwise fail deep inside sharp. Checked before loading them.
 */
export function checkNativeModules(dir: string): void {
  const img = path.join(dir, 'node_modules', '@img');
  if (!existsSync(path.join(dir, 'node_modules'))) {
    throw new SlimError({ file: dir, problem: 'has no node_modules (the dependencies are not installed)', fix: 'run `sh install.sh` in the bundle folder' });
  }
  if (process.arch !== 'arm64' && process.arch !== 'x64') {
    throw new SlimError({
      file: dir,
      problem: `this Node.js is built for ${process.arch}; bundles run on 64-bit Node (arm64 or x64), for which onnxruntime-node ships binaries`,
      fix: 'install a 64-bit OS and Node (32-bit Raspberry Pi OS has 32-bit Node even on a 64-bit kernel)',
    });
  }
  const here = `sharp-linux-${process.arch}`;
  const present = existsSync(img) ? readdirSync(img).filter((n) => /^sharp-linux-(arm64|x64)$/.test(n)) : [];
  if (present.length > 0 && !present.includes(here)) {
    throw new SlimError({
      file: path.join(dir, 'node_modules'),
      problem: `holds native modules for ${present.map((n) => n.replace('sharp-', '')).join(', ')}, but this machine is linux-${process.arch}`,
      fix: 'delete node_modules and run `sh install.sh` on this machine',
    });
  }
}

/** A whole number ≥ min from a flag or environment variable, or the fallback. */
export function intSetting(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new SlimError({ where: name, problem: `must be a whole number ≥ ${min}, got '${raw}'` }, 'usage');
  return n;
}

/** Runs a command's main: SlimErrors print one line and exit 1 (input) or 2 (usage). */
export function runMain(program: string, main: () => Promise<number | void>): void {
  main().then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (e: unknown) => {
      if (e instanceof SlimError) {
        process.stderr.write(`${program}: ${e.message}\n`);
        process.exitCode = e.exitCode;
      } else {
        process.stderr.write(`${program}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
        process.exitCode = 1;
      }
    },
  );
}

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
  // An --install bundle keeps only its target's ONNX Runtime binary.
  const ortLinux = path.join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux');
  const ortPresent = existsSync(ortLinux) ? readdirSync(ortLinux).filter((n) => n === 'arm64' || n === 'x64') : [];
  const wrong = [
    ...(present.length > 0 && !present.includes(here) ? present.map((n) => n.replace('sharp-', '')) : []),
    ...(ortPresent.length > 0 && !ortPresent.includes(process.arch) ? ortPresent.map((a) => `linux-${a}`) : []),
  ];
  if (wrong.length > 0) {
    throw new SlimError({
      file: path.join(dir, 'node_modules'),
      problem: `holds native modules for ${[...new Set(wrong)].join(', ')}, but this machine is linux-${process.arch}`,
      fix: 'delete node_modules and run `sh install.sh` on this machine',
    });
  }
}

/** A whole number ≥ min from a flag or environment variable, or the fallback. */
export function intSetting(name: string, raw: string | undefined, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new SlimError({ where: name, problem: `must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`}, got '${raw}'` }, 'usage');
  }
  return n;
}

/**
 * A bundle command's entry: --help without loading anything; else the native-module check (when asked)
 * and then the command's main, loaded by a dynamic import so ONNX Runtime and sharp load only after it.
 */
export function launch(program: string, help: string | undefined, main: () => Promise<number | void>, options: { checkNative?: string } = {}): void {
  runMain(program, async () => {
    const args = process.argv.slice(2);
    if (help !== undefined && (args.includes('--help') || args.includes('-h'))) {
      process.stdout.write(`${help}\n`);
      return 0;
    }
    if (options.checkNative !== undefined) checkNativeModules(options.checkNative);
    return main();
  });
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

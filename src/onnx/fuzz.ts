/**
 * Seeded corruption of model files, shared by test/onnx-fuzz.test.ts and bench/fuzz-info.ts. Each
 * corruption is one of the ways files really get damaged: flipped bits, overwritten or lost ranges
 * (bad sectors, partial copies), truncation (interrupted downloads), stray or repeated chunks.
 */
import { SlimError } from '../errors.js';
import { Random } from '../util/random.js';
import { decodeModel } from './io.js';
import { validateGraph } from './validate.js';

export const CORRUPTION_KINDS = [
  'bit-flip',
  'overwrite',
  'truncate',
  'insert',
  'delete',
  'zero-header',
  'duplicate-chunk',
] as const;

export type CorruptionKind = (typeof CORRUPTION_KINDS)[number];

export interface Corruption {
  kind: CorruptionKind;
  /** What was done, e.g. "truncate at 8123 of 15884". */
  description: string;
  bytes: Uint8Array;
}

function randomBytes(rng: Random, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.int(256);
  return out;
}

/** A real copy (Buffer#slice would return a view and corrupt the caller's bytes). */
function copy(src: Uint8Array, start = 0, end = src.length): Uint8Array {
  return Uint8Array.prototype.slice.call(src, start, end);
}

function splice(src: Uint8Array, at: number, remove: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length - remove + insert.length);
  out.set(src.subarray(0, at), 0);
  out.set(insert, at);
  out.set(src.subarray(at + remove), at + insert.length);
  return out;
}

/** Apply one corruption of `kind` to a copy of `src` (which must be non-empty). */
export function corrupt(src: Uint8Array, rng: Random, kind: CorruptionKind): Corruption {
  const n = src.length;
  if (n === 0) throw new RangeError('corrupt() needs a non-empty input');
  const at = rng.int(n);
  switch (kind) {
    case 'bit-flip': {
      const bytes = copy(src);
      const flips = 1 + rng.int(8);
      const where: number[] = [];
      for (let i = 0; i < flips; i++) {
        const p = rng.int(n);
        bytes[p]! ^= 1 << rng.int(8);
        where.push(p);
      }
      return { kind, description: `flip ${flips} bit(s) at ${where.join(', ')}`, bytes };
    }
    case 'overwrite': {
      const len = Math.min(1 + rng.int(64), n - at);
      const bytes = copy(src);
      bytes.set(randomBytes(rng, len), at);
      return { kind, description: `overwrite ${len} byte(s) at ${at}`, bytes };
    }
    case 'truncate':
      return { kind, description: `truncate at ${at} of ${n}`, bytes: copy(src, 0, at) };
    case 'insert': {
      const len = 1 + rng.int(32);
      return { kind, description: `insert ${len} byte(s) at ${at}`, bytes: splice(src, at, 0, randomBytes(rng, len)) };
    }
    case 'delete': {
      const len = Math.min(1 + rng.int(64), n - at);
      return { kind, description: `delete ${len} byte(s) at ${at}`, bytes: splice(src, at, len, new Uint8Array()) };
    }
    case 'zero-header': {
      const len = Math.min(1 + rng.int(64), n);
      const bytes = copy(src);
      bytes.fill(0, 0, len);
      return { kind, description: `zero the first ${len} byte(s)`, bytes };
    }
    case 'duplicate-chunk': {
      const len = Math.min(1 + rng.int(256), n - at);
      const to = rng.int(n + 1);
      return {
        kind,
        description: `copy ${len} byte(s) from ${at} to ${to}`,
        bytes: splice(src, to, 0, copy(src, at, at + len)),
      };
    }
  }
}

/** `count` corruptions of `src`, cycling through every kind, reproducible from `seed`. */
export function* corruptions(src: Uint8Array, options: { seed: number; count: number }): Generator<Corruption> {
  const rng = new Random(options.seed);
  for (let i = 0; i < options.count; i++) {
    yield corrupt(src, rng, CORRUPTION_KINDS[i % CORRUPTION_KINDS.length]!);
  }
}

export type LoadOutcome =
  | { outcome: 'loaded' }
  /** A SlimError: what the CLI prints. */
  | { outcome: 'error'; message: string }
  /** Anything else escaped: a slimkit bug. */
  | { outcome: 'crash'; message: string };

/** Decode and validate `bytes` the way `slim info` does, and say how it ended. */
export function tryLoad(bytes: Uint8Array, file = 'corrupt.onnx'): LoadOutcome {
  try {
    validateGraph(decodeModel(bytes, { file }), { file });
    return { outcome: 'loaded' };
  } catch (e) {
    if (e instanceof SlimError) return { outcome: 'error', message: e.message };
    return { outcome: 'crash', message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
}

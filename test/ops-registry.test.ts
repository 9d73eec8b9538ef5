import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { ConvAttrs } from '../src/ops/conv.js';
import type { ReshapeAttrs } from '../src/ops/reshape.js';
import type { OpDef } from '../src/ops/op-def.js';
import { isKnownOp, opDefFor, OPS, type AttrsOf } from '../src/ops/registry.js';

const opsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'ops');
/** Files in src/ops that are infrastructure, not op modules. */
const NOT_OPS = new Set(['registry.ts', 'op-def.ts', 'attrs.ts']);

function isOpDef(value: unknown): value is OpDef<unknown> {
  const v = value as Partial<OpDef<unknown>> | null;
  return typeof v === 'object' && v !== null && typeof v.opType === 'string' && typeof v.inferTypes === 'function';
}

describe('op registry', () => {
  const files = readdirSync(opsDir).filter((f) => f.endsWith('.ts') && !NOT_OPS.has(f));

  it('finds the op modules', () => {
    expect(files.length).toBeGreaterThanOrEqual(38);
  });

  it.each(files)('%s exports exactly one OpDef, and it is registered under its op type', async (file) => {
    const module = (await import(join(opsDir, file))) as Record<string, unknown>;
    const defs = Object.values(module).filter(isOpDef);
    expect(defs).toHaveLength(1);
    const def = defs[0]!;
    expect(Object.hasOwn(OPS, def.opType)).toBe(true);
    expect(OPS[def.opType as keyof typeof OPS]).toBe(def);
  });

  it('keys every entry by its own op type, in the default domain', () => {
    for (const [key, def] of Object.entries(OPS)) {
      expect(def.opType).toBe(key);
      expect(def.domain).toBe('');
      const [minIn, maxIn] = def.inputCount;
      const [minOut, maxOut] = def.outputCount;
      expect(minIn).toBeLessThanOrEqual(maxIn);
      expect(minOut).toBeLessThanOrEqual(maxOut);
      expect(def.summary.length).toBeGreaterThan(0);
    }
  });

  it('looks ops up by type and domain', () => {
    expect(opDefFor({ opType: 'Conv', domain: '' })).toBe(OPS.Conv);
    expect(opDefFor({ opType: 'Conv', domain: 'ai.onnx' })).toBe(OPS.Conv);
    expect(opDefFor({ opType: 'Conv', domain: 'com.microsoft' })).toBeUndefined();
    expect(opDefFor({ opType: 'LSTM', domain: '' })).toBeUndefined();
    expect(isKnownOp('toString')).toBe(false);
  });
});

describe('registry types', () => {
  it('keeps each op type\'s attributes typed (checked by tsc)', () => {
    expectTypeOf<AttrsOf<'Conv'>>().toEqualTypeOf<ConvAttrs>();
    expectTypeOf<AttrsOf<'Reshape'>>().toEqualTypeOf<ReshapeAttrs>();
    expectTypeOf(OPS.Gemm.parseAttrs).returns.toEqualTypeOf<{ alpha: number; beta: number; transA: boolean; transB: boolean }>();
    // And at run time, parseAttrs fills the ONNX defaults.
    const node = { name: 'n', opType: 'Gemm', domain: '', inputs: [], outputs: [], attributes: {} };
    expect(OPS.Gemm.parseAttrs(node, 17)).toEqual({ alpha: 1, beta: 1, transA: false, transB: false });
  });
});

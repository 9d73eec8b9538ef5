import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SlimError } from '../src/errors.js';
import { readCheckpoint, writeCheckpoint } from '../src/engine/checkpoint.js';
import { batchOf, planEpoch } from '../src/engine/epoch.js';

const dir = mkdtempSync(path.join(tmpdir(), 'slim-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkpoint files', () => {
  it('round-trip weights, optimizer state and metadata exactly', async () => {
    const file = path.join(dir, 'a.ckpt');
    const weights = new Map([
      ['conv.weight', Float32Array.of(1.5, -2, Number.MIN_VALUE, 3.4e38)],
      ['bn.running_var', Float32Array.of(0.25)],
    ]);
    const optimizer = { steps: 17, first: [Float32Array.of(0.1, 0.2, 0.3, 0.4), Float32Array.of(9)], second: [] };
    await writeCheckpoint(file, { meta: { epoch: 3, note: 'ü' }, weights, optimizer });
    const back = await readCheckpoint<{ epoch: number; note: string }>(file);
    expect(back.meta).toEqual({ epoch: 3, note: 'ü' });
    expect([...back.weights.keys()]).toEqual(['conv.weight', 'bn.running_var']);
    expect(Array.from(back.weights.get('conv.weight')!)).toEqual(Array.from(weights.get('conv.weight')!));
    expect(back.optimizer.steps).toBe(17);
    expect(back.optimizer.first.map((a) => Array.from(a))).toEqual([Array.from(optimizer.first[0]!), [9]]);
  });

  it('reject files that are not checkpoints, or are cut short, with the file named', async () => {
    const junk = path.join(dir, 'junk.ckpt');
    writeFileSync(junk, 'hello world, not a checkpoint');
    await expect(readCheckpoint(junk)).rejects.toThrow(SlimError);
    await expect(readCheckpoint(junk)).rejects.toThrow(/junk\.ckpt: the file is not a checkpoint/);
    const good = path.join(dir, 'a.ckpt');
    const cut = path.join(dir, 'cut.ckpt');
    const bytes = readFileSync(good);
    writeFileSync(cut, bytes.subarray(0, bytes.length - 8));
    await expect(readCheckpoint(cut)).rejects.toThrow(/is truncated/);
    // Damaged in place (a disk, a copy): the checksum written with the tensors refuses it, NaNs or not.
    const flipped = path.join(dir, 'flipped.ckpt');
    const changed = Buffer.from(bytes);
    changed[changed.length - 3] = changed[changed.length - 3]! ^ 0x10;
    writeFileSync(flipped, changed);
    await expect(readCheckpoint(flipped)).rejects.toThrow(/flipped\.ckpt: it does not match the checksum written with it .* — it is not a slimkit checkpoint, or it is damaged: to start over, delete it \(or give another --checkpoint-dir\) and drop --resume/);
    // So is a changed digit of the header: another epoch would resume at the wrong step.
    const header = Buffer.from(bytes);
    const at = header.indexOf('"epoch":3');
    header[at + '"epoch":'.length] = '4'.charCodeAt(0);
    writeFileSync(flipped, header);
    await expect(readCheckpoint(flipped)).rejects.toThrow(/does not match the checksum written with it/);
    await expect(readCheckpoint(path.join(dir, 'missing.ckpt'))).rejects.toThrow(/cannot read the checkpoint \(ENOENT\)/);
  });
});

describe('epoch plans', () => {
  it('are a pure function of (seed, epoch): a permutation with placements in range', () => {
    const a = planEpoch(100, { seed: 5, epoch: 2, augment: { crop: 4, flip: true } });
    const b = planEpoch(100, { seed: 5, epoch: 2, augment: { crop: 4, flip: true } });
    const c = planEpoch(100, { seed: 5, epoch: 3, augment: { crop: 4, flip: true } });
    expect(Array.from(a.order)).toEqual(Array.from(b.order));
    expect(Array.from(a.placements!)).toEqual(Array.from(b.placements!));
    expect(Array.from(a.order)).not.toEqual(Array.from(c.order));
    expect([...a.order].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    for (let i = 0; i < 100; i++) {
      const [top, left, flip] = a.placements!.subarray(3 * i, 3 * i + 3);
      expect(top! >= 0 && top! <= 8 && left! >= 0 && left! <= 8 && (flip === 0 || flip === 1)).toBe(true);
    }
    const batch = batchOf(a, 2, 16);
    expect(Array.from(batch.indices)).toEqual(Array.from(a.order.subarray(32, 48)));
    expect(batch.aug!.length).toBe(48);
    expect(planEpoch(10, { seed: 1, epoch: 0 }).placements).toBeUndefined();
  });
});

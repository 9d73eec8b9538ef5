import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCifar10 } from '../src/data/cifar10.js';
import type { ImageSet } from '../src/data/types.js';
import { SlimError } from '../src/errors.js';
import { cifarRecords, realCifar10Dir, removeTempDirs, tempDir, writeCifarFolder } from './data-fixtures.js';

afterAll(removeTempDirs);

const realDir = realCifar10Dir();

describe.skipIf(!realDir)('CIFAR-10 on the real binary files', () => {
  const dataDir = realDir!;
  const cacheDir = tempDir('cifar-cache');
  let fullTrain: ImageSet | undefined;

  it('loads 50,000 train images with the known first labels and bytes from the files', async () => {
    const start = performance.now();
    const train = await loadCifar10('train', { dataDir, cacheDir });
    const ms = performance.now() - start;
    fullTrain = train;
    expect(train.name).toBe('cifar10/train');
    expect(train.imageShape).toEqual([3, 32, 32]);
    expect(train.labels.length).toBe(50_000);
    expect(train.pixels.length).toBe(50_000 * 3072);
    expect([...train.labels.subarray(0, 5)]).toEqual([6, 9, 9, 4, 1]);
    expect(counts(train.labels)).toEqual(new Array(10).fill(5000));
    // Image 10,003 is record 3 of data_batch_2: compare a few bytes with the file itself.
    const raw = fs.readFileSync(path.join(dataDir, 'data_batch_2.bin'));
    const record = 3 * 3073;
    expect(train.labels[10_003]).toBe(raw[record]);
    expect(Buffer.from(train.pixels.subarray(10_003 * 3072, 10_004 * 3072)).equals(raw.subarray(record + 1, record + 3073))).toBe(true);
    expect(ms).toBeLessThan(5000); // ~0.5 s here; generous for a loaded CI machine.
  });

  it('loads 10,000 test images, 1,000 per class, with the class names from batches.meta.txt', async () => {
    const test = await loadCifar10('test', { dataDir, cacheDir });
    expect(test.labels.length).toBe(10_000);
    expect([...test.labels.subarray(0, 5)]).toEqual([3, 8, 8, 0, 6]);
    expect(counts(test.labels)).toEqual(new Array(10).fill(1000));
    expect(test.classes).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    const raw = fs.readFileSync(path.join(dataDir, 'test_batch.bin'));
    expect(Buffer.from(test.pixels.subarray(9_999 * 3072)).equals(raw.subarray(9_999 * 3073 + 1))).toBe(true);
  });

  it('limit reads only the first images, across file boundaries', async () => {
    const train = await loadCifar10('train', { dataDir, cacheDir, limit: 10_002 });
    expect(train.labels.length).toBe(10_002);
    const full = fullTrain ?? (await loadCifar10('train', { dataDir, cacheDir }));
    expect(Buffer.from(train.pixels).equals(Buffer.from(full.pixels.subarray(0, 10_002 * 3072)))).toBe(true);
    expect(train.labels).toEqual(full.labels.subarray(0, 10_002));
  });

  it('verify checks the official sha256 once, then trusts the marker in the cache', async () => {
    const cache = tempDir('verify-cache');
    await loadCifar10('test', { dataDir, cacheDir: cache, verify: true });
    const marker = JSON.parse(fs.readFileSync(path.join(cache, 'verified.json'), 'utf8'));
    expect(marker.files[path.resolve(dataDir, 'test_batch.bin')].sha256).toBe('8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b');
    await loadCifar10('train', { dataDir, cacheDir: cache, verify: true, limit: 1 });
    expect(Object.keys(JSON.parse(fs.readFileSync(path.join(cache, 'verified.json'), 'utf8')).files)).toHaveLength(6);
  });

  it('SLIM_DATA_DIR is used when no option is given', async () => {
    const saved = process.env['SLIM_DATA_DIR'];
    process.env['SLIM_DATA_DIR'] = dataDir;
    try {
      const test = await loadCifar10('test', { limit: 3, cacheDir });
      expect([...test.labels]).toEqual([3, 8, 8]);
    } finally {
      if (saved === undefined) delete process.env['SLIM_DATA_DIR'];
      else process.env['SLIM_DATA_DIR'] = saved;
    }
  });
});

describe('CIFAR-10 on small fixtures', () => {
  it('loads a 3-record folder, including one that holds cifar-10-batches-bin/', async () => {
    const root = tempDir('cifar-small');
    writeCifarFolder(path.join(root, 'cifar-10-batches-bin'), 3);
    const train = await loadCifar10('train', { dataDir: root, recordsPerFile: 3 });
    expect(train.labels.length).toBe(15);
    // File f has labels (f + r) % 10 and bytes (7f + 3r + i) & 255.
    expect([...train.labels]).toEqual([0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 6]);
    expect(train.pixels[4 * 3072 + 100]).toBe((7 * 1 + 3 * 1 + 100) & 255);
    expect(train.classes).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8', 'a9']);
    const test = await loadCifar10('test', { dataDir: root, recordsPerFile: 3 });
    expect([...test.labels]).toEqual([5, 6, 7]);
  });

  it('a truncated file is a SlimError naming the file and both sizes', async () => {
    const dir = tempDir('cifar-trunc');
    writeCifarFolder(dir, 3);
    fs.truncateSync(path.join(dir, 'test_batch.bin'), 3 * 3073 - 100);
    const err = await loadCifar10('test', { dataDir: dir, recordsPerFile: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlimError);
    expect((err as SlimError).exitCode).toBe(1);
    expect((err as Error).message).toBe(
      `${path.join(dir, 'test_batch.bin')}: size is 9,119 bytes, expected 9,219 (3 records of 3073 bytes) — the file is truncated or not from the CIFAR-10 binary version; extract it again from cifar-10-binary.tar.gz`,
    );
    // With the default record count, the official size is expected.
    await expect(loadCifar10('train', { dataDir: dir })).rejects.toThrow(/expected 30,730,000 \(10,000 records of 3073 bytes\)/);
  });

  it('a label ≥ 10 names the file and record', async () => {
    const dir = tempDir('cifar-label');
    writeCifarFolder(dir, 3);
    const bytes = cifarRecords(3, 5);
    bytes[2 * 3073] = 42;
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), bytes);
    await expect(loadCifar10('test', { dataDir: dir, recordsPerFile: 3 })).rejects.toThrow(/test_batch\.bin: record 2: label is 42, must be 0–9/);
  });

  it('verify rejects files that are not the official ones', async () => {
    const dir = tempDir('cifar-verify');
    writeCifarFolder(dir, 3);
    await expect(loadCifar10('test', { dataDir: dir, recordsPerFile: 3, verify: true, cacheDir: tempDir('c') })).rejects.toThrow(
      /test_batch\.bin: sha256 is [0-9a-f]{64}, expected 8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b/,
    );
  });

  it('the verified marker is trusted while size and mtime match, and re-checked after a change', async () => {
    const dir = tempDir('cifar-marker');
    writeCifarFolder(dir, 3);
    const cacheDir = tempDir('c');
    const file = path.join(dir, 'test_batch.bin');
    const stat = fs.statSync(file);
    // A marker claiming the official hash: trusted without hashing (the fixture's real hash differs).
    const official = '8e2eb146ae340b09e24670f29cabc6326dba54da8789dab6768acf480273f65b';
    const marker = { version: 1, files: { [file]: { size: stat.size, mtimeMs: stat.mtimeMs, sha256: official } } };
    fs.writeFileSync(path.join(cacheDir, 'verified.json'), JSON.stringify(marker));
    await expect(loadCifar10('test', { dataDir: dir, recordsPerFile: 3, verify: true, cacheDir })).resolves.toBeDefined();
    fs.utimesSync(file, new Date(), new Date(stat.mtimeMs + 5000));
    await expect(loadCifar10('test', { dataDir: dir, recordsPerFile: 3, verify: true, cacheDir })).rejects.toThrow(/sha256 is/);
  });

  it('a data dir without the files says which are missing and what to do', async () => {
    const dir = tempDir('cifar-empty');
    fs.writeFileSync(path.join(dir, 'test_batch.bin'), '');
    const err = await loadCifar10('test', { dataDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlimError);
    // Named as a program passes it (the CLI says --data-dir).
    expect((err as Error).message).toMatch(/: dataDir: missing CIFAR-10 binary files data_batch_1\.bin, .*data_batch_5\.bin — point dataDir at the folder/);
  });
});

function counts(labels: Uint16Array): number[] {
  const out = new Array<number>(10).fill(0);
  for (const l of labels) out[l]!++;
  return out;
}

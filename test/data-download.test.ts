import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile } from '../src/data/checksum.js';
import { loadCifar10 } from '../src/data/cifar10.js';
import { downloadCifar10, extractCifar10Archive } from '../src/data/download.js';
import { readTar } from '../src/data/tar.js';
import { SlimError } from '../src/errors.js';
import { cifarRecords, makeTar, removeTempDirs, tempDir, writeTarGz } from './data-fixtures.js';

afterAll(removeTempDirs);

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('hex');

/** Feeds bytes in awkward chunk sizes, so headers and data straddle chunk boundaries. */
async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function entries(bytes: Uint8Array, chunk = 777) {
  const out = [];
  for await (const e of readTar(chunked(bytes, chunk))) out.push({ name: e.name, type: e.type, text: Buffer.from(e.data).toString() });
  return out;
}

/** Runs `fn` with SLIM_DATA_DIR unset (the cache path is what is tested), restoring it after. */
async function withoutDataDirEnv(fn: () => Promise<void>): Promise<void> {
  const saved = process.env['SLIM_DATA_DIR'];
  delete process.env['SLIM_DATA_DIR'];
  try {
    await fn();
  } finally {
    if (saved !== undefined) process.env['SLIM_DATA_DIR'] = saved;
  }
}

describe('tar reader', () => {
  it('reads files, folders, pax long names and symlinks across chunk boundaries', async () => {
    const long = `dir/${'x'.repeat(150)}.txt`;
    const tar = makeTar([
      { name: 'dir/', type: '5' },
      { name: 'dir/a.txt', data: 'hello' },
      { name: 'dir/empty.txt', data: '' },
      { name: long, data: 'long', pax: true },
      { name: 'dir/link', type: '2' },
      { name: 'dir/b.bin', data: 'y'.repeat(1000) },
    ]);
    for (const chunk of [1, 511, 777, 1 << 16]) {
      expect(await entries(tar, chunk)).toEqual([
        { name: 'dir/', type: 'directory', text: '' },
        { name: 'dir/a.txt', type: 'file', text: 'hello' },
        { name: 'dir/empty.txt', type: 'file', text: '' },
        { name: long, type: 'file', text: 'long' },
        { name: 'dir/link', type: 'symlink', text: '' },
        { name: 'dir/b.bin', type: 'file', text: 'y'.repeat(1000) },
      ]);
    }
  });

  const hasTar = (() => {
    try {
      execFileSync('tar', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasTar)('reads archives made by GNU tar (gnu long names, ustar prefixes, pax)', async () => {
    const dir = tempDir('gnutar');
    const deep = path.join('a'.repeat(60), 'b'.repeat(60));
    const leaf = `${'c'.repeat(90)}.txt`; // Path > 100 bytes: needs a long-name header or the ustar prefix field.
    fs.mkdirSync(path.join(dir, 'src', deep), { recursive: true });
    fs.writeFileSync(path.join(dir, 'src', deep, leaf), 'deep');
    fs.writeFileSync(path.join(dir, 'src', 'small.txt'), 'small');
    for (const format of ['gnu', 'ustar', 'pax']) {
      const tar = path.join(dir, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', tar, '-C', path.join(dir, 'src'), '.']);
      const files = (await entries(fs.readFileSync(tar))).filter((e) => e.type === 'file');
      expect(files.map((f) => [f.name, f.text]).sort()).toEqual([
        [`./${deep}/${leaf}`, 'deep'],
        ['./small.txt', 'small'],
      ]);
    }
  });

  it('rejects a corrupt header and a truncated archive', async () => {
    const tar = makeTar([{ name: 'a.txt', data: 'x'.repeat(600) }]);
    const corrupt = Uint8Array.from(tar);
    corrupt[10] = 65;
    await expect(entries(corrupt)).rejects.toThrow(/checksum/);
    await expect(entries(tar.subarray(0, 700))).rejects.toThrow(/ends early/);
  });
});

describe('CIFAR-10 archive extraction and checksums', () => {
  const dir = tempDir('download');
  const batch = cifarRecords(3, 4);

  it('extracts only regular files directly under cifar-10-batches-bin/', async () => {
    const archive = path.join(dir, 'ok.tar.gz');
    writeTarGz(archive, [
      { name: 'cifar-10-batches-bin/', type: '5' },
      { name: 'cifar-10-batches-bin/test_batch.bin', data: batch },
      { name: 'cifar-10-batches-bin/batches.meta.txt', data: 'a\nb\n' },
      { name: 'cifar-10-batches-bin/sub/nested.bin', data: 'no' },
      { name: 'other/readme', data: 'no' },
      { name: 'cifar-10-batches-bin/link', type: '2' },
    ]);
    const dest = path.join(dir, 'out');
    expect(await extractCifar10Archive({ archive, dest })).toEqual(['test_batch.bin', 'batches.meta.txt']);
    expect(fs.readdirSync(dest).sort()).toEqual(['batches.meta.txt', 'test_batch.bin']);
    expect(await hashFile(path.join(dest, 'test_batch.bin'))).toBe(sha256(batch));
  });

  it('refuses path traversal', async () => {
    for (const name of ['cifar-10-batches-bin/../../evil.bin', '/etc/evil.bin', 'cifar-10-batches-bin\\..\\..\\evil.bin']) {
      const archive = path.join(dir, 'evil.tar.gz');
      writeTarGz(archive, [{ name, data: 'x' }]);
      const err = await extractCifar10Archive({ archive, dest: path.join(dir, 'evil') }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlimError);
      expect((err as Error).message).toMatch(/path traversal/);
    }
    expect(fs.existsSync(path.join(dir, 'evil.bin'))).toBe(false);
  });

  it('reports a file that is not gzip', async () => {
    const archive = path.join(dir, 'garbage.tar.gz');
    fs.writeFileSync(archive, 'not gzip at all');
    await expect(extractCifar10Archive({ archive, dest: path.join(dir, 'g') })).rejects.toThrow(/garbage\.tar\.gz: cannot decompress/);
  });

  it('hashes files in chunks (md5 and sha256 of 3 MB)', async () => {
    const big = new Uint8Array(3 << 20).map((_, i) => (i * 31) & 255);
    fs.writeFileSync(path.join(dir, 'big'), big);
    expect(await hashFile(path.join(dir, 'big'))).toBe(sha256(big));
    expect(await hashFile(path.join(dir, 'big'), 'md5')).toBe(md5(big));
  });
});

describe('downloadCifar10 from a local server', () => {
  const files: Record<string, Uint8Array> = {};
  ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'].forEach(
    (name, i) => (files[name] = cifarRecords(3, i)),
  );
  const archive = Buffer.from(
    (() => {
      const members = Object.entries(files).map(([name, data]) => ({ name: `cifar-10-batches-bin/${name}`, data }));
      const tmp = path.join(tempDir('archive'), 'a.tar.gz');
      writeTarGz(tmp, [...members, { name: 'cifar-10-batches-bin/batches.meta.txt', data: 'c0\nc1\nc2\nc3\nc4\nc5\nc6\nc7\nc8\nc9\n' }]);
      return fs.readFileSync(tmp);
    })(),
  );
  const sha = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, sha256(v)]));
  let server: http.Server;
  let base = '';
  let archiveRequests = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/stall') {
        res.writeHead(200, { 'content-length': 100 });
        res.write('abc'); // …and nothing more.
      } else if (req.url === '/cifar.tar.gz') {
        archiveRequests++;
        res.writeHead(200, { 'content-length': archive.length });
        // Two writes with a pause, so the client sees more than one chunk.
        res.write(archive.subarray(0, archive.length >> 1));
        setTimeout(() => res.end(archive.subarray(archive.length >> 1)), 30);
      } else {
        res.writeHead(404, 'Not Found').end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  afterAll(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );

  it('streams with progress, checks md5 + sha256, and moves the folder into place', async () => {
    const cacheDir = tempDir('cache');
    const progress: number[] = [];
    const dir = await downloadCifar10({
      cacheDir,
      url: `${base}/cifar.tar.gz`,
      md5: md5(archive),
      sha256: sha,
      onProgress: (p) => {
        expect(p.total).toBe(archive.length);
        progress.push(p.received);
      },
    });
    expect(dir).toBe(path.join(cacheDir, 'cifar10'));
    expect(progress.at(-1)).toBe(archive.length);
    expect(progress.length).toBeGreaterThan(1);
    expect(fs.readdirSync(cacheDir).sort()).toEqual(['cifar10', 'verified.json']); // No temp files left.
    const set = await loadCifar10('test', { dataDir: dir, recordsPerFile: 3, cacheDir });
    expect(set.classes[9]).toBe('c9');
    expect([...set.labels]).toEqual([5, 6, 7]);
  });

  it('loadCifar10 downloads into the cache when no data dir is given', async () => {
    const cacheDir = tempDir('cache');
    await withoutDataDirEnv(async () => {
      // The fake archive fails the official md5: the error proves the download path was taken.
      await expect(loadCifar10('test', { cacheDir, downloadUrl: `${base}/cifar.tar.gz` })).rejects.toThrow(
        new RegExp(`md5 is ${md5(archive)}, expected c32a1d4ab5d03f1284b67883e8d87530`),
      );
      expect(fs.readdirSync(cacheDir)).toEqual([]);
    });
  });

  it('with download: false (slim run --plan) a missing cache is an error that says what to do, and nothing is fetched', async () => {
    const cacheDir = tempDir('cache');
    const before = archiveRequests;
    await withoutDataDirEnv(async () => {
      const e = await loadCifar10('test', { cacheDir, downloadUrl: `${base}/cifar.tar.gz`, download: false }).then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(SlimError);
      expect((e as SlimError).message).toMatch(/cifar10: CIFAR-10 is not here, and this command does not download it \(170 MB\) — pass --data-dir DIR or set SLIM_DATA_DIR/);
      expect(archiveRequests - before).toBe(0);
    });
  });

  it('loading both splits at once downloads once', async () => {
    const cacheDir = tempDir('cache');
    const before = archiveRequests;
    await withoutDataDirEnv(async () => {
      const both = await Promise.allSettled(['train', 'test'].map((split) => loadCifar10(split as 'train' | 'test', { cacheDir, downloadUrl: `${base}/cifar.tar.gz` })));
      // The fake archive fails the official md5; what matters is that one request served both.
      expect(both.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect(archiveRequests - before).toBe(1);
    });
  });

  it('removes the temp files of downloads whose process died, keeps a live one\'s', async () => {
    const cacheDir = tempDir('cache');
    const dead = 'cifar-10-binary.tar.gz.999999999-1.partial'; // beyond any pid_max
    const deadStaging = '.cifar10.999999999-1.partial';
    const live = `cifar-10-binary.tar.gz.${process.pid}-1.partial`;
    fs.writeFileSync(path.join(cacheDir, dead), 'x');
    fs.mkdirSync(path.join(cacheDir, deadStaging));
    fs.writeFileSync(path.join(cacheDir, live), 'x');
    await downloadCifar10({ cacheDir, url: `${base}/cifar.tar.gz`, md5: md5(archive), sha256: sha });
    expect(fs.readdirSync(cacheDir).sort()).toEqual([live, 'cifar10', 'verified.json']);
  });

  it('rejects a member whose sha256 differs', async () => {
    const cacheDir = tempDir('cache');
    const bad = { ...sha, 'test_batch.bin': '0'.repeat(64) };
    await expect(downloadCifar10({ cacheDir, url: `${base}/cifar.tar.gz`, md5: md5(archive), sha256: bad })).rejects.toThrow(
      /test_batch\.bin: sha256 is [0-9a-f]{64}, expected 0{64}/,
    );
    expect(fs.existsSync(path.join(cacheDir, 'cifar10'))).toBe(false);
  });

  it('reports HTTP errors and unreachable hosts with the --data-dir advice', async () => {
    const cacheDir = tempDir('cache');
    await expect(downloadCifar10({ cacheDir, url: `${base}/missing` })).rejects.toThrow(
      `cannot download CIFAR-10 from ${base}/missing (HTTP 404 Not Found) — pass --data-dir DIR or set SLIM_DATA_DIR`,
    );
    // A port that was just free: nothing listens there.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const err = await downloadCifar10({ cacheDir, url: `http://127.0.0.1:${port}/x.tar.gz` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SlimError);
    expect((err as SlimError).exitCode).toBe(1);
    expect((err as Error).message).toMatch(
      new RegExp(`^cannot download CIFAR-10 from http://127\\.0\\.0\\.1:${port}/x\\.tar\\.gz \\(.*ECONNREFUSED.*\\) — pass --data-dir DIR or set SLIM_DATA_DIR to a folder with the official binary files$`),
    );
    expect(fs.readdirSync(cacheDir)).toEqual([]);
  });

  it('an unusable cache folder says to set SLIM_CACHE_DIR', async () => {
    const file = path.join(tempDir('cache'), 'a-file');
    fs.writeFileSync(file, '');
    await expect(downloadCifar10({ cacheDir: path.join(file, 'cache'), url: `${base}/cifar.tar.gz` })).rejects.toThrow(
      /a-file\/cache: cannot create the cache folder \(ENOTDIR\) — set SLIM_CACHE_DIR to a writable folder/,
    );
  });

  it('gives up on a stalled download and leaves no temp file', async () => {
    const cacheDir = tempDir('cache');
    await expect(downloadCifar10({ cacheDir, url: `${base}/stall`, idleTimeoutMs: 200 })).rejects.toThrow(/\(no data for 0\.2 s\) — pass --data-dir DIR/);
    expect(fs.readdirSync(cacheDir)).toEqual([]);
  });
});

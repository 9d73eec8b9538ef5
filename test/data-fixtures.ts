// Helpers for the data tests: small CIFAR-style files and tar.gz archives made in-process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export const REPO = path.resolve(import.meta.dirname, '..');

/** The real CIFAR-10 folder: SLIM_DATA_DIR or ../shared/data/cifar10 next to the repo; undefined if absent. */
export function realCifar10Dir(): string | undefined {
  const dir = process.env['SLIM_DATA_DIR'] ?? path.resolve(REPO, '../shared/data/cifar10');
  return fs.existsSync(path.join(dir, 'test_batch.bin')) ? dir : undefined;
}

const created: string[] = [];

/** A fresh temp folder; each test file calls `afterAll(removeTempDirs)`. */
export function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `slimkit-data-${prefix}-`));
  created.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

/** `records` CIFAR records whose label is (seed + r) % 10 and whose pixel bytes are (seed·7 + r·3 + i) & 255. */
export function cifarRecords(records: number, seed: number): Uint8Array {
  const out = new Uint8Array(records * 3073);
  for (let r = 0; r < records; r++) {
    out[r * 3073] = (seed + r) % 10;
    for (let i = 0; i < 3072; i++) out[r * 3073 + 1 + i] = (seed * 7 + r * 3 + i) & 255;
  }
  return out;
}

/** A folder with the official file names, `records` records each (seed = file index). */
export function writeCifarFolder(dir: string, records: number): void {
  fs.mkdirSync(dir, { recursive: true });
  const names = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
  names.forEach((name, i) => fs.writeFileSync(path.join(dir, name), cifarRecords(records, i)));
  fs.writeFileSync(path.join(dir, 'batches.meta.txt'), 'a0\na1\na2\na3\na4\na5\na6\na7\na8\na9\n\n');
}

export interface TarMember {
  name: string;
  data?: Uint8Array | string;
  /** ustar typeflag: '0' file (default), '5' folder, '2' symlink. */
  type?: string;
  /** Put the name in a pax header (for names over 100 bytes). */
  pax?: boolean;
}

/** A ustar archive, written by hand so the reader is checked against the format, not against itself. */
export function makeTar(members: TarMember[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  const header = (name: string, size: number, type: string): Uint8Array => {
    const h = new Uint8Array(512);
    const put = (text: string, at: number) => h.set(Buffer.from(text, 'utf8'), at);
    put(name.slice(0, 99), 0);
    put('0000644\0', 100);
    put('0000000\0', 108);
    put('0000000\0', 116);
    put(size.toString(8).padStart(11, '0') + '\0', 124);
    put('00000000000\0', 136);
    put('        ', 148);
    put(type, 156);
    put('ustar\0', 257);
    put('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    put(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    return h;
  };
  const pushData = (data: Uint8Array) => {
    blocks.push(data);
    if (data.length % 512) blocks.push(new Uint8Array(512 - (data.length % 512)));
  };
  for (const m of members) {
    const data = typeof m.data === 'string' ? Buffer.from(m.data) : (m.data ?? new Uint8Array(0));
    if (m.pax) {
      const body = ` path=${m.name}\n`;
      let len = body.length;
      len += String(len + String(len).length).length; // The length counts its own digits.
      const record = Buffer.from(`${len}${body}`);
      blocks.push(header('PaxHeader', record.length, 'x'));
      pushData(record);
    }
    blocks.push(header(m.pax ? 'short-name' : m.name, data.length, m.type ?? '0'));
    if (data.length) pushData(data);
  }
  blocks.push(new Uint8Array(1024));
  return Buffer.concat(blocks);
}

export function writeTarGz(file: string, members: TarMember[]): void {
  fs.writeFileSync(file, gzipSync(makeTar(members)));
}

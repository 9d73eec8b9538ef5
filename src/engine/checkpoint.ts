import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { inputError } from '../errors.js';
import { writeFileAtomic } from '../onnx/io.js';
import type { NativeOptimizerState } from './native.js';

/**
 * Training checkpoints: one file holding the weights (parameters and BN statistics), the optimizer
 * state, and the JSON the trainer needs to resume (epoch, step, options, history). Layout:
 * "SLIMCKPT" · u32 format version · u32 header bytes · JSON header · float32 blobs (4-byte aligned).
 * Written with writeFileAtomic, so a kill at any moment leaves the previous checkpoint intact.
 */

const MAGIC = 'SLIMCKPT';
const FORMAT = 1;

export interface Checkpoint<M> {
  /** Trainer data: epoch, step, options, history (JSON-safe). */
  meta: M;
  weights: Map<string, Float32Array>;
  optimizer: NativeOptimizerState;
}

interface BlobRef {
  name: string;
  offset: number;
  length: number;
}

interface Header<M> {
  /**
   * SHA-256 of the whole file with these 64 hex digits read as zeros: a copy damaged later (disk,
   * transfer) is refused instead of resumed — NaNs would read as a diverged run, other values as a
   * different model, a changed digit of the header as another epoch. Always the header's first key, so
   * it is found without parsing; absent in older checkpoints.
   */
  sha256?: string;
  meta: M;
  weights: BlobRef[];
  optimizer: { steps: number; first: BlobRef[]; second: BlobRef[] };
}

const SHA_PREFIX = '{"sha256":"';
const ZEROS = '0'.repeat(64);

/** The file's SHA-256 with its own checksum field read as zeros. */
function fileSha256(bytes: Uint8Array): string {
  const hash = createHash('sha256');
  const at = 16 + SHA_PREFIX.length;
  hash.update(bytes.subarray(0, at)).update(ZEROS).update(bytes.subarray(at + 64));
  return hash.digest('hex');
}

export async function writeCheckpoint<M>(path: string, checkpoint: Checkpoint<M>): Promise<void> {
  const blobs: Float32Array[] = [];
  let offset = 0;
  const add = (name: string, data: Float32Array): BlobRef => {
    blobs.push(data);
    const ref = { name, offset, length: data.length };
    offset += data.byteLength;
    return ref;
  };
  const header: Header<M> = {
    sha256: ZEROS,
    meta: checkpoint.meta,
    weights: [...checkpoint.weights].map(([name, data]) => add(name, data)),
    optimizer: {
      steps: checkpoint.optimizer.steps,
      first: checkpoint.optimizer.first.map((d, i) => add(String(i), d)),
      second: checkpoint.optimizer.second.map((d, i) => add(String(i), d)),
    },
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - ((16 + json.length) % 4)) % 4;
  const start = 16 + json.length + pad;
  const bytes = new Uint8Array(start + offset);
  bytes.set(Buffer.from(MAGIC, 'latin1'), 0);
  const view = new DataView(bytes.buffer);
  view.setUint32(8, FORMAT, true);
  view.setUint32(12, json.length + pad, true);
  bytes.set(json, 16);
  bytes.fill(0x20, 16 + json.length, start); // spaces: the header stays valid JSON
  let at = start;
  for (const blob of blobs) {
    bytes.set(new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength), at);
    at += blob.byteLength;
  }
  bytes.set(Buffer.from(fileSha256(bytes), 'latin1'), 16 + SHA_PREFIX.length);
  await writeFileAtomic(path, bytes);
}

export async function readCheckpoint<M>(path: string): Promise<Checkpoint<M>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw inputError({ file: path, problem: `cannot read the checkpoint (${(e as NodeJS.ErrnoException).code ?? String(e)})`, fix: 'check the --resume path' });
  }
  const bad = (problem: string) => inputError({ file: path, problem, fix: 'it is not a slimkit checkpoint, or it is damaged: to start over, delete it (or give another --checkpoint-dir) and drop --resume' });
  if (bytes.length < 16 || bytes.toString('latin1', 0, 8) !== MAGIC) throw bad('the file is not a checkpoint');
  const format = bytes.readUInt32LE(8);
  if (format !== FORMAT) throw bad(`checkpoint format ${format} is not supported (this slimkit reads ${FORMAT})`);
  const headerBytes = bytes.readUInt32LE(12);
  if (16 + headerBytes > bytes.length) throw bad('the header is truncated');
  let header: Header<M>;
  try {
    header = JSON.parse(bytes.toString('utf8', 16, 16 + headerBytes)) as Header<M>;
  } catch {
    throw bad('the header is not valid JSON');
  }
  const start = 16 + headerBytes;
  const blob = (ref: BlobRef): Float32Array => {
    const from = start + ref.offset;
    if (from + ref.length * 4 > bytes.length) throw bad(`tensor '${ref.name}' is truncated`);
    // Copy into an aligned array: the Buffer's offset need not be a multiple of 4.
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset + from, bytes.byteOffset + from + ref.length * 4));
  };
  const checkpoint = {
    meta: header.meta,
    weights: new Map(header.weights.map((ref) => [ref.name, blob(ref)])),
    optimizer: { steps: header.optimizer.steps, first: header.optimizer.first.map(blob), second: header.optimizer.second.map(blob) },
  };
  if (header.sha256 !== undefined && bytes.toString('latin1', 16, 16 + SHA_PREFIX.length) === SHA_PREFIX && fileSha256(bytes) !== header.sha256) {
    throw bad('it does not match the checksum written with it (the file was changed after it was written)');
  }
  return checkpoint;
}

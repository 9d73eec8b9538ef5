import { existsSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { inputError, option, usageError } from '../errors.js';
import { slimCacheDir } from './cache.js';
import { VerifiedMarker } from './checksum.js';
import {
  CIFAR10_ARCHIVE_FOLDER,
  CIFAR10_CLASSES,
  CIFAR10_IMAGE_SHAPE,
  CIFAR10_META_FILE,
  CIFAR10_RECORD_BYTES,
  CIFAR10_RECORDS_PER_FILE,
  CIFAR10_SHA256,
  CIFAR10_TEST_FILES,
  CIFAR10_TRAIN_FILES,
} from './cifar10-files.js';
import { downloadCifar10, type DownloadProgress } from './download.js';
import type { ImageSet } from './types.js';

export type Cifar10Split = 'train' | 'test';

/** Whether a --data / data.dataset value names CIFAR-10 ('cifar10', 'cifar-10', any case). */
export function isCifar10(name: string): boolean {
  return ['cifar10', 'cifar-10'].includes(name.toLowerCase());
}

export interface LoadCifar10Options {
  /** Folder with the official binary files (or the folder holding `cifar-10-batches-bin/`). */
  dataDir?: string;
  /** What set `dataDir`, for messages: '--data-dir' (the default), or a recipe's 'data.dir'. */
  dataDirSource?: string;
  /** Cache folder for the download and the "verified" marker (see slimCacheDir). */
  cacheDir?: string;
  /** Load only the first `limit` images of the split. */
  limit?: number;
  /** Check each file's sha256 against the official one (remembered per size+mtime in the cache). */
  verify?: boolean;
  /** Records per file; 10,000 in the official release (other values are for small test fixtures). */
  recordsPerFile?: number;
  /** Progress of the download, when one happens. */
  onDownloadProgress?: (progress: DownloadProgress) => void;
  /** Tarball URL (tests point it at a local server). */
  downloadUrl?: string;
  /** false: files missing from the cache are an error naming what to do, not a download. */
  download?: false;
}

/**
 * Loads a CIFAR-10 split from the official binary files into raw N×3×32×32 bytes. The folder is the
 * `dataDir` option, else env SLIM_DATA_DIR, else `<cache>/cifar10`, downloaded there on first use.
 */
export async function loadCifar10(split: Cifar10Split, options: LoadCifar10Options = {}): Promise<ImageSet> {
  if (split !== 'train' && split !== 'test') throw usageError(`unknown CIFAR-10 split "${String(split)}"`, "use 'train' or 'test'");
  const { limit } = options;
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
    throw usageError(`limit must be a whole number ≥ 0, got ${limit}`);
  }
  const cacheDir = slimCacheDir(options.cacheDir);
  const dir = await resolveCifar10Dir({ ...options, cacheDir });
  const files = (split === 'train' ? CIFAR10_TRAIN_FILES : CIFAR10_TEST_FILES).map((f) => path.join(dir, f));
  const recordsPerFile = options.recordsPerFile ?? CIFAR10_RECORDS_PER_FILE;
  if (!(Number.isInteger(recordsPerFile) && recordsPerFile >= 1)) throw usageError(`recordsPerFile must be a whole number ≥ 1, got ${recordsPerFile}`);

  await Promise.all(files.map((file) => checkFileSize(file, recordsPerFile)));
  if (options.verify) await verifyCifar10Files(files, cacheDir);

  const total = Math.min(files.length * recordsPerFile, limit ?? Infinity);
  const imageBytes = CIFAR10_RECORD_BYTES - 1;
  const pixels = new Uint8Array(total * imageBytes);
  const labels = new Uint16Array(total);
  await Promise.all(
    files.map(async (file, f) => {
      const first = f * recordsPerFile;
      const count = Math.min(recordsPerFile, total - first);
      if (count <= 0) return;
      const bytes = await readPrefix(file, count * CIFAR10_RECORD_BYTES);
      for (let r = 0; r < count; r++) {
        const at = r * CIFAR10_RECORD_BYTES;
        const label = bytes[at]!;
        if (label >= 10) {
          throw inputError({
            file,
            where: `record ${r}`,
            problem: `label is ${label}, must be 0–9`,
            fix: 'the file is not CIFAR-10 (CIFAR-100 uses 2 label bytes); use the CIFAR-10 binary version',
          });
        }
        labels[first + r] = label;
        pixels.set(bytes.subarray(at + 1, at + CIFAR10_RECORD_BYTES), (first + r) * imageBytes);
      }
    }),
  );
  return {
    name: `cifar10/${split}`,
    classes: await readClassNames(dir),
    imageShape: [...CIFAR10_IMAGE_SHAPE],
    pixels,
    labels,
  };
}

/**
 * The folder holding the binary files: the option or SLIM_DATA_DIR as given (never downloads into a
 * user's folder), else the cache, downloading when any file is missing there.
 */
export async function resolveCifar10Dir(
  options: Pick<LoadCifar10Options, 'dataDir' | 'dataDirSource' | 'onDownloadProgress' | 'downloadUrl' | 'download'> & { cacheDir: string },
): Promise<string> {
  const given = options.dataDir ?? process.env['SLIM_DATA_DIR'];
  if (given) {
    const source = options.dataDir ? (options.dataDirSource ?? option('--data-dir')) : 'SLIM_DATA_DIR';
    const dir = path.resolve(given);
    // Accept the folder that holds the extracted tarball too.
    const nested = path.join(dir, CIFAR10_ARCHIVE_FOLDER);
    const chosen = missingFiles(dir).length > 0 && missingFiles(nested).length === 0 ? nested : dir;
    const missing = missingFiles(chosen);
    if (missing.length > 0) {
      const fixRest = `point ${source} at the folder with data_batch_1..5.bin and test_batch.bin (from cifar-10-binary.tar.gz), or unset it to download into ${options.cacheDir}`;
      // The usual wrong turns, each named: a path that is not there, the archive itself, CIFAR-10's Python version.
      const info = statSync(dir, { throwIfNoEntry: false });
      if (!info) throw inputError({ file: dir, where: source, problem: 'does not exist', fix: fixRest });
      if (info.isFile()) {
        const archive = /\.(tar\.gz|tgz|tar)$/.test(dir);
        throw inputError({ file: dir, where: source, problem: archive ? 'is the archive: slimkit reads the extracted files' : 'is a file, not a folder', fix: archive ? `extract it (tar xzf ${path.basename(dir)}) and pass the folder it makes, ${CIFAR10_ARCHIVE_FOLDER}/` : fixRest });
      }
      if (existsSync(path.join(chosen, 'data_batch_1')) || existsSync(path.join(dir, 'cifar-10-batches-py'))) {
        throw inputError({ file: chosen, where: source, problem: "holds CIFAR-10's Python version (pickled data_batch_1, …), not the binary one", fix: 'download cifar-10-binary.tar.gz (the binary version) and point it at its extracted folder, or unset it to download into ' + options.cacheDir });
      }
      throw inputError({
        file: chosen,
        where: source,
        problem: `missing CIFAR-10 binary file${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
        fix: `point ${source} at the folder with data_batch_1..5.bin and test_batch.bin (from cifar-10-binary.tar.gz), or unset it to download into ${options.cacheDir}`,
      });
    }
    return chosen;
  }
  const cached = path.join(options.cacheDir, 'cifar10');
  if (missingFiles(cached).length === 0) return cached;
  if (options.download === false) {
    throw inputError({
      file: cached,
      problem: 'CIFAR-10 is not here, and this command does not download it (170 MB)',
      fix: 'pass --data-dir DIR or set SLIM_DATA_DIR to a folder with the binary files, or run a command that loads data first (slim run without --plan downloads it once)',
    });
  }
  // Loading both splits at once must not start two downloads that replace each other's folder.
  let download = downloadsInFlight.get(options.cacheDir);
  if (!download) {
    download = downloadCifar10({
      cacheDir: options.cacheDir,
      ...(options.downloadUrl ? { url: options.downloadUrl } : {}),
      ...(options.onDownloadProgress ? { onProgress: options.onDownloadProgress } : {}),
    }).finally(() => downloadsInFlight.delete(options.cacheDir));
    downloadsInFlight.set(options.cacheDir, download);
  }
  return download;
}

const downloadsInFlight = new Map<string, Promise<string>>();

/** Whether `dir` (or the archive's folder inside it) holds every CIFAR-10 binary file. */
export function holdsCifar10(dir: string): boolean {
  return missingFiles(dir).length === 0 || missingFiles(path.join(dir, CIFAR10_ARCHIVE_FOLDER)).length === 0;
}

function missingFiles(dir: string): string[] {
  return [...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES].filter((f) => !existsSync(path.join(dir, f)));
}

async function checkFileSize(file: string, records: number): Promise<void> {
  const expected = records * CIFAR10_RECORD_BYTES;
  const { size } = await fs.stat(file);
  if (size !== expected) {
    throw inputError({
      file,
      problem: `size is ${size.toLocaleString('en-US')} bytes, expected ${expected.toLocaleString('en-US')} (${records.toLocaleString('en-US')} records of ${CIFAR10_RECORD_BYTES} bytes)`,
      fix: 'the file is truncated or not from the CIFAR-10 binary version; extract it again from cifar-10-binary.tar.gz',
    });
  }
}

/** Checks each file's sha256 against the official value; hashes are remembered in the cache. */
export async function verifyCifar10Files(files: string[], cacheDir: string): Promise<void> {
  const marker = VerifiedMarker.inCache(cacheDir);
  const hashes = await Promise.all(files.map((file) => marker.sha256(file)));
  for (const [i, file] of files.entries()) {
    const expected = CIFAR10_SHA256[path.basename(file)];
    if (hashes[i] !== expected) {
      throw inputError({
        file,
        problem: `sha256 is ${hashes[i]}, expected ${expected ?? '(an official CIFAR-10 file name)'}`,
        fix: 'the file is corrupt or modified; extract it again from the official cifar-10-binary.tar.gz',
      });
    }
  }
  await marker.remember(files, hashes);
}

async function readPrefix(file: string, bytes: number): Promise<Uint8Array> {
  const handle = await fs.open(file, 'r');
  try {
    const out = new Uint8Array(bytes);
    let filled = 0;
    while (filled < bytes) {
      const { bytesRead } = await handle.read(out, filled, bytes - filled, filled);
      if (bytesRead === 0) {
        throw inputError({ file, problem: `file ended after ${filled} bytes while reading ${bytes}`, fix: 'extract it again from cifar-10-binary.tar.gz' });
      }
      filled += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** Class names from batches.meta.txt (one per line), or the official list when the file is absent. */
async function readClassNames(dir: string): Promise<string[]> {
  const file = path.join(dir, CIFAR10_META_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return [...CIFAR10_CLASSES];
  }
  const names = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '');
  if (names.length !== 10) {
    throw inputError({
      file,
      problem: `has ${names.length} class names, expected 10 (one per line)`,
      fix: 'restore it from cifar-10-binary.tar.gz or delete it to use the official names',
    });
  }
  return names;
}

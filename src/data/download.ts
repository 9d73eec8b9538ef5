import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { inputError, SlimError } from '../errors.js';
import { hashFile, VerifiedMarker } from './checksum.js';
import { CIFAR10_ARCHIVE_FOLDER, CIFAR10_MD5, CIFAR10_SHA256, CIFAR10_URL } from './cifar10-files.js';
import { readTar } from './tar.js';
import { processAlive } from '../util/process.js';

export interface DownloadProgress {
  received: number;
  /** From Content-Length; undefined when the server does not say. */
  total: number | undefined;
}

export interface DownloadCifar10Options {
  /** Where the data folder `cifar10/` is created (see slimCacheDir). */
  cacheDir: string;
  url?: string;
  /** md5 of the tarball; the official one by default. */
  md5?: string;
  /** sha256 of each extracted member that must be present; the official ones by default. */
  sha256?: Readonly<Record<string, string>>;
  onProgress?: (progress: DownloadProgress) => void;
  /** Give up when no byte arrives for this long (default 60 s). */
  idleTimeoutMs?: number;
}

/**
 * Downloads the CIFAR-10 binary tarball into `<cacheDir>/cifar10/`, checking the tarball's md5 and
 * each member's sha256, and returns that folder. The tarball is streamed to a temp file; members are
 * extracted into a temp folder that is renamed into place only when complete, so an interrupted run
 * never leaves a half-filled data folder.
 */
export async function downloadCifar10(options: DownloadCifar10Options): Promise<string> {
  const url = options.url ?? CIFAR10_URL;
  const expectedMd5 = options.md5 ?? CIFAR10_MD5;
  const expectedSha = options.sha256 ?? CIFAR10_SHA256;
  const target = path.join(options.cacheDir, 'cifar10');
  await fs.mkdir(options.cacheDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw inputError({
      file: options.cacheDir,
      problem: `cannot create the cache folder (${e.code ?? e.message})`,
      fix: 'set SLIM_CACHE_DIR to a writable folder, or pass --data-dir DIR with the CIFAR-10 binary files',
    });
  });

  await removeAbandonedDownloads(options.cacheDir);
  const tag = `${process.pid}-${Date.now()}`;
  const archive = path.join(options.cacheDir, `cifar-10-binary.tar.gz.${tag}.partial`);
  const staging = path.join(options.cacheDir, `.cifar10.${tag}.partial`);
  try {
    const md5 = await fetchToFile({ url, file: archive, onProgress: options.onProgress, idleTimeoutMs: options.idleTimeoutMs ?? 60_000 });
    if (md5 !== expectedMd5) {
      throw inputError({
        file: url,
        problem: `the download's md5 is ${md5}, expected ${expectedMd5} (corrupted or changed upstream)`,
        fix: 'try again, or pass --data-dir DIR / set SLIM_DATA_DIR to a folder with the official binary files',
      });
    }
    const written = await extractCifar10Archive({ archive, dest: staging });
    const sha = await checkMembers(staging, written, expectedSha, url);
    await moveIntoPlace(staging, target);
    await VerifiedMarker.inCache(options.cacheDir).remember(
      Object.keys(expectedSha).map((name) => path.join(target, name)),
      Object.keys(expectedSha).map((name) => sha[name]!),
    );
    return target;
  } finally {
    await fs.rm(archive, { force: true });
    await fs.rm(staging, { recursive: true, force: true });
  }
}

interface FetchOptions {
  url: string;
  file: string;
  onProgress: ((progress: DownloadProgress) => void) | undefined;
  idleTimeoutMs: number;
}

/** Streams `url` to `file`, returning the md5 of what was written. */
async function fetchToFile({ url, file, onProgress, idleTimeoutMs }: FetchOptions): Promise<string> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const kick = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(new Error(`no data for ${idleTimeoutMs / 1000} s`)), idleTimeoutMs);
  };
  kick();
  try {
    const response = await fetch(url, { signal: abort.signal }).catch((e: unknown) => {
      throw downloadError(url, describeFetchError(e, abort.signal), e);
    });
    if (!response.ok || !response.body) throw downloadError(url, `HTTP ${response.status} ${response.statusText}`.trim());
    const lengthHeader = response.headers.get('content-length');
    const total = lengthHeader ? Number(lengthHeader) : undefined;
    const hash = createHash('md5');
    let received = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        kick();
        hash.update(chunk);
        received += chunk.length;
        onProgress?.({ received, total });
        done(null, chunk);
      },
    });
    const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream<Uint8Array>);
    await pipeline(body, meter, createWriteStream(file)).catch((e: NodeJS.ErrnoException) => {
      // A failing disk is not a failing network: say which one it is.
      if (e.syscall && ['open', 'write', 'close'].includes(e.syscall)) {
        throw inputError({
          file,
          problem: `cannot write the download (${e.code ?? e.message})`,
          fix: 'free some disk space or set SLIM_CACHE_DIR to a writable folder',
        });
      }
      throw downloadError(url, describeFetchError(e, abort.signal), e);
    });
    if (total !== undefined && received !== total) throw downloadError(url, `received ${received} of ${total} bytes`);
    return hash.digest('hex');
  } finally {
    clearTimeout(timer);
  }
}

function describeFetchError(e: unknown, signal: AbortSignal): string {
  if (signal.aborted) return String((signal.reason as Error | undefined)?.message ?? 'timed out');
  // Node's fetch wraps the socket error (ENOTFOUND, ECONNREFUSED, …) in `cause`.
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.message?.includes(cause.code) ? cause.message : `${cause.code}${cause.message ? `: ${cause.message}` : ''}`;
  return e instanceof Error ? e.message : String(e);
}

function downloadError(url: string, reason: string, cause?: unknown): SlimError {
  return new SlimError(
    {
      problem: `cannot download CIFAR-10 from ${url} (${reason})`,
      fix: 'pass --data-dir DIR or set SLIM_DATA_DIR to a folder with the official binary files',
    },
    'input',
    { cause },
  );
}

export interface ExtractOptions {
  /** A .tar.gz holding `cifar-10-batches-bin/<file>` members. */
  archive: string;
  /** Folder the members are written to (created; flat, without the archive folder). */
  dest: string;
}

/**
 * Extracts the regular files directly under `cifar-10-batches-bin/` and returns their names.
 * Anything else (links, devices, other folders) is skipped; a member whose path escapes the archive
 * folder ("..", absolute paths) is refused outright, since only a crafted archive has one.
 */
export async function extractCifar10Archive({ archive, dest }: ExtractOptions): Promise<string[]> {
  await fs.mkdir(dest, { recursive: true });
  const written: string[] = [];
  const gunzip = createReadStream(archive).pipe(createGunzip({ chunkSize: 1 << 20 }));
  try {
    for await (const entry of readTar(gunzip, archive)) {
      const parts = entry.name.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
      if (path.isAbsolute(entry.name) || /^[a-zA-Z]:/.test(entry.name) || parts.includes('..')) {
        throw inputError({
          file: archive,
          where: `member "${entry.name}"`,
          problem: 'the path leaves the extraction folder (path traversal); refusing to extract',
          fix: 'use the official cifar-10-binary.tar.gz',
        });
      }
      if (entry.type !== 'file' || parts.length !== 2 || parts[0] !== CIFAR10_ARCHIVE_FOLDER) continue;
      await fs.writeFile(path.join(dest, parts[1]!), entry.data);
      written.push(parts[1]!);
    }
  } catch (e) {
    gunzip.destroy();
    if (e instanceof SlimError) throw e;
    throw inputError({
      file: archive,
      problem: `cannot decompress (${(e as Error).message})`,
      fix: 'delete it and download it again',
    });
  }
  return written;
}

/** sha256 of every expected member; a missing or different one is an error. */
async function checkMembers(
  dir: string,
  written: string[],
  expected: Readonly<Record<string, string>>,
  source: string,
): Promise<Record<string, string>> {
  const actual: Record<string, string> = {};
  for (const [name, sha] of Object.entries(expected)) {
    if (!written.includes(name)) {
      throw inputError({
        file: source,
        problem: `the archive has no ${CIFAR10_ARCHIVE_FOLDER}/${name}`,
        fix: 'use the official cifar-10-binary.tar.gz',
      });
    }
    actual[name] = await hashFile(path.join(dir, name), 'sha256');
    if (actual[name] !== sha) {
      throw inputError({
        file: source,
        where: name,
        problem: `sha256 is ${actual[name]}, expected ${sha}`,
        fix: 'use the official cifar-10-binary.tar.gz',
      });
    }
  }
  return actual;
}

/**
 * Temp files of downloads whose process is gone (killed by Ctrl-C or a crash, so its `finally` never
 * ran): up to 170 MB each, they would pile up in the cache. A live process's files are left alone.
 */
async function removeAbandonedDownloads(cacheDir: string): Promise<void> {
  const TEMP = /^(?:cifar-10-binary\.tar\.gz\.|\.cifar10\.)(\d+)-\d+\.partial$|^cifar10\.(\d+)\.old$/;
  for (const name of await fs.readdir(cacheDir).catch(() => [] as string[])) {
    const match = TEMP.exec(name);
    const pid = Number(match?.[1] ?? match?.[2]);
    if (match && !processAlive(pid)) await fs.rm(path.join(cacheDir, name), { recursive: true, force: true });
  }
}

/** Renames the finished staging folder to `target`, replacing an incomplete one. */
async function moveIntoPlace(staging: string, target: string): Promise<void> {
  const old = `${target}.${process.pid}.old`;
  await fs.rename(target, old).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  await fs.rename(staging, target);
  await fs.rm(old, { recursive: true, force: true });
}

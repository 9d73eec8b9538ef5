/**
 * Read-only file serving for web bundles. A URL path can only reach regular files below the root:
 * it is decoded once, refused if it holds NUL, backslashes or dot-dot segments, and the real path
 * (symlinks resolved) must still lie inside the real root.
 */
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';

const gzipAsync = promisify(gzipCallback);
import path from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

export type StaticResult = { status: 200; file: string; size: number; mtimeMs: number; type: string } | { status: 400 | 404; reason: string };

/** Where a URL path points under `root`, or why it may not be served. */
export async function resolveStatic(root: string, urlPath: string): Promise<StaticResult> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return { status: 400, reason: 'the path is not valid percent-encoding' };
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return { status: 400, reason: 'the path holds NUL or a backslash' };
  const segments = decoded.split('/').filter((s) => s.length > 0);
  if (segments.some((s) => s === '..' || s === '.')) return { status: 400, reason: 'the path holds "." or ".." segments' };
  if (segments.some((s) => s.startsWith('.'))) return { status: 404, reason: 'hidden files are not served' };
  const realRoot = await realpath(root);
  let file = path.join(realRoot, ...segments);
  let info = await stat(file).catch(() => undefined);
  if (info?.isDirectory()) {
    file = path.join(file, 'index.html');
    info = await stat(file).catch(() => undefined);
  }
  if (!info?.isFile()) return { status: 404, reason: 'no such file' };
  const real = await realpath(file);
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return { status: 404, reason: 'no such file' };
  return { status: 200, file: real, size: info.size, mtimeMs: info.mtimeMs, type: TYPES[path.extname(real).toLowerCase()] ?? 'application/octet-stream' };
}

/**
 * Cross-origin isolation: browsers give SharedArrayBuffer — which onnxruntime-web's WebAssembly threads
 * need — only to pages served with these two. A bundle's page loads nothing from other origins.
 */
export const ISOLATION_HEADERS = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } as const;

/** Types worth compressing: text, and WebAssembly (onnxruntime-web's 13.6 MiB gzips to about a quarter); models too. */
const COMPRESSIBLE = /^(text\/|application\/(json|wasm))/;

/** Files gzipped once per version (size + mtime): a bundle's runtime is compressed once, not per request. */
const gzipped = new Map<string, Promise<Buffer>>();

/** A version tag of the file as it is on disk: a browser revalidates with it and gets 304 while it holds. */
function entityTag(found: Extract<StaticResult, { status: 200 }>): string {
  return `W/"${found.size.toString(16)}-${Math.trunc(found.mtimeMs).toString(16)}"`;
}

/**
 * Sends a resolved file (HEAD: headers only). `no-cache` with an ETag: a browser asks each time and gets
 * 304 when it holds the file (a trial's page re-downloaded the 13.6 MiB runtime on every load); text and
 * WebAssembly go gzipped to a client that accepts it.
 */
export async function sendFile(res: ServerResponse, found: Extract<StaticResult, { status: 200 }>, head: boolean, request: IncomingHttpHeaders = {}): Promise<void> {
  const etag = entityTag(found);
  const common = {
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-cache',
    etag,
    'last-modified': new Date(found.mtimeMs).toUTCString(),
    ...ISOLATION_HEADERS,
  };
  const known = request['if-none-match']?.split(',').map((t) => t.trim());
  // If-Modified-Since counts only without If-None-Match (RFC 9110), at the second HTTP dates carry.
  const since = known ? NaN : Date.parse(String(request['if-modified-since'] ?? ''));
  if ((known && (known.includes(etag) || known.includes('*'))) || Math.floor(found.mtimeMs / 1000) * 1000 <= since) {
    res.writeHead(304, common);
    res.end();
    return;
  }
  const compressible = COMPRESSIBLE.test(found.type) || found.file.endsWith('.onnx');
  const gzip = compressible && /\bgzip\b/.test(String(request['accept-encoding'] ?? ''));
  if (gzip) {
    const key = `${found.file}\0${etag}`;
    let body = gzipped.get(key);
    if (!body) {
      body = readFile(found.file).then((data) => gzipAsync(data, { level: 6 }));
      gzipped.set(key, body);
      body.catch(() => gzipped.delete(key));
    }
    const data = await body.catch(() => undefined);
    if (!data) {
      res.destroy();
      return;
    }
    res.writeHead(200, { 'content-type': found.type, 'content-length': data.length, 'content-encoding': 'gzip', vary: 'accept-encoding', ...common });
    res.end(head ? undefined : data);
    return;
  }
  res.writeHead(200, { 'content-type': found.type, 'content-length': found.size, ...(compressible ? { vary: 'accept-encoding' } : {}), ...common });
  if (head) {
    res.end();
    return;
  }
  const stream = createReadStream(found.file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

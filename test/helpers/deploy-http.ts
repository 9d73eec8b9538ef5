/** Small HTTP client helpers for the server tests (node:http, keep-alive off unless an agent is given). */
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './fixtures.js';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function request(url: string, options: { method?: string; body?: Uint8Array | string; headers?: Record<string, string>; agent?: http.Agent } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        settled = true;
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body.toString()) });
      });
      res.on('error', reject);
    });
    // A server that answers early (a 413) may close while the body is still being written: like curl,
    // read the answer that came before the write failed, and fail only when none arrives.
    req.on('error', (e) => {
      if (!settled) setTimeout(() => (settled ? undefined : reject(e)), 1000);
    });
    req.end(options.body);
  });
}

/**
 * Streams `total` bytes with chunked encoding (no Content-Length) and returns the status the server
 * answered with, even when it closes the connection before the upload ends.
 */
export function uploadChunked(url: string, total: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        settled = true;
        resolve({ status: res.statusCode!, body });
      });
    });
    req.on('error', (e) => {
      if (!settled) setTimeout(() => (settled ? undefined : reject(e)), 1000);
    });
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    let sent = 0;
    const pump = (): void => {
      while (sent < total && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', pump);
          return;
        }
      }
      if (!req.destroyed) req.end();
    };
    pump();
  });
}

export interface ServeProcess {
  child: ChildProcess;
  url: string;
  pid: number;
  stderr(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `slim serve TARGET --port 0 --json ...` (the built CLI) and waits for its listening line. */
export function startServe(target: string, args: string[] = []): Promise<ServeProcess> {
  return startListening(process.execPath, [path.join(REPO_ROOT, 'bin/slim.js'), 'serve', target, '--port', '0', '--json', ...args], (line) => {
    try {
      return (JSON.parse(line) as { url?: string }).url;
    } catch {
      return undefined;
    }
  });
}

/** Spawns a server and resolves once `parseUrl` finds its URL in a stdout or stderr line. */
export function startListening(cmd: string, args: string[], parseUrl: (line: string) => string | undefined, timeoutMs = 60_000): Promise<ServeProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${err}`)), timeoutMs);
    const scan = (text: string): void => {
      for (const line of text.split('\n')) {
        const url = parseUrl(line.trim()) ?? /listening on (http:\/\/\S+?)(;|\s|$)/.exec(line)?.[1];
        if (url) {
          clearTimeout(timer);
          resolve({
            child,
            url,
            pid: child.pid!,
            stderr: () => err,
            stop: async () => {
              child.kill('SIGTERM');
              return exited;
            },
          });
          return;
        }
      }
    };
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      scan(d.toString());
    });
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      scan(d.toString());
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${err}\n${out}`));
    });
  });
}

/** Resident set size of a process, from /proc (Linux). */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb * 1024;
}

/** Percentile (0..100) of a list, nearest-rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * Image folders decoded on every core. Decoding is libvips (its own threads) and then Pillow's resize in
 * JavaScript (resample.ts), which on one thread held a folder to ~250 images a second at 224×224 and ten
 * a second for 12-megapixel photos. A pool of worker threads — one per usable core, made on first use and
 * kept while there is work (they do not hold the process open) — runs that resize in parallel and leaves
 * the main thread to ONNX Runtime and the command.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { inputError } from '../errors.js';
import { usableCores } from '../util/cpu-quota.js';
import type { ImageChannels, ResizeMode } from './image-folder.js';

export interface DecodeTask {
  id: number;
  file: string;
  size: [number, number];
  mode: ResizeMode;
  channels: ImageChannels;
}

export type DecodeReply = { id: number; pixels: Uint8Array } | { id: number; unreadable: string } | { id: number; failed: string };

/** Running from the sources (tsx, vitest): the thread's module is a .ts file that tsx must load. */
const FROM_SOURCES = import.meta.url.endsWith('.ts');

/** Images each thread is given at once: one decoding in libvips while another is resized. */
const IN_FLIGHT = 2;

interface Thread {
  worker: Worker;
  busy: number;
}

export class DecodePool {
  private readonly threads: Thread[] = [];
  private readonly waiting = new Map<number, { file: string; resolve(pixels: Uint8Array): void; reject(e: Error): void; thread: Thread }>();
  private nextId = 0;

  constructor(readonly size: number) {}

  /** Threads started so far. */
  get started(): number {
    return this.threads.length;
  }

  /** Images the pool decodes at once: what a caller should keep in flight. */
  get concurrency(): number {
    return this.size * IN_FLIGHT;
  }

  decode(file: string, size: [number, number], mode: ResizeMode, channels: ImageChannels): Promise<Uint8Array> {
    const thread = this.leastBusy();
    const id = this.nextId++;
    thread.busy++;
    if (thread.busy === 1) thread.worker.ref();
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { file, resolve, reject, thread });
      thread.worker.postMessage({ id, file, size, mode, channels } satisfies DecodeTask);
    });
  }

  private leastBusy(): Thread {
    if (this.threads.length < this.size && this.threads.every((t) => t.busy > 0)) this.threads.push(this.start());
    return this.threads.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  private start(): Thread {
    const worker = FROM_SOURCES
      ? // The thread registers tsx, then loads the .ts module.
        new Worker(`import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./decode-worker.ts', import.meta.url).href)}); });`, { eval: true })
      : new Worker(new URL('./decode-worker.js', import.meta.url));
    const thread: Thread = { worker, busy: 0 };
    worker.unref();
    worker.on('message', (reply: DecodeReply) => {
      const task = this.waiting.get(reply.id);
      if (!task) return;
      this.waiting.delete(reply.id);
      if (--thread.busy === 0) worker.unref();
      if ('pixels' in reply) task.resolve(reply.pixels);
      else if ('unreadable' in reply) task.reject(inputError({ file: task.file, problem: reply.unreadable, fix: 'replace or delete the file' }));
      else task.reject(new Error(reply.failed));
    });
    // A thread that dies takes its images with it: they fail, and the next image starts a new thread.
    worker.on('error', (e) => this.fail(thread, e));
    worker.on('exit', (code) => this.fail(thread, new Error(`an image decoding thread stopped (exit code ${code})`)));
    return thread;
  }

  private fail(thread: Thread, e: Error): void {
    const at = this.threads.indexOf(thread);
    if (at >= 0) this.threads.splice(at, 1);
    for (const [id, task] of this.waiting) {
      if (task.thread !== thread) continue;
      this.waiting.delete(id);
      task.reject(e);
    }
  }
}

let shared: DecodePool | undefined;

/**
 * The process's pool, sized to its usable cores; undefined where the thread's module is not beside this
 * one (slimkit bundled into one file by esbuild, as for a GPU host): images are then decoded on this thread.
 */
export function decodePool(): DecodePool | undefined {
  if (!FROM_SOURCES && !existsSync(fileURLToPath(new URL('./decode-worker.js', import.meta.url)))) return undefined;
  return (shared ??= new DecodePool(usableCores()));
}

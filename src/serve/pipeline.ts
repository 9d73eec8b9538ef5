/**
 * The bounded path from request to scores. Admission caps the requests held at once (each holds its
 * body), decoding runs a few at a time on sharp's thread pool, and inference takes whatever decoded
 * images are waiting — up to `maxBatch` — in one ORT run, so 200 concurrent clients cost a few large
 * runs instead of 200 small ones. ORT runs one batch at a time: onnxruntime-node executes `run` on the
 * JS thread, so a second concurrent run would only queue behind the first.
 */
import type { Classifier, PreparedImage } from './classifier.js';

export interface PipelineOptions {
  /** Requests admitted at once (waiting, decoding or running); more get 503. */
  capacity: number;
  /** Images decoded at once. */
  decodeConcurrency: number;
}

export interface Timings {
  /** Admission → decode start. */
  queueMs: number;
  decodeMs: number;
  /** Decoded → its batch started. */
  batchWaitMs: number;
  inferenceMs: number;
  batchSize: number;
}

export interface Scored {
  scores: Float64Array;
  image: PreparedImage;
  timings: Timings;
}

interface Ready {
  image: PreparedImage;
  readyAt: number;
  resolve(v: { scores: Float64Array; inferenceMs: number; batchSize: number; startedAt: number }): void;
  reject(e: unknown): void;
}

/** A slot held from admission until the response is written; `release` is idempotent. */
export interface Ticket {
  readonly admittedAt: number;
  release(): void;
}

export class Pipeline {
  private admittedCount = 0;
  private decoding = 0;
  private readonly decodeWaiters: (() => void)[] = [];
  private readonly ready: Ready[] = [];
  private running = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly classifier: Classifier, private readonly options: PipelineOptions) {}

  get capacity(): number {
    return this.options.capacity;
  }
  /** Requests admitted and not yet answered. */
  get admitted(): number {
    return this.admittedCount;
  }
  /** Requests waiting for a decode slot or for a batch. */
  get waiting(): number {
    return this.decodeWaiters.length + this.ready.length;
  }

  tryAdmit(): Ticket | undefined {
    if (this.admittedCount >= this.options.capacity) return undefined;
    this.admittedCount++;
    let released = false;
    return {
      admittedAt: performance.now(),
      release: () => {
        if (released) return;
        released = true;
        this.admittedCount--;
        if (this.admittedCount === 0) this.notifyIdle();
      },
    };
  }

  /** Resolves once nothing is admitted (for graceful shutdown). */
  idle(): Promise<void> {
    if (this.admittedCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async classify(ticket: Ticket, bytes: Uint8Array): Promise<Scored> {
    await this.acquireDecode();
    const decodeStart = performance.now();
    let image: PreparedImage;
    try {
      image = await this.classifier.prepare(bytes);
    } finally {
      this.releaseDecode();
    }
    const readyAt = performance.now();
    const result = await new Promise<{ scores: Float64Array; inferenceMs: number; batchSize: number; startedAt: number }>(
      (resolve, reject) => {
        this.ready.push({ image, readyAt, resolve, reject });
        this.pump();
      },
    );
    return {
      scores: result.scores,
      image,
      timings: {
        queueMs: decodeStart - ticket.admittedAt,
        decodeMs: readyAt - decodeStart,
        batchWaitMs: result.startedAt - readyAt,
        inferenceMs: result.inferenceMs,
        batchSize: result.batchSize,
      },
    };
  }

  private acquireDecode(): Promise<void> {
    if (this.decoding < this.options.decodeConcurrency) {
      this.decoding++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.decodeWaiters.push(resolve));
  }

  private releaseDecode(): void {
    const next = this.decodeWaiters.shift();
    if (next) next(); // the slot passes straight to the next waiter
    else this.decoding--;
  }

  private pump(): void {
    if (this.running || this.ready.length === 0) return;
    this.running = true;
    const batch = this.ready.splice(0, this.classifier.maxBatch);
    const startedAt = performance.now();
    this.classifier
      .run(batch.map((r) => r.image))
      .then(
        (scores) => {
          const inferenceMs = performance.now() - startedAt;
          batch.forEach((r, i) => r.resolve({ scores: scores[i]!, inferenceMs, batchSize: batch.length, startedAt }));
        },
        (e: unknown) => batch.forEach((r) => r.reject(e)),
      )
      .finally(() => {
        this.running = false;
        this.pump();
      });
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}

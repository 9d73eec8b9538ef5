/**
 * The HTTP server of `slim serve` and of every linux bundle (esbuild copies this module into the
 * bundle's server.js, so both run this one implementation).
 *
 *   POST /v1/classify[?top=k]  raw image bytes → top-k classes, scores and latency (JSON)
 *   GET  /v1/model             labels, input size, model hash
 *   GET  /healthz              200 {"status":"ok"}; 503 while shutting down
 *   GET  /metrics              Prometheus text: requests by route and status, latency histograms,
 *                              queue depth, batch sizes, model info, resident memory
 *   GET  /…                    files of a web bundle, when `staticDir` is set
 *
 * Every refusal is JSON {"error":{"status","code","message"}}: 400 empty body or bad query, 404,
 * 405 (+Allow), 413 body or pixel count too large, 415 not an image by its magic bytes, 422 an image
 * that does not decode, 503 (+Retry-After) when the bounded queue is full or the server is draining.
 * `shutdown()` answers what was admitted and 503s everything else (new connections too) until then, then closes.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { totalmem } from 'node:os';
import { SlimError } from '../errors.js';
import { ImageError, topK, type Classifier } from './classifier.js';
import { Registry } from './metrics.js';
import { channelCount } from '../deploy/config.js';
import { Pipeline, type Ticket } from './pipeline.js';
import { describeContent, sniffImage } from './sniff.js';
import { resolveStatic, sendFile } from './static.js';

export interface ServerOptions {
  classifier: Classifier;
  /** Largest accepted request body; default 10 MiB. */
  maxBodyBytes?: number;
  /** Requests admitted at once (each may hold a body); default 256. Beyond it: 503. */
  queueCapacity?: number;
  /**
   * Upload bytes held at once over all admitted requests; default min(256 MiB, RAM / 8), at least
   * maxBodyBytes. Beyond it: 503. Without it 256 slow 10 MiB uploads could hold 2.5 GiB on a 1 GB Pi.
   */
  maxBufferedBytes?: number;
  /** Images decoded at once; default 4 (libuv's thread pool size). */
  decodeConcurrency?: number;
  /** Classes returned when ?top= is not given; default 5 (capped by the label count). */
  defaultTopK?: number;
  /** Longest a client may take to send one request; default 30 s. */
  requestTimeoutMs?: number;
  /** Longest `shutdown` waits for admitted requests before closing sockets; default 30 s. */
  drainTimeoutMs?: number;
  /** Serve the files of this folder for GET requests outside the API (a web bundle). */
  staticDir?: string;
  /** Extra labels for slim_model_info (e.g. the target). */
  modelInfo?: Record<string, string>;
  /** One line per 5xx and lifecycle event; default: none. */
  log?: (line: string) => void;
  /**
   * One line per answered request (an access log: time, client, method, path, status, milliseconds,
   * then the top class and score or the refusal's code); default: none.
   */
  accessLog?: (line: string) => void;
  /** How those lines name the program: 'slim serve' (default), or a bundle's 'server'. */
  program?: string;
}

export interface ClassifyServer {
  readonly http: http.Server;
  readonly metrics: Registry;
  listen(port: number, host?: string): Promise<{ port: number; host: string; url: string }>;
  /** Graceful: refuse new work, finish admitted requests, close. Resolves when closed. */
  shutdown(): Promise<void>;
  readonly draining: boolean;
}

const MiB = 1024 * 1024;
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const ROUTES: Record<string, { methods: string[] }> = {
  '/v1/classify': { methods: ['POST'] },
  '/v1/model': { methods: ['GET', 'HEAD'] },
  '/healthz': { methods: ['GET', 'HEAD'] },
  '/metrics': { methods: ['GET', 'HEAD'] },
};

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

export function createClassifyServer(options: ServerOptions): ClassifyServer {
  const { classifier } = options;
  const config = classifier.config;
  const maxBody = options.maxBodyBytes ?? 10 * MiB;
  const bufferBudget = options.maxBufferedBytes ?? Math.max(maxBody, Math.min(256 * MiB, Math.floor(totalmem() / 8)));
  let buffered = 0;
  const defaultTop = Math.min(options.defaultTopK ?? 5, config.labels.length);
  const log = options.log ?? (() => {});
  const program = options.program ?? 'slim serve';
  const pipeline = new Pipeline(classifier, {
    capacity: options.queueCapacity ?? 256,
    decodeConcurrency: options.decodeConcurrency ?? 4,
  });
  for (const [name, v] of [['maxBodyBytes', maxBody], ['maxBufferedBytes', bufferBudget], ['queueCapacity', pipeline.capacity], ['decodeConcurrency', options.decodeConcurrency ?? 4]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new SlimError({ where: name, problem: `must be a whole number ≥ 1, got ${v}` }, 'usage');
  }

  const metrics = new Registry();
  const requests = metrics.counter('slim_http_requests_total', 'HTTP requests answered, by route, method and status code.');
  const duration = metrics.histogram('slim_http_request_duration_seconds', 'Time from request start to response, by route.', LATENCY_BUCKETS);
  const inference = metrics.histogram('slim_inference_duration_seconds', 'ONNX Runtime time per batch.', LATENCY_BUCKETS);
  const batchSizes = metrics.histogram('slim_batch_size', 'Images per ONNX Runtime run.', [1, 2, 4, 8, 16, 32, 64]);
  const images = metrics.counter('slim_images_classified_total', 'Images classified.');
  metrics.gauge('slim_queue_depth', 'Admitted requests waiting to be decoded or batched.', () => pipeline.waiting);
  metrics.gauge('slim_requests_in_flight', 'Admitted requests not yet answered.', () => pipeline.admitted);
  metrics.gauge('slim_buffered_body_bytes', 'Upload bytes reserved by admitted requests.', () => buffered);
  metrics.gauge('slim_queue_capacity', 'Requests admitted at most; beyond it the server answers 503.', () => pipeline.capacity);
  metrics.gauge('slim_draining', '1 while shutting down.', () => (draining ? 1 : 0));
  metrics.gauge('slim_model_info', 'The model being served (value is always 1).', () => [{
    labels: {
      name: config.name,
      sha256: config.model.sha256,
      classes: String(config.labels.length),
      input: inputLabel(config),
      onnxruntime: config.createdBy.onnxruntime,
      threads: String(classifier.threads),
      max_batch: String(classifier.maxBatch),
      ...options.modelInfo,
    },
    value: 1,
  }]);
  metrics.gauge('process_resident_memory_bytes', 'Resident set size.', () => process.memoryUsage.rss());
  metrics.gauge('process_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed);
  const startSeconds = Date.now() / 1000 - process.uptime();
  metrics.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch.', () => Math.round(startSeconds));

  let draining = false;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;

  const server = http.createServer({
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(requestTimeoutMs, 10_000),
    // How often Node looks for requests past those timeouts (its default, 30 s, let a stalled upload live 30–60 s).
    connectionsCheckingInterval: Math.max(250, Math.min(5_000, requestTimeoutMs / 4)),
    keepAliveTimeout: 5_000,
    maxHeaderSize: 16 * 1024,
  });

  // Connections that owe the server a request, or are still sending one the server refused: a shutdown
  // waits for them (a while) before it closes idle connections, which would reset them mid-upload.
  const settling = new Set<Socket>();
  let lastConnection = 0;
  server.on('connection', (socket: Socket) => {
    lastConnection = Date.now();
    settling.add(socket);
    socket.once('close', () => settling.delete(socket));
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    settling.delete(req.socket);
    const start = performance.now();
    const path = safePath(req.url);
    const route = path && ROUTES[path] ? path : options.staticDir && (req.method === 'GET' || req.method === 'HEAD') ? 'static' : 'other';
    /** What the access log says after the status: the top class, or the refusal's code. */
    const outcome: { text?: string } = {};
    res.on('finish', () => {
      requests.inc({ route, method: methodLabel(req.method), code: String(res.statusCode) });
      duration.observe((performance.now() - start) / 1000, { route });
      options.accessLog?.(accessLine(req, String(res.statusCode), performance.now() - start, outcome.text));
    });
    // Answered by no one: the client went away before the answer was written.
    res.on('close', () => {
      if (!res.writableFinished) options.accessLog?.(accessLine(req, '-', performance.now() - start, 'client_closed'));
    });
    handle(req, res, path, start, outcome).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (status >= 500 && !(e instanceof HttpError)) log(`${program}: internal error on ${req.method} ${req.url}: ${(e as Error).stack ?? e}`);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const refusal = e instanceof HttpError ? e : new HttpError(500, 'internal_error', 'the server failed on this request; see its log');
      outcome.text = refusal.code;
      if (sendError(req, res, refusal)) settling.add(req.socket);
    });
  });
  // Malformed HTTP: answer 400 and close, instead of Node's bare socket close.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    // A response already streaming on this connection (a keep-alive client's next request was bad):
    // writing a 400 into it would corrupt that body, so just close, as Node's own handler does.
    const inFlight = (socket as { _httpMessage?: ServerResponse | null })._httpMessage;
    if (!socket.writable || err.code === 'ECONNRESET' || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    // A client too slow to send its request in full (a stalled upload) is a timeout, not malformed HTTP.
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : timedOut ? 408 : 400;
    const error = timedOut
      ? { status, code: 'request_timeout', message: `the request was not received in full within ${Math.round(requestTimeoutMs / 1000)} s; send the whole body at once` }
      : { status, code: 'bad_request', message: `malformed HTTP request (${err.code ?? err.message})` };
    const body = `${JSON.stringify({ error })}\n`;
    options.accessLog?.(`${new Date().toISOString()} ${(socket as Socket).remoteAddress ?? '-'} - ${status} ${error.code}`);
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\r\n${body}`);
  });

  async function handle(req: IncomingMessage, res: ServerResponse, path: string | undefined, start: number, outcome: { text?: string }): Promise<void> {
    if (draining) res.setHeader('connection', 'close');
    if (path === undefined) throw new HttpError(400, 'bad_request', 'the request target is not a valid path');
    const spec = ROUTES[path];
    if (!spec) {
      if (options.staticDir && (req.method === 'GET' || req.method === 'HEAD')) return serveStatic(req, res, path);
      // The page's files are read-only: another method is not allowed (it said "no route").
      if (options.staticDir && (await resolveStatic(options.staticDir, path)).status === 200) {
        throw new HttpError(405, 'method_not_allowed', `${path} is a file of the page: GET or HEAD, not ${methodLabel(req.method)}`, { allow: 'GET, HEAD' });
      }
      throw new HttpError(404, 'not_found', `no route ${path}; the API is POST /v1/classify, GET /v1/model, GET /healthz, GET /metrics`);
    }
    if (!spec.methods.includes(req.method ?? '')) {
      throw new HttpError(405, 'method_not_allowed', `${path} takes ${spec.methods.join(' or ')}, not ${methodLabel(req.method)}`, { allow: spec.methods.join(', ') });
    }
    const head = req.method === 'HEAD';
    switch (path) {
      case '/healthz':
        if (draining) throw new HttpError(503, 'draining', 'the server is shutting down', { 'retry-after': '5' });
        return sendJson(res, 200, { status: 'ok', model: config.name, uptime_s: Math.round(process.uptime()) }, head);
      case '/metrics':
        return sendText(res, 200, metrics.render(), 'text/plain; version=0.0.4; charset=utf-8', head);
      case '/v1/model':
        return sendJson(res, 200, modelDescription(), head);
      default:
        return classify(req, res, start, outcome);
    }
  }

  async function classify(req: IncomingMessage, res: ServerResponse, start: number, outcome: { text?: string }): Promise<void> {
    if (draining) throw new HttpError(503, 'draining', 'the server is shutting down; retry on another instance', { 'retry-after': '5' });
    const top = parseTop(req.url!, config.labels.length, defaultTop);
    const queueFull = (): HttpError => new HttpError(503, 'queue_full', `the server is busy (${pipeline.capacity} requests queued); retry shortly`, {
      'retry-after': String(Math.max(1, Math.ceil(averageBatchSeconds() * pipeline.capacity / classifier.maxBatch))),
    });
    // Turned away at once when the queue is full already: no image is uploaded only to be refused.
    if (pipeline.admitted >= pipeline.capacity) throw queueFull();
    // Reserve the upload's bytes before reading it (all of maxBody when the length is not declared).
    const declared = Number(req.headers['content-length']);
    const reserved = Math.min(maxBody, Number.isFinite(declared) && declared >= 0 ? declared : maxBody);
    if (buffered + reserved > bufferBudget) {
      throw new HttpError(503, 'busy', `the server is holding its limit of ${Math.round(bufferBudget / MiB)} MiB of uploads; retry shortly`, { 'retry-after': '1' });
    }
    buffered += reserved;
    let ticket: Ticket | undefined;
    try {
      const body = await readBody(req, maxBody);
      if (body.length === 0) throw new HttpError(400, 'empty_body', 'the request has no body; send the image bytes (curl --data-binary @photo.jpg)');
      const format = sniffImage(body);
      if (!format) throw new HttpError(415, 'unsupported_media_type', `the body is ${describeContent(body)}, not a JPEG, PNG, WebP, GIF, TIFF or AVIF image`);
      // A place in the queue is taken once the body is in: a client that stalls mid-upload holds only its
      // bytes' reservation until the request timeout, not a slot (two stalled uploads filled a queue of 2).
      if (draining) throw new HttpError(503, 'draining', 'the server is shutting down; retry on another instance', { 'retry-after': '5' });
      ticket = pipeline.tryAdmit();
      if (!ticket) throw queueFull();
      let scored;
      try {
        scored = await pipeline.classify(ticket, body);
      } catch (e) {
        if (e instanceof ImageError) throw new HttpError(e.status, e.status === 413 ? 'image_too_large' : 'undecodable_image', e.parts.problem + (e.parts.fix ? ` — ${e.parts.fix}` : ''));
        throw e;
      }
      const t = scored.timings;
      inference.observe(t.inferenceMs / 1000);
      batchSizes.observe(t.batchSize);
      images.inc();
      lastBatchSeconds = 0.9 * lastBatchSeconds + 0.1 * (t.inferenceMs / 1000);
      const round = (v: number): number => Math.round(v * 1000) / 1000;
      const best = topK(scored.scores, config.labels, top);
      outcome.text = `${best[0]!.label.replace(/\s/g, '_')} ${best[0]!.score.toFixed(3)}`;
      sendJson(res, 200, {
        model: config.name,
        top: best,
        latency_ms: round(performance.now() - start),
        timings_ms: { queue: round(t.queueMs), decode: round(t.decodeMs), batch_wait: round(t.batchWaitMs), inference: round(t.inferenceMs) },
        batch_size: t.batchSize,
        image: { format, width: scored.image.width, height: scored.image.height },
      }, false);
    } finally {
      buffered -= reserved;
      ticket?.release();
    }
  }

  let lastBatchSeconds = 0.01;
  const averageBatchSeconds = (): number => lastBatchSeconds;

  async function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const found = await resolveStatic(options.staticDir!, path);
    if (found.status !== 200) throw new HttpError(found.status, found.status === 404 ? 'not_found' : 'bad_request', `${path}: ${found.reason}`);
    await sendFile(res, found, req.method === 'HEAD', req.headers);
  }

  function modelDescription(): unknown {
    return {
      name: config.name,
      sha256: config.model.sha256,
      input: { name: config.model.input, type: config.model.inputType, size: config.preprocess.size },
      preprocess: config.preprocess,
      labels: config.labels,
      max_batch: classifier.maxBatch,
      limits: { max_body_bytes: maxBody, queue_capacity: pipeline.capacity },
    };
  }

  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  let shutdownPromise: Promise<void> | undefined;

  return {
    http: server,
    metrics,
    get draining() {
      return draining;
    },
    listen(port, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        const onError = (e: NodeJS.ErrnoException): void => {
          reject(new SlimError({
            where: `${host}:${port}`,
            problem: e.code === 'EADDRINUSE' ? 'the port is already in use' : e.code === 'EACCES' ? 'no permission to listen on this port' : `cannot listen (${e.message})`,
            fix: e.code === 'EACCES' ? 'use a port ≥ 1024 or run as a user allowed to bind it' : 'choose another --port, or stop the process using it',
          }, 'input'));
        };
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          const a = server.address() as AddressInfo;
          const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve({ port: a.port, host: a.address, url: `http://${shown}:${a.port}` });
        });
      });
    },
    shutdown() {
      shutdownPromise ??= (async () => {
        draining = true;
        log(`${program}: draining — new requests get 503, admitted ones are answered`);
        // The listener and every open connection stay up while the admitted requests finish: a request
        // that arrives now is answered 503 (connection: close) instead of being reset — closing the
        // listener and the "idle" sockets here reset the requests of clients whose headers had not been
        // read yet (a trial: 11–13 of 20 concurrent requests at SIGTERM got no answer).
        const drainTimeout = options.drainTimeoutMs ?? 30_000;
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          pipeline.idle().then(() => false),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), drainTimeout))),
        ]);
        clearTimeout(timer);
        if (timedOut) log(`${program}: ${pipeline.admitted} request${pipeline.admitted === 1 ? '' : 's'} still running after ${drainTimeout} ms; closing their connections`);
        // Then, within SETTLE_MS: the listener closes once no connection has come for QUIET_MS
        // (connections the kernel accepted but this process has not taken are reset when it closes);
        // connections still owing a request or sending a refused upload get to finish (an idle sweep
        // would reset them); answered sockets close themselves (connection: close), then the rest are forced.
        const settleBy = Date.now() + SETTLE_MS;
        while (Date.now() - lastConnection < QUIET_MS && Date.now() < settleBy) await new Promise((r) => setTimeout(r, 20));
        server.close();
        while (settling.size > 0 && Date.now() < settleBy) await new Promise((r) => setTimeout(r, 20));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), timedOut ? 0 : 2_000);
        await closed;
        clearTimeout(force);
        log(`${program}: closed`);
      })();
      return shutdownPromise;
    },
  };
}

/**
 * `2026-12-02T01:50:00.123Z 127.0.0.1 POST /v1/classify 200 12.4 ms cat 0.912`: one line per request,
 * the request target cut to 200 characters (Node's parser has already refused control characters).
 */
function accessLine(req: IncomingMessage, status: string, ms: number, outcome: string | undefined): string {
  const target = (req.url ?? '-').length > 200 ? `${req.url!.slice(0, 200)}…` : req.url ?? '-';
  return `${new Date().toISOString()} ${req.socket.remoteAddress ?? '-'} ${methodLabel(req.method)} ${target} ${status} ${ms.toFixed(1)} ms${outcome ? ` ${outcome}` : ''}`;
}

/** The path of a request target, or undefined when it is not an origin-form path. */
function safePath(url: string | undefined): string | undefined {
  if (!url || !url.startsWith('/')) return undefined;
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function methodLabel(method: string | undefined): string {
  return method && /^[A-Z]{1,10}$/.test(method) ? method : 'other';
}

/** The model input as fed, e.g. float32[N,3,224,224], or uint8[N,224,224,3] for a channels-last one. */
function inputLabel(config: Classifier['config']): string {
  const p = config.preprocess;
  const [c, [h, w]] = [channelCount(p), p.size];
  return `${config.model.inputType}[${(p.layout === 'NHWC' ? ['N', h, w, c] : ['N', c, h, w]).join(',')}]`;
}

function parseTop(url: string, classes: number, fallback: number): number {
  const raw = new URL(url, 'http://localhost').searchParams.get('top');
  if (raw === null) return fallback;
  const k = Number(raw);
  if (!Number.isInteger(k) || k < 1) throw new HttpError(400, 'bad_query', `top must be a whole number ≥ 1, got '${raw.slice(0, 20)}'`);
  // Every class when there are fewer, as the default of 5 does: a client asking top=5 works on any model.
  return Math.min(k, classes);
}

/**
 * The request body, refusing more than `limit` bytes: a Content-Length above it is refused before
 * reading, a chunked body as soon as it passes it. After the 413 the connection is closed (lingeringClose).
 */
/** A body limit as --max-body-mb states it (10 MiB), with the exact count. */
function limitText(bytes: number): string {
  const mib = bytes / 1048576;
  return `${Number.isInteger(mib) ? mib : mib.toFixed(2)} MiB (${bytes.toLocaleString('en')} bytes)`;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  // No `Connection: close` header: Node would then reset the socket as soon as the answer is written,
  // under a client still sending; lingeringClose (below) closes it once the upload is drained or cut.
  const tooLarge = (): HttpError => new HttpError(413, 'body_too_large', `the body is larger than the limit of ${limitText(limit)}; send a smaller image`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onAbort = (): void => {
      if (req.complete) return;
      cleanup();
      reject(new HttpError(400, 'aborted', 'the client closed the connection before sending the whole body'));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('close', onAbort);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('close', onAbort);
  });
}

function sendJson(res: ServerResponse, status: number, value: unknown, head: boolean): void {
  sendText(res, status, `${JSON.stringify(value)}\n`, 'application/json; charset=utf-8', head);
}

function sendText(res: ServerResponse, status: number, text: string, type: string, head: boolean): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(head ? undefined : text);
}

/** How long, and how many bytes, a refused upload is still read and dropped before the connection closes. */
const LINGER_MS = 2000;
/** How long a shutdown waits for connections that owe a request or are still sending a refused one. */
const SETTLE_MS = 2000;
/** A shutdown closes the listener once no connection has come for this long (or SETTLE_MS has passed). */
const QUIET_MS = 200;
const LINGER_BYTES = 64 * 1024 * 1024;

/** Answers `e`; true when the request's upload was still unread (the connection lingers until it is). */
function sendError(req: IncomingMessage, res: ServerResponse, e: HttpError): boolean {
  for (const [k, v] of Object.entries(e.headers)) res.setHeader(k, v);
  // Refused before its upload was read (413, a full queue, draining): the connection ends once the
  // rest is read and dropped, so the client hears the answer instead of a reset mid-upload.
  const unread = !req.complete;
  if (unread) res.setHeader('connection', 'close');
  sendJson(res, e.status, { error: { status: e.status, code: e.code, message: e.message } }, false);
  if (unread) res.once('finish', () => lingeringClose(req, res));
  return unread;
}

/**
 * A 413 (or any refusal before the upload is read) leaves the body unread. Closing at once would reset a client still writing it, which then sees
 * EPIPE instead of the answer; so, as nginx does, the rest is read and dropped for a bounded time and
 * amount (LINGER_MS, LINGER_BYTES) and the connection closed after that.
 */
function lingeringClose(req: IncomingMessage, res: ServerResponse): void {
  const socket = res.socket;
  if (!socket || socket.destroyed) return;
  if (req.complete) {
    socket.destroySoon();
    return;
  }
  let dropped = 0;
  const close = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length;
    if (dropped > LINGER_BYTES) close();
  });
  req.once('end', () => {
    clearTimeout(timer);
    socket.destroySoon();
  });
  req.resume();
}

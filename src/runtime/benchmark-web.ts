/**
 * `slim bench --target web`: a model's latency and throughput where the web bundle runs it —
 * onnxruntime-web's WebAssembly build (SIMD; threads on a cross-origin-isolated page) in a headless
 * Chromium or Chrome driven by playwright-core. WebAssembly kernels are not the native ones (an int8
 * model can gain less, or lose, there), so the browser's own timing is the number to trust for the web.
 *
 * A loopback server gives the pages the models, onnxruntime-web and the benchmark code (web-bench/page.ts,
 * bundled by esbuild), with the two headers that make them cross-origin isolated. Each model gets a page
 * of its own in one browser, as the web bundle holds one model per page, and the pages take turns
 * (benchmark-turns.ts) so that a change in the machine's load falls on every model alike. Each page's
 * first output on the seeded inputs is checked against onnxruntime-node on the same inputs before any
 * timing: a timing is only reported for a model the browser computed correctly.
 */
import { existsSync, readFileSync } from 'node:fs';
import { LINUX_PROC, treeTicks } from './cpu-load.js';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { inputError, usageError } from '../errors.js';
import { bundleForBrowser } from '../deploy/device-code.js';
import { ISOLATION_HEADERS } from '../serve/static.js';
import { Random } from '../util/random.js';
import type { BenchmarkPhase, ModelTimer, TimedResult } from './benchmark.js';
import { timeOpening, waitUntilIdle, type RunCount } from './benchmark-turns.js';
import { openSession } from './ort.js';
import { ORT_WEB_MODULE, ORT_WEB_WASM, ortWebDist, ortWebVersion } from './ort-web.js';
import { benchmarkInputs, randomTensor, type InputDescription } from './random-input.js';
import type { WebBenchPage, WebOpenReply, WebOpenRequest } from './web-bench/page.js';
import type { Graph } from '../onnx/graph.js';
import { toNumbers } from '../onnx/tensor.js';
import { int8KernelsSaturate } from '../util/cpu-flags.js';
import { exactKernelsTwin } from '../compress/quantize/cpu.js';
import { decodeModel, encodeModel } from '../onnx/io.js';

/** Where a model is timed: this machine's onnxruntime-node, or onnxruntime-web in a headless browser. */
export const BENCH_TARGETS = ['host', 'web'] as const;
export type BenchTarget = (typeof BENCH_TARGETS)[number];

/** One model to time in the browser, with what differs between models. */
export interface WebModel {
  file: string;
  /** The model's inputs as declared (name, dtype, dims). */
  inputs: InputDescription[];
  /** Batch of the latency runs. */
  batch: number;
  /** Batch of the throughput phase; 0 skips it. */
  throughputBatch: number;
  inputShapes?: Record<string, number[]>;
  /** The model computes in int8 or fp16 somewhere (computesReduced): a looser output check. */
  reducedPrecision?: boolean;
  /** External data files the model reads (resolved paths). */
  externalFiles?: string[];
}

export interface WebBenchmarkOptions {
  /** Chromium or Chrome; default: $SLIM_BROWSER, then the usual install paths. */
  browser?: string;
  /** onnxruntime-web's WebAssembly threads. */
  threads: number;
  warmupRuns: number;
  runs: RunCount;
  throughputSeconds?: number;
  seed?: number;
  /** Work done of total in the phase, over all models (benchmark-turns.ts). */
  onProgress?(done: number, total: number, phase: BenchmarkPhase): void;
}

/** What the browser adds to a model's timing. */
export interface WebFinish {
  /** e.g. "onnxruntime-web 1.30.0 (WebAssembly) in Chromium 156.0.8078.73". */
  runtime: string;
  browser: string;
  crossOriginIsolated: boolean;
  /** Largest difference between the page's first output and onnxruntime-node's on the same inputs. */
  maxAbsDiffVsNode: number;
}

export type WebBenchmarkResult = TimedResult & WebFinish;

/** Where Chromium or Chrome usually are (Debian/Ubuntu, snap, macOS). */
const BROWSER_PATHS = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome-stable',
  '/usr/bin/google-chrome',
  '/snap/bin/chromium',
  '/Applications/Google Chrome.app/Contents/MacOS/Google Chrome',
  '/Applications/Chromium.app/Contents/MacOS/Chromium',
];

export function findBrowser(given?: string): string {
  const explicit = given ?? process.env['SLIM_BROWSER'];
  if (explicit) {
    if (!existsSync(explicit)) {
      throw usageError(`the browser ${explicit} does not exist${given ? '' : ' ($SLIM_BROWSER)'}`, 'give the path of a Chromium or Chrome executable');
    }
    return explicit;
  }
  const found = BROWSER_PATHS.find((p) => existsSync(p));
  if (!found) {
    throw inputError({
      problem: 'slim bench --target web needs Chromium or Google Chrome, and none was found',
      fix: 'install it (Debian/Ubuntu: apt install chromium; scripts/setup.sh does) or pass --browser /path/to/chrome',
    });
  }
  return found;
}

/** Ops of a quantized model: its integer kernels round differently in WebAssembly and natively. */
const INTEGER_OPS = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger']);

/** Whether the model computes in int8 or fp16 anywhere: then the two runtimes may differ by a rounding step. */
export function computesReduced(graph: Graph): boolean {
  return graph.nodes.some((n) => INTEGER_OPS.has(n.opType)) || [...graph.initializers.values()].some((t) => t.dtype === 'float16');
}

/**
 * Tolerance of the browser-vs-Node check, relative to the output's scale: float32 kernels agree to
 * rounding; int8/fp16 ones can differ by a quantization step that later layers carry along (a
 * ResNet18-CIFAR int8 model's logits differed by 0.004). A wrong kernel differs by the output's scale.
 */
function outputTolerance(reference: number[], reduced: boolean, saturated: boolean): number {
  const scale = reference.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
  return (reduced ? (saturated ? SATURATING_TOLERANCE : 0.05) : 1e-3) * Math.max(1, scale);
}

/**
 * On an x64 CPU without VNNI onnxruntime-node's int8 sums saturate (int8KernelsSaturate) and the web's
 * do not: the same ResNet18-CIFAR int8 model's logits differed by 0.061. Still well below a wrong kernel.
 */
const SATURATING_TOLERANCE = 0.25;

const HEADERS = { ...ISOLATION_HEADERS, 'cache-control': 'no-store' };

type Route = { type: string; body: () => Uint8Array };
type Browser = Awaited<ReturnType<typeof import('playwright-core').chromium.launch>>;

/**
 * Every model in a page of its own in one headless browser, all open at once and timed in turns;
 * results in the given order.
 */
export async function benchmarkInBrowser(models: readonly WebModel[], options: WebBenchmarkOptions): Promise<WebBenchmarkResult[]> {
  const browserPath = findBrowser(options.browser);
  const seed = options.seed ?? 0;
  const [page] = await bundleForBrowser({ bench: '../runtime/web-bench/page' });
  const dist = ortWebDist();
  const routes = new Map<string, Route>([
    ['/', { type: 'text/html; charset=utf-8', body: () => Buffer.from('<!doctype html><meta charset="utf-8"><title>slim bench</title><script type="module" src="/bench.js"></script>') }],
    ['/bench.js', { type: 'text/javascript; charset=utf-8', body: () => page!.contents }],
    [`/ort/${ORT_WEB_MODULE}`, { type: 'text/javascript; charset=utf-8', body: () => readFileSync(path.join(dist, ORT_WEB_MODULE)) }],
    [`/ort/${ORT_WEB_WASM}`, { type: 'application/wasm', body: () => readFileSync(path.join(dist, ORT_WEB_WASM)) }],
    ...models.flatMap(({ file, externalFiles = [] }, m): [string, Route][] => [
      [`/model/${m}.onnx`, { type: 'application/octet-stream', body: () => readFileSync(file) }],
      ...externalFiles.map((f, i): [string, Route] => [`/model/${m}/external/${i}`, { type: 'application/octet-stream', body: () => readFileSync(f) }]),
    ]),
  ]);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const route = routes.get(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (!route || req.method !== 'GET') {
      res.writeHead(404, HEADERS).end();
      return;
    }
    const body = route.body();
    res.writeHead(200, { ...HEADERS, 'content-type': route.type, 'content-length': body.byteLength }).end(body);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  let browser: Browser | undefined;
  try {
    const { chromium } = await import('playwright-core');
    try {
      browser = await chromium.launch({
        executablePath: browserPath,
        headless: true,
        // --no-sandbox: Chromium refuses to start as root with its sandbox (containers, CI).
        args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
    } catch (e) {
      throw inputError({ problem: `the browser ${browserPath} did not start: ${(e as Error).message.split('\n')[0]}`, fix: 'check that it runs (`' + browserPath + ' --headless --version`) or pass another with --browser' });
    }
    const runtime = `onnxruntime-web ${ortWebVersion()} (WebAssembly) in ${browserName(browserPath)} ${browser.version()}`;
    const opening = models.map((model, m) =>
      openPageTimer(browser!, model, {
        modelUrl: `${origin}/model/${m}.onnx`,
        ortModuleUrl: `${origin}/ort/${ORT_WEB_MODULE}`,
        ortWasmUrl: `${origin}/ort/${ORT_WEB_WASM}`,
        externalData: (model.externalFiles ?? []).map((f, i) => ({ path: path.relative(path.dirname(model.file), f).split(path.sep).join('/'), url: `${origin}/model/${m}/external/${i}` })),
        latencyInputs: benchmarkInputs(model.file, model.inputs, model.batch, model.inputShapes),
        throughputInputs: model.throughputBatch > 0 ? benchmarkInputs(model.file, model.inputs, model.throughputBatch, model.inputShapes) : [],
        threads: options.threads,
        seed,
      }, { runtime, browser: browserPath }),
    );
    return await timeOpening(opening, {
      warmupRuns: options.warmupRuns,
      runs: options.runs,
      throughputSeconds: options.throughputSeconds ?? 2,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } finally {
    await browser?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * Opens one model in a page of its own and checks its first output against onnxruntime-node's; the
 * page then runs what the turns ask. Every call names the model when the page fails.
 */
async function openPageTimer(browser: Browser, model: WebModel, request: WebOpenRequest, about: Pick<WebFinish, 'runtime' | 'browser'>): Promise<ModelTimer<WebFinish>> {
  const tab = await browser.newPage();
  const pageErrors: string[] = [];
  tab.on('pageerror', (e) => pageErrors.push(e.message));
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await tab.close().catch(() => undefined);
  };
  // A string, not a function: the function's source would carry whatever helpers a TS loader added.
  const call = async <T>(method: keyof WebBenchPage, ...args: unknown[]): Promise<T> => {
    try {
      return (await tab.evaluate(`window.slimBench.${method}(${args.map((a) => JSON.stringify(a)).join(', ')})`)) as T;
    } catch (e) {
      throw pageFailure(model.file, e as Error, pageErrors);
    }
  };
  try {
    await tab.goto(`${new URL(request.modelUrl).origin}/`);
    await tab.waitForFunction('typeof window.slimBench === "object"', undefined, { timeout: 60_000 }).catch((e: unknown) => {
      throw new Error(`the benchmark page did not start: ${pageErrors[0] ?? (e as Error).message.split('\n')[0]}`);
    });
    const reply = await call<WebOpenReply>('open', request);
    const maxAbsDiffVsNode = await checkAgainstNode(model.file, request.latencyInputs, request.seed, reply, model.reducedPrecision ?? false);
    const threads = reply.threads;
    return {
      batch: model.batch,
      throughputBatch: model.throughputBatch,
      threads,
      warmup: (runs) => call<void>('warmup', runs),
      timeRuns: (runs, rewarm) => call<number[]>('timeRuns', runs, rewarm),
      timeThroughput: (seconds, rewarm) => call<{ runs: number; seconds: number }>('timeThroughput', seconds, rewarm),
      // A single-threaded page has no thread pool to wait for.
      quiesce: () => (threads > 1 ? idlePool() : Promise.resolve()),
      async finish() {
        await call<void>('release');
        await close();
        return { ...about, crossOriginIsolated: reply.crossOriginIsolated, maxAbsDiffVsNode };
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** A page's failure as the user can act on it: a crashed tab is most often memory; anything else the runtime's. */
function pageFailure(file: string, error: Error, pageErrors: string[]): Error {
  const message = error.message.replace(/^page\.evaluate: /, '').split('\n')[0] ?? '';
  if (/Target (crashed|closed)|has been closed/.test(message)) {
    return inputError({ file, problem: `the browser tab running the model crashed (${message})`, fix: 'most often it ran out of memory: try a smaller --batch, fewer models at once, or close other tabs and programs' });
  }
  return inputError({
    file,
    problem: `onnxruntime-web ${ortWebVersion()} could not run the model in the browser: ${message}${pageErrors.length ? ` (${pageErrors[0]})` : ''}`,
    fix: 'the web bundle (slim deploy --target web) would fail the same way; onnxruntime-web\'s WebAssembly build lacks some ops and types that onnxruntime-node has',
  });
}

/** Headless Chromium calls itself HeadlessChrome: the executable's name tells the two apart. */
function browserName(browserPath: string): string {
  if (/msedge|edge/i.test(path.basename(browserPath))) return 'Edge';
  return /chromium/i.test(path.basename(browserPath)) ? 'Chromium' : 'Chrome';
}

/** The page's first output against onnxruntime-node's on the same seeded inputs; throws when they differ. */
async function checkAgainstNode(file: string, inputs: WebOpenRequest['latencyInputs'], seed: number, reply: WebOpenReply, reduced: boolean): Promise<number> {
  const random = new Random(seed);
  const feeds = Object.fromEntries(inputs.map((i) => [i.name, randomTensor(i.dtype, i.dims, random)]));
  // Where this CPU's int8 sums saturate, the reference is the model on exact kernels (its weights as
  // uint8, the same integers), as the browser computes it: the int8 model `deploy --target web` ships was
  // refused here against the saturated sums, and only a re-laid twin could be timed.
  const twin = reduced && int8KernelsSaturate() ? exactKernelsTwin(decodeModel(readFileSync(file), { file })) : undefined;
  const session = await openSession(twin ? encodeModel(twin).model : file, { threads: 1, label: file });
  // The reference itself saturates: int8 on this CPU with no exact twin (a looser check, and a fix to say).
  const saturated = reduced && int8KernelsSaturate() && !twin;
  let reference: number[];
  try {
    const out = (await session.run(feeds))[reply.firstOutput.name];
    if (!out) throw new Error(`onnxruntime-node gave no output '${reply.firstOutput.name}'`);
    reference = toNumbers(out).slice(0, reply.firstOutput.values.length);
  } finally {
    await session.close();
  }
  let diff = 0;
  for (let i = 0; i < reference.length; i++) {
    const [a, b] = [reference[i]!, reply.firstOutput.values[i]!];
    // The same NaN or infinity on both sides agrees (a model may well compute one).
    if (Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b))) continue;
    diff = Math.max(diff, Number.isFinite(a) && Number.isFinite(b) ? Math.abs(a - b) : Infinity);
  }
  if (reference.length !== reply.firstOutput.values.length || !(diff <= outputTolerance(reference, reduced, saturated))) {
    throw inputError({
      file,
      problem: `onnxruntime-web's output '${reply.firstOutput.name}' differs from onnxruntime-node's on the same input (max difference ${diff.toPrecision(3)}), so its timing is not reported`,
      fix: saturated
        ? "this CPU's int8 kernels (x64 without VNNI) saturate in onnxruntime-node, the browser's do not, and this model's weights cannot be moved to exact ones here: bench it in the browser on another machine, or quantize with --cpu avx2; if the model already is, report this with it"
        : 'report this with the model: one of the two runtimes computes it wrongly',
    });
  }
  return diff;
}

/** CPU time (clock ticks) of this process's descendants: the browser and its renderers, GPU and utility processes. */
function browserTicks(): number | undefined {
  try {
    return treeTicks(LINUX_PROC, process.pid, { self: false, reaped: false });
  } catch {
    return undefined; // no /proc to list
  }
}

/**
 * After a turn, waits until the browser's processes stop using CPU: onnxruntime-web's WebAssembly thread
 * pool spins after a run (measured with browserTicks on 2 cores: about 20 ms at 2 threads, 40–80 ms at
 * 4, none at 1), and in that time it takes CPUs from the next page's turn. Polls until a 20 ms interval
 * adds no tick, for at most 300 ms; without /proc (macOS) it waits a fixed 100 ms.
 */
function idlePool(): Promise<void> {
  return waitUntilIdle(browserTicks, { intervalMs: 20, idleBelow: 1, limitMs: 300, fallbackMs: 100 });
}

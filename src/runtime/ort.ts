/**
 * The one module that imports onnxruntime-node (STYLE.md §5): sessions, runs, and ORT errors turned
 * into SlimErrors that name the model, the feeds and what the model expects.
 *
 * Note on concurrency: in onnxruntime-node 1.30 `session.run` executes synchronously on the JS thread
 * inside a setImmediate callback (see its dist/backend.js). Code placed between calling `run` and
 * awaiting it therefore runs *before* ORT starts, not alongside it. Callers may still rely on
 * "a feed buffer is free once its run has resolved".
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { usableCores } from '../util/cpu-quota.js';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { inputError, SlimError, usageError } from '../errors.js';
import type { DType } from '../onnx/dtype.js';
import type { Dim, Graph } from '../onnx/graph.js';
import { encodeModel } from '../onnx/io.js';
import type { Tensor } from '../onnx/tensor.js';

export type Optimization = 'all' | 'extended' | 'basic' | 'disabled';

export interface SessionOptions {
  /** Intra-op threads; default: the cores available to this process. */
  threads?: number;
  /** Inter-op threads (only used by ORT's parallel execution mode); default 1. */
  interOpThreads?: number;
  /** ORT graph optimization level; default 'all'. */
  optimization?: Optimization;
  /** Named in error messages when the model is given as bytes (e.g. the file they came from). */
  label?: string;
  /**
   * Least severe ORT log message printed to stderr; default 'fatal', because ORT's errors reach the
   * caller as SlimErrors and its own log lines would repeat them in a second, rawer form.
   */
  logLevel?: LogLevel;
  /**
   * Write the graph ORT actually runs (after its fusions, e.g. QDQ → QLinearConv) to this path: how to
   * check which float ops are left in a quantized model.
   */
  optimizedModelFilePath?: string;
  /**
   * Whether idle intra-op threads spin before they sleep (ORT's 'session.intra_op.allow_spinning');
   * default true, ORT's default. Spinning saves the wake-up at each parallel op when the cores are
   * free, and costs badly when other processes share them.
   */
  spinning?: boolean;
  /**
   * Record ORT's per-node profile: a Chrome-trace JSON file named `<profile>_<date>.json`, written when
   * the session is closed (its path is then in `OrtModel.profileFile`).
   */
  profile?: string;
}

export type LogLevel = 'verbose' | 'info' | 'warning' | 'error' | 'fatal';
const LOG_SEVERITY: Record<LogLevel, 0 | 1 | 2 | 3 | 4> = { verbose: 0, info: 1, warning: 2, error: 3, fatal: 4 };

/** An input or output as ORT reports it. */
export interface OrtValueInfo {
  name: string;
  /** Undefined for non-tensor values (sequences, maps) and element types slimkit has no name for. */
  dtype?: DType;
  /**
   * Numbers for fixed dims, strings for symbolic ones. Undefined when ORT reports no shape: ORT
   * reports "unknown rank" and "scalar" alike as [], so [] is treated as unknown.
   */
  dims?: Dim[];
}

export interface RunOptions {
  /** Output names to fetch; default all. */
  outputs?: string[];
}

export interface OrtModel {
  /** The file path, or the label / "<in-memory model>" for bytes. */
  readonly source: string;
  readonly inputs: readonly OrtValueInfo[];
  readonly outputs: readonly OrtValueInfo[];
  readonly threads: number;
  /** With SessionOptions.profile: the profile file, once the session is closed. */
  readonly profileFile?: string;
  /** Runs the model. Feed data is passed to ORT without copying; do not change it before this resolves. */
  run(feeds: Record<string, Tensor>, options?: RunOptions): Promise<Record<string, Tensor>>;
  close(): Promise<void>;
}

/** ORT element types that slimkit's DType also names (bfloat16 has no ORT JS tensor type). */
const ORT_TYPES: ReadonlySet<string> = new Set<DType>([
  'float32', 'uint8', 'int8', 'uint16', 'int16', 'int32', 'int64', 'string', 'bool', 'float16', 'float64',
  'uint32', 'uint64',
]);

export function defaultThreads(): number {
  return usableCores();
}

/** Versions of the ORT packages in use, e.g. { node: '1.30.0', common: '1.30.0' }. */
export function ortVersion(): { node: string; common: string } {
  const v = ort.env.versions as { node?: string; common?: string };
  return { node: v.node ?? 'unknown', common: v.common ?? 'unknown' };
}

export async function openSession(model: Uint8Array | string, options: SessionOptions = {}): Promise<OrtModel> {
  const source = typeof model === 'string' ? model : (options.label ?? '<in-memory model>');
  const threads = options.threads ?? defaultThreads();
  const interOpThreads = options.interOpThreads ?? 1;
  for (const [flag, n] of [['threads', threads], ['interOpThreads', interOpThreads]] as const) {
    if (!Number.isInteger(n) || n < 1) throw usageError(`${flag} must be a whole number ≥ 1, got ${n}`);
  }
  if (typeof model === 'string' && !existsSync(model)) {
    throw inputError({ file: model, problem: 'file not found', fix: 'check the path to the .onnx model' });
  }
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: threads,
    interOpNumThreads: interOpThreads,
    executionMode: 'sequential',
    graphOptimizationLevel: options.optimization ?? 'all',
    executionProviders: ['cpu'],
    logSeverityLevel: LOG_SEVERITY[options.logLevel ?? 'fatal'],
    ...(options.optimizedModelFilePath ? { optimizedModelFilePath: options.optimizedModelFilePath } : {}),
    ...(options.profile ? { enableProfiling: true, profileFilePrefix: options.profile } : {}),
    ...(options.spinning === false ? { extra: { session: { 'intra_op.allow_spinning': '0' } } } : {}),
  };
  let session: ort.InferenceSession;
  try {
    session = typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions)
      : await ort.InferenceSession.create(model, sessionOptions);
  } catch (e) {
    throw inputError({
      file: source,
      problem: `ONNX Runtime cannot load the model: ${firstLine(e)}`,
      fix: 'check that it is a valid ONNX model (slim info FILE names the first problem slimkit sees)',
    });
  }
  return new Session(session, source, threads, sessionOptions.logSeverityLevel!, options.profile);
}

class Session implements OrtModel {
  readonly inputs: OrtValueInfo[];
  readonly outputs: OrtValueInfo[];
  profileFile?: string;

  constructor(
    private readonly session: ort.InferenceSession,
    readonly source: string,
    readonly threads: number,
    private readonly logSeverityLevel: 0 | 1 | 2 | 3 | 4,
    private readonly profilePrefix?: string,
  ) {
    this.inputs = session.inputMetadata.map(toValueInfo);
    this.outputs = session.outputMetadata.map(toValueInfo);
  }

  async run(feeds: Record<string, Tensor>, options: RunOptions = {}): Promise<Record<string, Tensor>> {
    this.checkFeeds(feeds);
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new ort.Tensor(t.dtype as ort.Tensor.Type, t.data as ort.Tensor.DataType, t.dims);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      const runOptions = { logSeverityLevel: this.logSeverityLevel };
      results = options.outputs
        ? await this.session.run(ortFeeds, options.outputs, runOptions)
        : await this.session.run(ortFeeds, runOptions);
    } catch (e) {
      throw this.feedError(feeds, `ONNX Runtime failed: ${firstLine(e)}`, `the model expects ${describeInfos(this.inputs)}`);
    }
    const out: Record<string, Tensor> = {};
    for (const [name, value] of Object.entries(results)) {
      if (!ORT_TYPES.has(value.type)) {
        throw inputError({
          file: this.source,
          where: `output '${name}'`,
          problem: `has element type ${value.type}, which slimkit cannot hold`,
          fix: 'export the model with float32, int8 or uint8 outputs',
        });
      }
      out[name] = { dtype: value.type as DType, dims: value.dims, data: value.data as Tensor['data'] };
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.profilePrefix !== undefined) this.profileFile = endProfiling(this.session, this.profilePrefix);
    await this.session.release();
  }

  /** Names, dtypes and numeric dims checked before ORT sees them, so the message can say what to change. */
  private checkFeeds(feeds: Record<string, Tensor>): void {
    const expected = describeInfos(this.inputs);
    for (const name of Object.keys(feeds)) {
      if (!this.inputs.some((i) => i.name === name)) {
        throw this.feedError(feeds, `the model has no input '${name}'`, `the model expects ${expected}`);
      }
    }
    for (const info of this.inputs) {
      const t = feeds[info.name];
      if (!t) throw this.feedError(feeds, `input '${info.name}' is not fed`, `the model expects ${expected}`);
      if (!ORT_TYPES.has(t.dtype)) {
        throw this.feedError(feeds, `input '${info.name}' is ${t.dtype}, which ONNX Runtime for Node cannot take`, 'convert it to float32');
      }
      if (info.dtype && t.dtype !== info.dtype) {
        throw this.feedError(feeds, `input '${info.name}' is ${t.dtype} but the model expects ${info.dtype}`, `the model expects ${expected}`);
      }
      const dims = info.dims;
      const fits = !dims || (dims.length === t.dims.length && dims.every((d, i) => typeof d !== 'number' || d === t.dims[i]));
      if (!fits) {
        throw this.feedError(
          feeds,
          `input '${info.name}' has dims [${t.dims.join(', ')}] but the model expects [${dims!.join(', ')}]`,
          'feed data of the expected shape (resize the images or export the model for this input size)',
        );
      }
    }
  }

  private feedError(feeds: Record<string, Tensor>, problem: string, fix: string): SlimError {
    return inputError({ file: this.source, where: `feeds ${describeFeeds(feeds)}`, problem, fix });
  }
}

/**
 * Ends ORT's profiler and finds the file it wrote: onnxruntime-node's endProfiling returns no path, so
 * the newest `<prefix>_*.json` is taken.
 */
function endProfiling(session: ort.InferenceSession, prefix: string): string | undefined {
  session.endProfiling();
  const dir = path.dirname(prefix);
  const base = `${path.basename(prefix)}_`;
  const files = readdirSync(dir)
    .filter((f) => f.startsWith(base) && f.endsWith('.json'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return files[0];
}

function toValueInfo(m: ort.InferenceSession.ValueMetadata): OrtValueInfo {
  if (!m.isTensor) return { name: m.name };
  const dtype = ORT_TYPES.has(m.type) ? (m.type as DType) : undefined;
  const dims = m.shape.length > 0 ? [...m.shape] : undefined;
  return { name: m.name, ...(dtype ? { dtype } : {}), ...(dims ? { dims } : {}) };
}

export function describeInfos(infos: readonly OrtValueInfo[]): string {
  return infos.map((i) => `${i.name} ${i.dtype ?? '?'}[${i.dims ? i.dims.join(', ') : '?'}]`).join(', ');
}

function describeFeeds(feeds: Record<string, Tensor>): string {
  const list = Object.entries(feeds).map(([name, t]) => `${name} ${t.dtype}[${t.dims.join(', ')}]`);
  return list.length ? list.join(', ') : '(none)';
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0]!.trim();
}

/**
 * Encode a Graph, run it once on CPU and release the session. For tests and passes that compare a
 * graph before and after a transform; not for loops (each call builds a session).
 */
export async function runGraph(
  graph: Graph,
  feeds: Record<string, Tensor>,
  options: SessionOptions & RunOptions = {},
): Promise<Record<string, Tensor>> {
  const { model } = encodeModel(graph);
  const session = await openSession(model, { label: `graph '${graph.name}'`, ...options });
  try {
    return await session.run(feeds, options.outputs ? { outputs: options.outputs } : {});
  } finally {
    await session.close();
  }
}

/**
 * bench: every variant measured the way a user checks it. Size, gzip size, params, MACs, latency and
 * throughput come from `slim bench` itself, run as a child process on the published files (a clean
 * process: no training data in memory skewing peak RSS, no training threads competing with the
 * timing); top-1, top-5 and per-class accuracy from `evaluate` on the run's test images — the same
 * call, images and preprocessing as `slim bench --data cifar10 --limit N`.
 */
import { shellCommand } from '../../util/shell.js';
import { spawn } from 'node:child_process';
import { usableCores } from '../../util/cpu-quota.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { SlimError } from '../../errors.js';
import { decodeModel, encodeModel } from '../../onnx/io.js';
import type { Graph } from '../../onnx/graph.js';
import { exactKernelsTwin } from '../../compress/quantize/cpu.js';
import { hasFreeImageSize } from '../../onnx/image-input.js';
import { isCifar10 } from '../../data/cifar10.js';
import { evaluate, nanScoresWarning, type EvaluateResult } from '../../runtime/evaluate.js';
import { mixesImages } from '../../onnx/image-mixing.js';
import { openSession } from '../../runtime/ort.js';
import { normalizationFor } from '../../data/model-data.js';
import type { BenchRow } from '../../report/bench-row.js';
import { formatBytes, formatPercent } from '../../report/format.js';
import { correctBits } from '../../report/paired.js';
import type { VariantBench } from '../manifest.js';
import type { BenchSpec } from '../recipe.js';
import { MODELS } from '../store.js';
import type { StageContext, StageOutput } from './context.js';

export async function runBench(ctx: StageContext, spec: BenchSpec, ids: readonly string[]): Promise<StageOutput<'bench'>> {
  // In the browser, as the web bundle's page runs it: at most 4 WebAssembly threads.
  const threads = spec.threads ?? (spec.target === 'web' ? Math.min(4, ctx.threads ?? usableCores()) : (ctx.threads ?? usableCores()));
  const files = ids.map((id) => path.join(ctx.runDir, MODELS, `${id}.onnx`));
  const data = await ctx.data();
  const graphs = await Promise.all(files.map(async (file) => decodeModel(await readFile(file), { file })));
  // A model with a free height and width is measured at the run's image size (recorded for the report's command).
  const [, h, w] = data.test.imageShape;
  const imageSize = graphs.some(hasFreeImageSize) ? ([h, w] as [number, number]) : undefined;
  const args = ['bench', ...files, '--threads', String(threads), '--runs', String(spec.runs), '--warmup', String(spec.warmup_runs), '--batch', String(spec.batch),
    ...(imageSize ? ['--image-size', imageSize.join(',')] : []), ...(spec.target === 'web' ? ['--target', 'web'] : []), '--json'];
  ctx.log(`  timing (top-1 is scored below, on the run's test images): ${shellCommand(['slim', ...args.map((a) => (a.startsWith(ctx.runDir) ? path.relative(process.cwd(), a) : a))])}`);
  const timing = ctx.progress('  timing', 100, '%');
  const measured = await runJson<{ threads: number; timed_in_turns?: boolean; other_load_cores?: number; cores?: number; models: BenchRow[] }>(ctx.slimCommand, args, (percent) => timing.update(percent)).finally(() => timing.stop());
  if (measured.models.length !== ids.length) throw new Error(`slim bench returned ${measured.models.length} rows for ${ids.length} models`);

  const score = async (model: string | Uint8Array, graph: Graph, label: string): Promise<EvaluateResult> => {
    const session = await openSession(model, { threads });
    const bar = ctx.progress(`  ${label}`, data.test.labels.length, 'img');
    try {
      return await evaluate(session, data.test, { normalization: normalizationFor(graph, {}), keepPredictions: true, oneImagePerRun: mixesImages(graph), onProgress: (d) => bar.update(d) });
    } finally {
      bar.stop();
      await session.close();
    }
  };
  const variants: VariantBench[] = [];
  for (const [i, id] of ids.entries()) {
    const graph = graphs[i]!;
    const scored = await score(files[i]!, graph, `eval ${id}`);
    // This CPU's int8 sums saturate: the top-1 the model has everywhere else, beside this CPU's.
    const twin = exactKernelsTwin(graph);
    const exactScored = twin ? await score(encodeModel(twin).model, twin, `eval ${id} (exact int8 kernels)`) : undefined;
    const exact = exactScored?.top1;
    const nan = nanScoresWarning(id, scored);
    if (nan) ctx.log(`  ${nan}`);
    const v = ctx.variants.get(id)!;
    const row = measured.models[i]!;
    variants.push({
      ...row,
      file: path.join(MODELS, `${id}.onnx`),
      id,
      kind: v.kind,
      ...(v.from ? { from: v.from } : {}),
      sha256: v.model.sha256,
      top1: scored.top1,
      ...(exactScored ? { top1_exact_kernels: exactScored.top1, correct_exact_kernels: correctBits(exactScored.predictions!, data.test.labels, exactScored.count) } : {}),
      top5: scored.top5,
      eval_images: scored.count,
      per_class: scored.perClass,
      correct: correctBits(scored.predictions!, data.test.labels, scored.count),
      ...(scored.nanImages ? { nan_images: scored.nanImages } : {}),
    });
    ctx.log(`  ${id}: ${formatBytes(row.size_bytes)}, p50 ${row.latency_ms.p50.toFixed(2)} ms, top-1 ${formatPercent(scored.top1)}${exact !== undefined ? ` (${formatPercent(exact)} on exact int8 kernels)` : ''}`);
  }
  return {
    result: {
      threads: measured.threads,
      runs: spec.runs,
      warmup_runs: spec.warmup_runs,
      batch: spec.batch,
      ...(imageSize ? { image_size: imageSize } : {}),
      ...(spec.target ? { target: spec.target } : {}),
      ...(measured.models[0]?.runtime ? { runtime: measured.models[0].runtime } : {}),
      ...(measured.timed_in_turns ? { timed_in_turns: true } : {}),
      ...(measured.other_load_cores !== undefined && measured.cores ? { other_load_cores: measured.other_load_cores, cores: measured.cores } : {}),
      eval_data: isCifar10(data.name) ? `${data.name} test, first ${data.test.labels.length} images` : `${data.name} test, ${data.test.labels.length} images taken across the classes`,
      variants,
    },
    gpuSeconds: 0,
  };
}

/**
 * The line of a failed `slim bench`'s stderr that says why: its `slim: …` error, else the thrown error's
 * line (an uncaught one ends with Node's "Node.js v20…", which says nothing), else the last line.
 */
export function failureLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.findLast((l) => l.startsWith('slim: '))?.replace(/^slim: /, '') ?? lines.find((l) => /^\w*Error\b/.test(l)) ?? lines.filter((l) => !/^Node\.js v\d/.test(l)).at(-1) ?? '';
}

/**
 * Runs `slim <args>` and parses its one JSON document. Its progress lines (`…: 42/100 % …`, written
 * every few seconds to a pipe) move `onPercent`; the rest of its stderr is kept for an error's message.
 */
function runJson<T>(slim: readonly string[], args: string[], onPercent: (percent: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    // An IPC channel: the benchmark stops when this process ends, however it ends (exitWithParent).
    const child = spawn(slim[0]!, [...slim.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    // Stopped (Ctrl-C, SIGTERM) while it times, the run exits: so does the benchmark, or it would go on
    // loading the machine the next run measures on.
    const stop = (): void => void child.kill('SIGTERM');
    process.once('exit', stop);
    child.once('close', () => process.off('exit', stop));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      const text = d.toString();
      stderr += text;
      const percents = [...text.matchAll(/: (\d+)\/100 %/g)];
      if (percents.length) onPercent(Number(percents.at(-1)![1]));
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new SlimError({ problem: `slim bench failed (exit ${code}): ${failureLine(stderr)}`, fix: 'run the printed `slim bench` command to see the problem' }));
        return;
      }
      try {
        resolve(JSON.parse(stdout) as T);
      } catch (e) {
        reject(new Error(`slim bench printed no JSON document (${(e as Error).message})`));
      }
    });
  });
}

import type { Command } from 'commander';
import { loadModelForRuntime } from '../../onnx/validate.js';
import type { BenchmarkPhase } from '../../runtime/benchmark.js';
import { benchmarkInChild } from '../../runtime/benchmark-isolated.js';
import { evaluate } from '../../runtime/evaluate.js';
import { openSession } from '../../runtime/ort.js';
import { loadedModelStats } from '../../runtime/stats.js';
import { formatBytes, formatCount, formatPercent, table } from '../../report/format.js';
import { checkCifarImageSize, checkDataDir, imageSizeFor, requireMeasurableSize, loadDataset, normalizationFor, type DataOptions, modelChannels } from '../dataset.js';
import { log, logUnknownOps, printResult, progress, type CommonOptions } from '../output.js';
import { positiveInt, withData, withImageSize, withJson, withThreads } from '../options.js';
import { fixedBatchOf, imageInputShapes } from '../../onnx/image-input.js';
import { dataInputs } from '../../onnx/graph.js';
import type { ImageSet } from '../../data/types.js';

interface BenchOptions extends CommonOptions, DataOptions {
  imageSize?: [number, number];
  threads?: number;
  batch: number;
  runs: number;
  warmup: number;
}

/** One row of the comparison: the seed article's size / latency / accuracy table, measured. */
export interface BenchRow {
  file: string;
  size_bytes: number;
  gzip_bytes: number;
  params: number;
  nonzero_params: number;
  /** Per image; null when the input's H×W is free and no size is known. */
  macs: number | null;
  latency_ms: { p50: number; p90: number; p99: number; mean: number };
  /** Images per latency run: 1, or the batch a model exported for one batch size takes. */
  latency_batch: number;
  throughput_ips: number;
  throughput_batch: number;
  peak_rss_bytes: number;
  threads: number;
  top1?: number;
  eval_images?: number;
}

export function registerBench(program: Command): void {
  withThreads(
    withImageSize(withJson(
      withData(
        program
          .command('bench')
          .description('compare models side by side: size, gzip size, params, MACs, batch-1 latency, throughput and (with --data) top-1')
          .argument('<models...>', 'one or more .onnx files')
          .option('--batch <n>', 'batch size for the throughput measurement', positiveInt('--batch'), 32)
          .option('--runs <n>', 'timed batch-1 runs per model (at least 50)', positiveInt('--runs'), 100)
          .option('--warmup <n>', 'untimed runs first', positiveInt('--warmup'), 10),
        { required: false },
      ),
    )),
  )
    .addHelpText('after', '\nExamples:\n  slim bench fp32.onnx int8.onnx --threads 2\n  slim bench a.onnx b.onnx --data cifar10 --limit 2000 --json')
    .action(async (files: string[], options: BenchOptions, command: Command) => {
      checkDataDir(options);
      const threads = options.threads ?? (await import('node:os')).availableParallelism();
      const rows: BenchRow[] = [];
      // One copy of the images per input size: models of different sizes get their own resize.
      const sets = new Map<string, Promise<ImageSet>>();
      for (const file of files) {
        const loaded = await loadModelForRuntime(file);
        const { graph } = loaded;
        logUnknownOps(file, loaded.unknownOps);
        const size = imageSizeFor(graph, file, options.imageSize);
        requireMeasurableSize(graph, file, size);
        checkCifarImageSize(graph, options.data, size);
        // Checked before the timing runs: a wrong --mean for this model should not cost them.
        const normalization = options.data ? normalizationFor(graph, options) : undefined;
        const stats = await loadedModelStats(loaded, size);
        const inputShapes = size ? imageInputShapes(graph, size) : undefined;
        // A model exported for one batch size (torch.onnx without dynamic_axes) runs at that batch only.
        const fixedBatch = fixedBatchOf(dataInputs(graph)[0]?.shape);
        if (fixedBatch !== undefined && fixedBatch !== 1) log(`note: ${file} takes batches of ${fixedBatch} only: its latency is that of a batch of ${fixedBatch}`);
        if (fixedBatch !== undefined && fixedBatch !== options.batch && command.getOptionValueSource('batch') === 'cli') {
          log(`note: ${file} takes batches of ${fixedBatch} only: its throughput is measured at batch ${fixedBatch}, not --batch ${options.batch}`);
        }
        const bar = progress(`bench ${file}`, 100, '%');
        // A process per model: its peak RSS and latency owe nothing to the models before it.
        const timing = await benchmarkInChild(file, {
          threads,
          batch: fixedBatch ?? 1,
          warmupRuns: options.warmup,
          runs: Math.max(options.runs, 50),
          throughputBatch: fixedBatch ?? options.batch,
          ...(inputShapes ? { inputShapes } : {}),
          onProgress: (done, total, phase) => bar.update(Math.round(benchPercent(done, total, phase)), { phase }),
        });
        bar.stop();
        const row: BenchRow = {
          file,
          size_bytes: stats.sizeBytes,
          gzip_bytes: stats.gzipBytes,
          params: stats.params,
          nonzero_params: stats.nonzeroParams,
          macs: stats.macs,
          latency_ms: { p50: timing.latencyMs.p50, p90: timing.latencyMs.p90, p99: timing.latencyMs.p99, mean: timing.latencyMs.mean },
          latency_batch: timing.batch,
          throughput_ips: timing.throughputIps,
          throughput_batch: timing.throughputBatch,
          peak_rss_bytes: timing.peakRssBytes,
          threads,
        };
        if (options.data) {
          const channels = modelChannels(graph);
          const key = `${size?.join('x') ?? 'as stored'}/${channels}`;
          if (!sets.has(key)) sets.set(key, loadDataset(options, size, channels));
          const set = await sets.get(key)!;
          const model = await openSession(file, { threads });
          const total = Math.min(options.limit ?? Infinity, set.labels.length);
          const evalBar = progress(`eval ${file}`, total, 'img');
          try {
            const result = await evaluate(model, set, {
              normalization: normalization!,
              ...(options.limit !== undefined ? { limit: options.limit } : {}),
              onProgress: (done) => evalBar.update(done),
            });
            row.top1 = result.top1;
            row.eval_images = result.count;
          } finally {
            evalBar.stop();
            await model.close();
          }
        }
        log(`${file}: p50 ${row.latency_ms.p50.toFixed(2)} ms${row.top1 !== undefined ? `, top-1 ${formatPercent(row.top1)}` : ''}`);
        rows.push(row);
      }
      printResult(options, { threads, models: rows }, () => renderBenchTable(rows));
    });
}

/** One bar over the three benchmark phases: warm-up 10 %, latency runs 60 %, throughput 30 %. */
function benchPercent(done: number, total: number, phase: BenchmarkPhase): number {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  if (phase === 'warmup') return 10 * fraction;
  if (phase === 'latency') return 10 + 60 * fraction;
  return 70 + 30 * fraction;
}

export function renderBenchTable(rows: BenchRow[]): string {
  const withTop1 = rows.some((r) => r.top1 !== undefined);
  const headers = ['model', 'size', 'gzip', 'params', 'MACs', 'p50 ms', 'p90 ms', 'p99 ms', 'img/s', ...(withTop1 ? ['top-1'] : [])];
  const body = rows.map((r) => [
    r.file,
    formatBytes(r.size_bytes),
    formatBytes(r.gzip_bytes),
    formatCount(r.params),
    formatCount(r.macs),
    // A latency measured on a batch of several images says so.
    `${r.latency_ms.p50.toFixed(2)}${r.latency_batch > 1 ? ` (batch ${r.latency_batch})` : ''}`,
    r.latency_ms.p90.toFixed(2),
    r.latency_ms.p99.toFixed(2),
    r.throughput_ips.toFixed(0),
    ...(withTop1 ? [r.top1 !== undefined ? formatPercent(r.top1) : ''] : []),
  ]);
  return table(headers, body);
}

import path from 'node:path';
import { writeFileAtomic } from '../../onnx/io.js';
import { exactKernelsTop1 } from '../exact-kernels.js';
import { checkOutputFile } from '../paths.js';
import { Option, type Command } from 'commander';
import { usageError } from '../../errors.js';
import { BENCH_TARGETS, benchmarkInBrowser, computesReduced, findBrowser, type BenchTarget, type WebBenchmarkResult } from '../../runtime/benchmark-web.js';
import { ortVersion } from '../../runtime/ort.js';
import { loadModelForRuntime } from '../../onnx/validate.js';
import { withOpaqueFacts } from '../../runtime/opaque-types.js';
import type { BenchmarkPhase, BenchmarkResult } from '../../runtime/benchmark.js';
import { benchmarkInChildren } from '../../runtime/benchmark-isolated.js';
import { AUTO_RUNS, LATENCY_BLOCK, type RunCount } from '../../runtime/benchmark-turns.js';
import { evaluate, nanScoresWarning } from '../../runtime/evaluate.js';
import { imageMixingNodes, oneImagePerRunNote } from '../../onnx/image-mixing.js';
import { openSession } from '../../runtime/ort.js';
import { usableCores } from '../../util/cpu-quota.js';
import { loadedModelStats } from '../../runtime/stats.js';
import { formatBytes, formatCount, formatPercent, formatPointChange, table } from '../../report/format.js';
import { comparePaired, correctBits, describePaired } from '../../report/paired.js';
import { latencyRatio } from '../../report/latency-ratio.js';
import { benchChartSvg } from '../../report/bench-chart.js';
import type { BenchRow } from '../../report/bench-row.js';
import { NOISY_SPREAD } from '../../report/recommend.js';
import { isCifar10 } from '../../data/cifar10.js';
import { describeResize } from '../../data/image-folder.js';
import { checkDataDir, checkImageSize, resizeWithoutData, chosenImageSize, requireMeasurableSize, labelledSource, openDataset, normalizationFor, recordedClasses, positionalScoringNote, heldDefaultNotes, type DataOptions, modelChannels } from '../../data/model-data.js';
import { chosenResize, recordedResize } from '../../data/model-resize.js';
import { log, progress } from '../../util/terminal.js';
import { logUnknownOps, printResult, type CommonOptions } from '../output.js';
import { intAtLeast, nonNegativeInt, oneOf, positiveInt, withData, withImageSize, withJson, withResize, withThreads } from '../options.js';
import { fixedBatchOf, hasFreeImageSize, imageInputShapes, pinImageSize } from '../../onnx/image-input.js';
import { dataInputs } from '../../onnx/graph.js';
import { maxHeldBytes, type ImageSource } from '../../data/stream.js';
import { otherLoadNote } from '../../runtime/cpu-load.js';
import { exactKernelsTwin, saturationNote } from '../../compress/quantize/cpu.js';

interface BenchOptions extends CommonOptions, DataOptions {
  imageSize?: [number, number];
  threads?: number;
  target: BenchTarget;
  browser?: string;
  chart?: string;
  batch: number;
  runs: RunCount;
  warmup: number;
}

const runCount = (value: string): RunCount => (value === 'auto' ? 'auto' : intAtLeast('--runs', 50, 'p99 needs at least 50 samples')(value));

export function registerBench(program: Command): void {
  withThreads(withResize(
    withImageSize(withJson(
      withData(
        program
          .command('bench')
          .description('compare models side by side: size, gzip size, params, MACs, batch-1 latency and throughput (the models timed in turns, each in a process of its own), and with --data top-1 with a paired test')
          .argument('<models...>', 'one or more .onnx files')
          .option('--batch <n>', 'batch size for the throughput measurement', positiveInt('--batch'), 32)
          .option('--runs <n|auto>', `timed runs of one image per model (a fixed-batch model: of its batch), at least 50 (below 100, p99 is the slowest run); auto: ${AUTO_RUNS.min}, or more for fast models — about ${AUTO_RUNS.seconds} s of the slowest one's runs, at most ${AUTO_RUNS.max} (sub-millisecond models need the rounds for steady ratios)`, runCount, 'auto' as RunCount)
          .option('--warmup <n>', 'untimed runs first (0: none; with several models, each turn also starts with one untimed run)', nonNegativeInt('--warmup'), 10)
          .addOption(new Option('--target <target>', "where the model is timed: 'host' (onnxruntime-node on this machine) or 'web' (onnxruntime-web's WebAssembly in headless Chromium/Chrome, as the web bundle runs it)").choices(BENCH_TARGETS).argParser(oneOf('--target', BENCH_TARGETS)).default('host'))
          .option('--browser <path>', 'Chromium or Chrome for --target web (default: $SLIM_BROWSER, else the usual install paths)')
          .option('--chart <file.svg>', 'also draw top-1 against latency and against size, with the Pareto fronts, as an SVG (needs --data)'),
        { required: false },
      ),
    )),
  ))
    .addHelpText('after', '\nExamples:\n  slim bench fp32.onnx int8.onnx --threads 2\n  slim bench a.onnx b.onnx --data cifar10 --limit 2000 --json\n  slim bench fp32.onnx int8.onnx --target web     # in the browser: WebAssembly, up to 4 threads')
    .action(async (given: string[], options: BenchOptions, command: Command) => {
      exitWithParent();
      // The same file twice (a glob and a name, a path spelled two ways) is timed once: a row beside its own copy compares nothing.
      const files: string[] = [];
      for (const f of given) {
        if (files.some((g) => path.resolve(g) === path.resolve(f))) log(`note: ${f} is named twice: benched once`);
        else files.push(f);
      }
      checkDataDir(options);
      if (options.resize && !options.data) throw resizeWithoutData();
      const web = options.target === 'web';
      if (options.browser !== undefined && !web) throw usageError('--browser applies to --target web only', 'add --target web, or drop --browser');
      if (web) findBrowser(options.browser); // before any model is read: no browser, no web benchmark
      if (options.chart !== undefined) checkChartPath(options.chart, options.data);
      const cores = usableCores();
      // The web bundle's page runs min(4, cores) threads; onnxruntime-web gains little beyond that.
      const threads = options.threads ?? (web ? Math.min(4, cores) : cores);
      const hostRuntime = `onnxruntime-node ${ortVersion().node}`;
      const rows: BenchRow[] = [];
      // One copy of the images per input size: models of different sizes get their own resize. Held
      // decoded up to 4 GiB; a larger split is read a chunk at a time by each model's scoring.
      const sources = new Map<string, Promise<ImageSource>>();
      // Every model is checked before any is timed — its size, mean/std, and the data's images and class
      // names: a problem with the last one should not cost the timing of the others (and leave no table).
      const checked = [];
      // Models without class names, per image set: one note each names them all.
      const positional = new Map<ImageSource, string[]>();
      const defaults = heldDefaultNotes(options);
      for (const file of files) {
        // Ops slimkit has no definition for: their output shapes measured, the other ops' MACs are counted.
        const loaded = await withOpaqueFacts(await loadModelForRuntime(file), file);
        const { graph } = loaded;
        logUnknownOps(file, loaded.unknownOps, { macsCounted: loaded.facts !== undefined });
        // CIFAR-10's 32×32 for a free-size model that records no size, as the commands that write models take it.
        const { size } = chosenImageSize(graph, file, options.imageSize, [options.data]);
        requireMeasurableSize(graph, file, size);
        if (options.data) defaults.hold(graph, file);
        const normalization = options.data ? normalizationFor(graph, options, file) : undefined;
        // So are the data's class names against the model's: one copy of the images per input size,
        // each model's labels following the class names it records.
        let set: ImageSource | undefined;
        if (options.data) {
          const channels = modelChannels(graph);
          // A folder's images as each model records they are resized (slimkit.resize), unless --resize says.
          const recorded = isCifar10(options.data) ? undefined : recordedResize(graph, file);
          const resize = options.resize ?? recorded?.mode;
          const key = `${size?.join('x') ?? 'as stored'}/${channels}/${resize ? describeResize(resize) : ''}`;
          if (!sources.has(key)) sources.set(key, openStreamedNote(openDataset({ ...options, splitFlag: true, recordedResize: recorded }, size, channels, undefined, { wholeUpTo: maxHeldBytes() }), options.limit));
          else chosenResize(options.resize, recorded); // its note, for a model whose images are already read
          const classes = recordedClasses(graph, file);
          set = labelledSource(await sources.get(key)!, classes);
          // Before any timing: a model the images do not fit failed only at its evaluation, minutes in.
          // At the size it is measured at: a free-size model's --image-size, not the size it records.
          checkImageSize(size && hasFreeImageSize(graph) ? pinImageSize(graph, size) : graph, set, file, '--data', 'eval');
          if (!classes) positional.set(set, [...(positional.get(set) ?? []), file]);
        }
        const stats = await loadedModelStats(loaded, size);
        // A model exported for one batch size (torch.onnx without dynamic_axes) runs at that batch only.
        const fixedBatch = fixedBatchOf(dataInputs(graph)[0]?.shape);
        if (fixedBatch !== undefined && fixedBatch !== 1) log(`note: ${file} takes batches of ${fixedBatch} only: its latency is that of a batch of ${fixedBatch}`);
        if (fixedBatch !== undefined && fixedBatch !== options.batch && command.getOptionValueSource('batch') === 'cli') {
          log(`note: ${file} takes batches of ${fixedBatch} only: its throughput is measured at batch ${fixedBatch}, not --batch ${options.batch}`);
        }
        const inputShapes = size ? imageInputShapes(graph, size) : undefined;
        const perModel = { batch: fixedBatch ?? 1, throughputBatch: fixedBatch ?? options.batch, ...(inputShapes ? { inputShapes } : {}) };
        const oneImagePerRun = imageMixingNodes(graph);
        const mixingNote = set ? oneImagePerRunNote(file, oneImagePerRun) : undefined;
        if (mixingNote) log(mixingNote);
        // Top-1 is scored with onnxruntime-node on this CPU, --target web included.
        const saturation = set ? saturationNote(graph, file) : undefined;
        if (saturation) log(saturation);
        checked.push({ file, loaded, graph, normalization, set, stats, perModel, oneImagePerRun: oneImagePerRun.length > 0 });
      }
      for (const line of defaults.lines()) log(line);
      for (const [set, unnamed] of positional) {
        const note = positionalScoringNote(unnamed, set);
        if (note) log(note);
      }
      const shared = { threads, warmupRuns: options.warmup, runs: options.runs };
      // Several models take turns (runtime/benchmark-turns.ts): a change in the machine's load falls on
      // every model alike.
      const timedInTurns = files.length > 1;
      let timings: (BenchmarkResult & { runtime: string } | WebBenchmarkResult)[];
      const label = files.length === 1 ? `bench ${files[0]}` : `bench ${files.length} models in turns`;
      const bar = progress(web ? `${label} (browser)` : label, 100, '%');
      const onProgress = (done: number, total: number, phase: BenchmarkPhase): void => bar.update(Math.round(benchPercent(done, total, phase)), { phase });
      try {
        if (web) {
          // A page per model in one browser, as the web bundle holds one model per page.
          timings = await benchmarkInBrowser(
            checked.map(({ file, loaded, graph, perModel }) => ({
              file,
              ...perModel,
              inputs: dataInputs(graph).map((v) => ({ name: v.name, dtype: v.dtype, ...(v.shape ? { dims: v.shape } : {}) })),
              externalFiles: loaded.externalFiles,
              reducedPrecision: computesReduced(graph),
            })),
            { ...shared, ...(options.browser ? { browser: options.browser } : {}), onProgress },
          );
        } else {
          // A process per model: its peak RSS owes nothing to the others.
          const results = await benchmarkInChildren(checked.map(({ file, perModel }) => ({ file, options: perModel })), { ...shared, onProgress });
          timings = results.map((r) => ({ ...r, runtime: hostRuntime }));
        }
      } finally {
        bar.stop();
      }
      // Read by the timing itself, before its processes closed (the same window for every model).
      const load = timings[0]?.otherLoad;
      for (const [i, { file, graph, normalization, set, stats, oneImagePerRun }] of checked.entries()) {
        const timing = timings[i]!;
        const row: BenchRow = {
          file,
          size_bytes: stats.sizeBytes,
          gzip_bytes: stats.gzipBytes,
          params: stats.params,
          nonzero_params: stats.nonzeroParams,
          macs: stats.macs,
          ...(stats.unknownOps.length ? { macs_without_ops: stats.unknownOps } : {}),
          latency_ms: { p50: timing.latencyMs.p50, p90: timing.latencyMs.p90, p99: timing.latencyMs.p99, mean: timing.latencyMs.mean },
          latency_batch: timing.batch,
          latency_runs: timing.runs,
          warmup_runs: options.warmup,
          throughput_ips: timing.throughputIps,
          throughput_batch: timing.throughputBatch,
          peak_rss_bytes: 'peakRssBytes' in timing ? timing.peakRssBytes : null,
          threads: timing.threads,
          target: options.target,
          runtime: timing.runtime,
          ...('maxAbsDiffVsNode' in timing ? { max_abs_diff_vs_node: timing.maxAbsDiffVsNode } : {}),
          ...(timedInTurns ? { turn_p50_ms: timing.turnP50Ms.map((ms) => Number(ms.toFixed(4))) } : {}),
        };
        if ('crossOriginIsolated' in timing && !timing.crossOriginIsolated) log(`note: the benchmark page was not cross-origin isolated: onnxruntime-web ran 1 thread`);
        if (set) {
          const model = await openSession(file, { threads });
          const total = Math.min(options.limit ?? Infinity, set.count);
          const evalBar = progress(`eval ${file}`, total, 'img');
          try {
            const result = await evaluate(model, set, {
              normalization: normalization!,
              keepPredictions: true,
              oneImagePerRun,
              ...(options.limit !== undefined ? { limit: options.limit } : {}),
              onProgress: (done) => evalBar.update(done),
            });
            row.top1 = result.top1;
            row.eval_images = result.count;
            // This CPU's int8 sums saturate: the top-1 the model has everywhere else, beside this CPU's.
            const twin = exactKernelsTwin(graph);
            if (twin) row.top1_exact_kernels = await exactKernelsTop1(twin, set, { normalization: normalization!, threads, oneImagePerRun, ...(options.limit !== undefined ? { limit: options.limit } : {}), label: `eval ${file} (exact int8 kernels)` });
            row.correct = correctBits(result.predictions!, result.labels!, result.count);
            const nan = nanScoresWarning(file, result);
            if (nan) {
              log(nan);
              row.nan_images = result.nanImages;
            }
          } finally {
            evalBar.stop();
            await model.close();
          }
        }
        log(`${file}: p50 ${row.latency_ms.p50.toFixed(2)} ms${row.top1 !== undefined ? `, top-1 ${formatPercent(row.top1)}${row.top1_exact_kernels !== undefined ? ` (${formatPercent(row.top1_exact_kernels)} on exact int8 kernels)` : ''}` : ''}`);
        rows.push(row);
      }
      if (web && options.data) log('note: top-1 is measured with onnxruntime-node on this machine; the timings are the browser\'s');
      const otherLoad = load ? { other_load_cores: Number(load.otherCores.toFixed(2)), cores: load.cores } : {};
      printResult(options, { threads, target: options.target, timed_in_turns: timedInTurns, ...otherLoad, models: rows, comparisons: compareToFirst(rows) }, () => renderBenchTable(rows, timedInTurns, options.runs));
      const busy = otherLoadNote(load);
      if (busy) log(busy);
      if (options.chart !== undefined) {
        await writeFileAtomic(options.chart, new TextEncoder().encode(await benchChartSvg(rows.map((r) => ({ ...r, top1: r.top1! })))));
        log(`chart: ${options.chart}`);
      }
    });
}

/** A split too large to hold decoded: said once, when opened (each model's scoring reads it again). */
async function openStreamedNote(opening: Promise<ImageSource>, limit: number | undefined): Promise<ImageSource> {
  const source = await opening;
  const [c, h, w] = source.imageShape;
  const images = Math.min(source.count, limit ?? Infinity);
  if (images * c * h * w > maxHeldBytes()) log(`note: ${source.name}'s ${images} images are too many to hold decoded (${(images * c * h * w / 2 ** 30).toFixed(1)} GiB): each model's scoring reads them again (--limit N keeps fewer in memory)`);
  return source;
}

/** Before any timing: a chart needs top-1 (--data) and a writable .svg path. */
function checkChartPath(file: string, data: string | undefined): void {
  if (!data) throw usageError('--chart plots top-1 against latency and size, and top-1 needs --data', 'add --data cifar10 (or an image folder), or drop --chart');
  if (!file.toLowerCase().endsWith('.svg')) throw usageError(`--chart writes an SVG file, got '${file}'`, 'name it something.svg');
  checkOutputFile(file, '--chart');
}

/** One bar over the three benchmark phases: warm-up 10 %, latency runs 60 %, throughput 30 %. */
function benchPercent(done: number, total: number, phase: BenchmarkPhase): number {
  const fraction = total > 0 ? Math.min(1, done / total) : 1;
  if (phase === 'warmup') return 10 * fraction;
  if (phase === 'latency') return 10 + 60 * fraction;
  return 70 + 30 * fraction;
}

/** A model against the first one: in bench's text, and its JSON's `comparisons` for scripts. */
export interface BenchComparison {
  file: string;
  versus: string;
  /** Per round of turns (load changes fall on both alike); absent when they did not take turns at one batch. */
  latency?: { ratio: number; quartiles: [number, number]; rounds: number };
  /** On the same images: the change and McNemar's exact p over the images they disagree on. */
  top1?: { change_pt: number; only_this_right: number; only_versus_right: number; p: number };
}

export function compareToFirst(rows: readonly BenchRow[]): BenchComparison[] {
  const first = rows[0];
  if (!first) return [];
  return rows.slice(1).map((r) => {
    const { ratio, spread } = latencyRatio(r, first);
    // A model that takes a fixed batch of several images is timed per batch: not comparable per image.
    const latency = spread && r.latency_batch === first.latency_batch ? { ratio, quartiles: spread, rounds: r.turn_p50_ms!.length } : undefined;
    const paired = r.top1 !== undefined && first.top1 !== undefined && r.eval_images !== undefined && first.eval_images !== undefined
      ? comparePaired({ correct: r.correct, eval_images: r.eval_images }, { correct: first.correct, eval_images: first.eval_images })
      : undefined;
    const top1 = paired ? { change_pt: Number(((r.top1! - first.top1!) * 100).toFixed(9)), only_this_right: paired.onlyFirst, only_versus_right: paired.onlySecond, p: paired.p } : undefined;
    return { file: r.file, versus: first.file, ...(latency ? { latency } : {}), ...(top1 ? { top1 } : {}) };
  });
}

export function renderBenchTable(rows: BenchRow[], timedInTurns = false, runsAsked?: RunCount): string {
  const withTop1 = rows.some((r) => r.top1 !== undefined);
  // Throughput depends on the batch: when the models were not all measured at one, each row names its own.
  const batches = new Set(rows.map((r) => r.throughput_batch));
  const headers = ['model', 'size', 'gzip', 'params', 'MACs', 'p50 ms', 'p90 ms', 'p99 ms', batches.size > 1 ? 'img/s (batch)' : `img/s (batch ${[...batches][0] ?? ''})`, ...(withTop1 ? ['top-1'] : [])];
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
    batches.size > 1 ? `${r.throughput_ips.toFixed(0)} (${r.throughput_batch})` : r.throughput_ips.toFixed(0),
    ...(withTop1 ? [r.top1 !== undefined ? `${formatPercent(r.top1)}${r.top1_exact_kernels !== undefined ? ` (exact: ${formatPercent(r.top1_exact_kernels)})` : ''}` : ''] : []),
  ]);
  const exact = rows.filter((r) => r.top1_exact_kernels !== undefined).map((r) => r.file);
  const web = rows.find((r) => r.target === 'web');
  const noisy = rows.filter((r) => r.latency_ms.p90 >= NOISY_SPREAD * r.latency_ms.p50).map((r) => r.file);
  const comparisons = compareToFirst(rows);
  const latency = comparisons.flatMap((c) => (c.latency ? [`latency of ${c.file} vs ${c.versus}: ×${c.latency.ratio.toFixed(2)}, the median over ${c.latency.rounds} rounds of turns (half of them between ×${c.latency.quartiles[0].toFixed(2)} and ×${c.latency.quartiles[1].toFixed(2)})`] : []));
  const paired = comparisons.flatMap((c) => (c.top1 ? [`top-1 of ${c.file} vs ${c.versus}: ${formatPointChange(c.top1.change_pt)}; ${describePaired({ onlyFirst: c.top1.only_this_right, onlySecond: c.top1.only_versus_right, p: c.top1.p }, [c.file, c.versus])}`] : []));
  const timing = web
    ? `\ntimed in the browser: ${web.runtime}, ${web.threads} thread(s)${timedInTurns ? `, in turns of ${LATENCY_BLOCK} runs, each model in a page of its own: a change in the machine's load falls on every model alike` : ''}`
    : timedInTurns ? `\ntimed in turns of ${LATENCY_BLOCK} runs, each model in a process of its own: a change in the machine's load falls on every model alike` : '';
  const runs = rows[0]?.latency_runs;
  // A model exported for a fixed batch runs that many images per run, however few are wanted.
  const batched = rows.filter((r) => r.latency_batch > 1).map((r) => `${r.file}: ${r.latency_batch}`);
  // The conditions the figures hold for: runs, warm-up and threads (a trial found the thread count only in --json).
  const warmup = rows[0]?.warmup_runs;
  const threadCounts = [...new Set(rows.map((r) => r.threads))];
  const conditions = `${warmup !== undefined ? ` after ${warmup} untimed warm-up run${warmup === 1 ? '' : 's'}` : ''}${web ? '' : `, on ${threadCounts.join('/')} thread${threadCounts.length === 1 && threadCounts[0] === 1 ? '' : 's'}`}`;
  const counted = runs !== undefined ? `\nlatency: ${runs} timed runs per model${conditions}, of one image each${batched.length ? ` (of its fixed batch for ${batched.join(', ')})` : ''}${runsAsked === 'auto' ? ` (--runs auto: about ${AUTO_RUNS.seconds} s of the slowest model's runs, ${AUTO_RUNS.min} to ${AUTO_RUNS.max})` : ''}` : '';
  const partial = rows.filter((r) => r.macs !== null && r.macs_without_ops?.length).map((r) => `${r.file} (${r.macs_without_ops!.join(', ')})`);
  const partialLine = partial.length ? `\nMACs leave out the ops slimkit has no definition for: ${partial.join(', ')}` : '';
  const exactLine = exact.length ? `\nexact: top-1 of ${exact.join(', ')} on exact int8 kernels (arm64, x64 with VNNI or AMX, the browser), scored here with the weights as uint8 — this CPU's int8 sums saturate, and the paired tests compare this CPU's` : '';
  return table(headers, body) + [...latency, ...paired].map((l) => `\n${l}`).join('') + partialLine + exactLine + counted + timing +
    (noisy.length ? `\nnote: p90 is ${NOISY_SPREAD}× p50 or more for ${noisy.join(', ')}: the machine was busy while timing; measure again on a quiet machine before comparing small differences` : '');
}

/**
 * Started by `slim run` (with an IPC channel): when that process ends — even by kill -9, which runs no
 * exit handler — the channel closes and the benchmark stops with it, its timing children following
 * (they exit when their channel to it closes). Left running, it measured on for minutes as an orphan.
 */
function exitWithParent(): void {
  if (!process.channel) return;
  process.channel.unref(); // the channel alone must not keep a finished benchmark running
  process.once('disconnect', () => process.exit(143));
}

import type { Command } from 'commander';
import { loadModelForRuntime } from '../../onnx/validate.js';
import { openSession } from '../../runtime/ort.js';
import { evaluate, nanScoresWarning, type ClassAccuracy } from '../../runtime/evaluate.js';
import { imageMixingNodes, oneImagePerRunNote } from '../../onnx/image-mixing.js';
import { formatClassAccuracy, formatPercent, table } from '../../report/format.js';
import { SHOWN_CLASSES } from '../../report/class-selection.js';
import { checkDataDir, chosenImageSize, openDataset, normalizationFor, recordedClasses, positionalScoringNote, type DataOptions, modelChannels } from '../../data/model-data.js';
import { recordedResize } from '../../data/model-resize.js';
import { logUnknownOps, printResult, type CommonOptions } from '../output.js';
import { log, progress } from '../../util/terminal.js';
import { positiveInt, withData, withImageSize, withJson, withResize, withThreads } from '../options.js';
import { exactKernelsTwin, saturationNote } from '../../compress/quantize/cpu.js';
import { exactKernelsTop1 } from '../exact-kernels.js';

interface EvalOptions extends CommonOptions, DataOptions {
  imageSize?: [number, number];
  batch: number;
  threads?: number;
}

export function registerEval(program: Command): void {
  withThreads(withResize(
    withImageSize(withJson(
      withData(
        program
          .command('eval')
          .description('measure top-1 / top-5 accuracy of an ONNX classifier with ONNX Runtime')
          .argument('<model>', 'an .onnx file')
          .option('--batch <n>', 'images per ONNX Runtime run', positiveInt('--batch'), 256),
        { required: true },
      ),
    )),
  ))
    .addHelpText('after', '\nExamples:\n  slim eval model.onnx --data cifar10 --data-dir ../shared/data/cifar10\n  slim eval model.onnx --data cifar10 --limit 1000 --json')
    .action(async (file: string, options: EvalOptions, command: Command) => {
      checkDataDir(options);
      const { graph, unknownOps } = await loadModelForRuntime(file);
      logUnknownOps(file, unknownOps);
      const { size } = chosenImageSize(graph, file, options.imageSize, [options.data]);
      const classes = recordedClasses(graph, file);
      const started = performance.now();
      const set = await openDataset({ ...options, splitFlag: true, recordedResize: recordedResize(graph, file) }, size, modelChannels(graph), classes);
      const positional = classes ? undefined : positionalScoringNote([file], set);
      if (positional) log(positional);
      const saturation = saturationNote(graph, file);
      if (saturation) log(saturation);
      const mixing = imageMixingNodes(graph);
      const mixingNote = oneImagePerRunNote(file, mixing);
      if (mixingNote) log(`${mixingNote}${command.getOptionValueSource('batch') === 'cli' ? ` (not --batch ${options.batch})` : ''}`);
      const model = await openSession(file, options.threads ? { threads: options.threads } : {});
      const total = Math.min(options.limit ?? Infinity, set.count);
      if (options.limit !== undefined && options.limit > total) log(`note: --limit ${options.limit} is more than ${set.name} holds: evaluating all ${total} images`);
      const bar = progress('eval', total, 'img');
      try {
        const result = await evaluate(model, set, {
          batchSize: options.batch,
          oneImagePerRun: mixing.length > 0,
          normalization: normalizationFor(graph, options, file),
          ...(options.limit !== undefined ? { limit: options.limit } : {}),
          onProgress: (done) => bar.update(done),
        });
        bar.stop();
        // This CPU's int8 sums saturate: the top-1 the same model has on arm64, VNNI x64 and in the browser too.
        const twin = exactKernelsTwin(graph);
        const exact = twin ? await exactKernelsTop1(twin, set, { batchSize: options.batch, oneImagePerRun: mixing.length > 0, normalization: normalizationFor(graph, options, file), ...(options.limit !== undefined ? { limit: options.limit } : {}), threads: options.threads, label: 'eval (exact int8 kernels)' }) : undefined;
        // The model's time (seconds) and the command's, which adds reading and decoding an image folder.
        const wallSeconds = (performance.now() - started) / 1000;
        const reading = wallSeconds > result.seconds * 1.2 + 1 ? `; ${wallSeconds.toFixed(1)} s with reading the images` : '';
        // Top-5 of five classes or fewer is 100 % by definition: not worth a number (null in JSON).
        const hasTop5 = set.classes.length > 5;
        const json = {
          file, data: set.name, eval_images: result.count, top1: result.top1, ...(exact !== undefined ? { top1_exact_kernels: exact } : {}), top5: hasTop5 ? result.top5 : null,
          // A class without test images has no accuracy: null, not 0 (a script would read 0 as all wrong).
          per_class: result.perClass.map((c) => (c.total > 0 ? c : { ...c, accuracy: null })), confusion: result.confusion ?? null, ...(result.confusion ? {} : { confusion_pairs: result.confusionPairs }), ...(result.nanImages ? { nan_images: result.nanImages } : {}), seconds: result.seconds, images_per_second: result.imagesPerSecond, wall_seconds: Number(wallSeconds.toFixed(3)),
        };
        const nan = nanScoresWarning(file, result);
        if (nan) log(nan);
        printResult(options, json, () =>
          [
            `${file} on ${result.count} images of ${set.name}: top-1 ${formatPercent(result.top1)}${hasTop5 ? `, top-5 ${formatPercent(result.top5)}` : ''} (${result.seconds.toFixed(1)} s, ${result.imagesPerSecond.toFixed(0)} img/s${reading})`,
            ...(exact !== undefined ? [`on exact int8 kernels (arm64, x64 with VNNI or AMX, the browser): top-1 ${formatPercent(exact)} — the figures above and below are this CPU's, whose int8 sums saturate`] : []),
            '',
            ...classTable(result.perClass),
          ].join('\n'),
        );
      } finally {
        bar.stop();
        await model.close();
      }
    });
}

/** The per-class table: every class, or for many the 10 least and 5 most accurate (all of them in --json). */
function classTable(perClass: readonly ClassAccuracy[]): string[] {
  const row = (c: ClassAccuracy): (string | number)[] => [c.name, c.correct, c.total, formatClassAccuracy(c)];
  const headers = ['class', 'correct', 'total', 'accuracy'];
  // As many as a run report lists one per row; more (ImageNet's 1,000) show the lowest and highest.
  if (perClass.length <= SHOWN_CLASSES) return [table(headers, perClass.map(row))];
  const scored = perClass.filter((c) => c.total > 0).sort((a, b) => a.accuracy - b.accuracy || a.total - b.total);
  const [low, high] = [scored.slice(0, 10), scored.slice(Math.max(10, scored.length - 5))];
  const between = scored.length - low.length - high.length;
  const rows = [...low.map(row), ...(between > 0 ? [[`… ${between} more`, '', '', '']] : []), ...high.map(row)];
  const unscored = perClass.length - scored.length;
  return [
    `per class: the ${low.length} least and ${high.length} most accurate of ${perClass.length}${unscored ? ` (${unscored} without test images)` : ''}; every class with --json`,
    table(headers, rows),
  ];
}

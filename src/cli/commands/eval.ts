import type { Command } from 'commander';
import { loadModelForRuntime } from '../../onnx/validate.js';
import { openSession } from '../../runtime/ort.js';
import { evaluate, nanScoresWarning } from '../../runtime/evaluate.js';
import { imageMixingNodes, oneImagePerRunNote } from '../../onnx/image-mixing.js';
import { formatClassAccuracy, formatPercent, table } from '../../report/format.js';
import { checkDataDir, chosenImageSize, loadDataset, normalizationFor, recordedClasses, positionalScoringNote, type DataOptions, modelChannels } from '../../data/model-data.js';
import { logUnknownOps, printResult, type CommonOptions } from '../output.js';
import { log, progress } from '../../util/terminal.js';
import { positiveInt, withData, withImageSize, withJson, withResize, withThreads } from '../options.js';

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
      const set = await loadDataset({ ...options, splitFlag: true }, size, modelChannels(graph), classes);
      const positional = classes ? undefined : positionalScoringNote([file], set);
      if (positional) log(positional);
      const mixing = imageMixingNodes(graph);
      const mixingNote = oneImagePerRunNote(file, mixing);
      if (mixingNote) log(`${mixingNote}${command.getOptionValueSource('batch') === 'cli' ? ` (not --batch ${options.batch})` : ''}`);
      const model = await openSession(file, options.threads ? { threads: options.threads } : {});
      const total = Math.min(options.limit ?? Infinity, set.labels.length);
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
        // Top-5 of five classes or fewer is 100 % by definition: not worth a number (null in JSON).
        const hasTop5 = set.classes.length > 5;
        const json = {
          file, data: set.name, eval_images: result.count, top1: result.top1, top5: hasTop5 ? result.top5 : null,
          per_class: result.perClass, confusion: result.confusion, ...(result.nanImages ? { nan_images: result.nanImages } : {}), seconds: result.seconds, images_per_second: result.imagesPerSecond,
        };
        const nan = nanScoresWarning(file, result);
        if (nan) log(nan);
        printResult(options, json, () =>
          [
            `${file} on ${result.count} images of ${set.name}: top-1 ${formatPercent(result.top1)}${hasTop5 ? `, top-5 ${formatPercent(result.top5)}` : ''} (${result.seconds.toFixed(1)} s, ${result.imagesPerSecond.toFixed(0)} img/s)`,
            '',
            table(
              ['class', 'correct', 'total', 'accuracy'],
              result.perClass.map((c) => [c.name, c.correct, c.total, formatClassAccuracy(c)]),
            ),
          ].join('\n'),
        );
      } finally {
        bar.stop();
        await model.close();
      }
    });
}

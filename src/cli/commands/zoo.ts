import type { Command } from 'commander';
import { usageError } from '../../errors.js';
import { writeModel } from '../../onnx/io.js';
import { describeZoo, buildZooModel } from '../../zoo/index.js';
import { formatBytes, formatCount, table } from '../../report/format.js';
import { printResult, type CommonOptions } from '../output.js';
import { imageSizeArg, nonNegativeInt, positiveInt, positiveNumber, withJson, channelsArg } from '../options.js';
import { checkOutputFile } from '../paths.js';

interface ZooOptions extends CommonOptions {
  output?: string;
  width: number;
  channels?: 1 | 3;
  classes?: number;
  seed: number;
  list?: boolean;
  imageSize?: [number, number];
}

export function registerZoo(program: Command): void {
  withJson(
    program
      .command('zoo')
      .description('build a model from the zoo and write it as ONNX')
      .argument('[name]', 'model name, e.g. resnet18-cifar (see --list)')
      .option('-o, --output <file>', 'where to write the .onnx file')
      .option('--width <w>', 'channel width multiplier (0.25 for fast CPU demos)', positiveNumber('--width'), 1)
      .option('--classes <k>', 'number of classes (default 10 for -cifar, 1000 for -imagenet)', positiveInt('--classes'))
      .option('--seed <n>', 'seed for the weight initialisation', nonNegativeInt('--seed'), 0)
      .option('--channels <n>', 'image channels: 3 (RGB, default) or 1 (grayscale)', channelsArg)
      .option('--image-size <h,w>', "input height,width (default: the stem's, 32×32 for -cifar): what slim train --image-size builds, for photos of another size", imageSizeArg)
      .option('--list', 'list the zoo models'),
  )
    .addHelpText('after', '\nExamples:\n  slim zoo --list\n  slim zoo resnet18-cifar --width 0.25 -o r18w025.onnx')
    .action(async (name: string | undefined, options: ZooOptions) => {
      if (options.list || !name) {
        const models = describeZoo();
        const json = models.map((m) => ({ name: m.name, summary: m.summary, input_shape: m.inputShape, input_size: m.inputSize, classes: m.classes, params: m.params }));
        printResult(options, { models: json }, () =>
          table(
            ['model', 'input', 'classes', 'params (width 1)'],
            models.map((m) => [m.name, `${m.inputSize}x${m.inputSize}`, m.classes, formatCount(m.params)]),
          ),
        );
        return;
      }
      if (!options.output) throw usageError('no output file given', `pass -o ${name}.onnx`);
      checkOutputFile(options.output, '-o', [], { model: true });
      const graph = buildZooModel(name, {
        width: options.width,
        seed: options.seed,
        ...(options.classes !== undefined ? { classes: options.classes } : {}),
        ...(options.channels !== undefined ? { channels: options.channels } : {}),
        ...(options.imageSize ? { imageSize: options.imageSize } : {}),
      });
      const { bytes } = await writeModel(graph, options.output);
      const channels = options.channels ?? 3;
      const size = options.imageSize;
      printResult(options, { model: name, file: options.output, size_bytes: bytes, width: options.width, channels, ...(size ? { image_size: size } : {}) }, () =>
        `wrote ${options.output} (${name}, width ${options.width}${channels === 1 ? ', grayscale' : ''}${size ? `, ${size.join('×')} input` : ''}, ${formatBytes(bytes)})`,
      );
    });
}

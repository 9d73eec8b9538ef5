import type { Command } from 'commander';
import { basename } from 'node:path';
import { loadModelForRuntime } from '../../onnx/validate.js';
import { loadedModelStats, type ModelStats } from '../../runtime/stats.js';
import { formatBytes, formatCount, table } from '../../report/format.js';
import { logUnknownOps, printResult, type CommonOptions } from '../output.js';
import { withImageSize, withJson } from '../options.js';
import { imageSizeFor } from '../dataset.js';
import type { Dim } from '../../onnx/graph.js';

const externalNote = (files: readonly string[], bytes: number): string =>
  files.length ? `, ${formatBytes(bytes)} of it in ${files.map((f) => basename(f)).join(', ')}` : '';

const macsText = (stats: ModelStats): string => {
  if (stats.macs !== null) return `MACs ${formatCount(stats.macs)} per image`;
  if (stats.unknownOps.length > 0) return `MACs unknown: slimkit has no definition for ${stats.unknownOps.join(', ')}`;
  return "MACs unknown: the input's height and width are free (pass --image-size H,W)";
};

const shapeText = (shape: readonly Dim[] | undefined): string => (shape ? `[${shape.join(', ')}]` : '[?]');

export function registerInfo(program: Command): void {
  withImageSize(withJson(
    program
      .command('info')
      .description('inspect an ONNX model: inputs, outputs, size, parameters, MACs, ops')
      .argument('<model>', 'an .onnx file'),
  ))
    .addHelpText('after', '\nExample:\n  slim info resnet18.onnx --json')
    .action(async (file: string, options: CommonOptions & { imageSize?: [number, number] }) => {
      const loaded = await loadModelForRuntime(file);
      const { graph } = loaded;
      logUnknownOps(file, loaded.unknownOps);
      const stats = await loadedModelStats(loaded, imageSizeFor(graph, file, options.imageSize));
      const result = {
        file,
        producer: [graph.producerName, graph.producerVersion].filter(Boolean).join(' '),
        ir_version: graph.irVersion,
        opsets: graph.opsets,
        ...stats,
        metadata: graph.metadata,
      };
      printResult(options, result, () => {
        const io = [
          ...stats.inputs.map((v) => ['input', v.name, v.dtype, shapeText(v.shape)]),
          ...stats.outputs.map((v) => ['output', v.name, v.dtype, shapeText(v.shape)]),
        ];
        const ops = Object.entries(stats.opHistogram)
          .sort((a, b) => b[1] - a[1])
          .map(([op, n]) => `${op} ×${n}`)
          .join(', ');
        const dtypes = Object.entries(stats.weightDtypes)
          .map(([d, b]) => `${d} ${formatBytes(b)}`)
          .join(', ');
        return [
          `${file}`,
          `  producer ${result.producer || 'unknown'}, IR ${graph.irVersion}, opset ${graph.opsets[''] ?? '?'}`,
          `  size ${formatBytes(stats.sizeBytes)} (gzip ${formatBytes(stats.gzipBytes)})${externalNote(loaded.externalFiles, stats.externalDataBytes)}`,
          `  params ${formatCount(stats.params)} (${formatCount(stats.nonzeroParams)} non-zero), ${macsText(stats)}`,
          `  weights ${dtypes || 'none'}`,
          `  ops ${ops}`,
          '',
          table(['', 'name', 'dtype', 'shape'], io),
        ].join('\n');
      });
    });
}

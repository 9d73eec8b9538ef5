import type { Command } from 'commander';
import { SlimError } from '../../errors.js';
import { openSession } from '../../runtime/ort.js';
import { basename } from 'node:path';
import { loadModelForRuntime, trainingModeProblem, TRAINING_MODE_FIX } from '../../onnx/validate.js';
import { loadedModelStats, type ModelStats } from '../../runtime/stats.js';
import { withOpaqueFacts } from '../../runtime/opaque-types.js';
import { formatBytes, formatCount, formatNumbers, table } from '../../report/format.js';
import { logUnknownOps, printResult, type CommonOptions } from '../output.js';
import { log } from '../../util/terminal.js';
import { withImageSize, withJson } from '../options.js';
import { imageSizeFor, modelInputSize } from '../../data/model-data.js';
import { dataInputs, GraphIndex, SOURCE_PRODUCER_KEY, type Dim, type Graph } from '../../onnx/graph.js';
import { fixedBatchOf, hasFreeImageSize, pinImageSize, rawPixelInput } from '../../onnx/image-input.js';
import { inferShapes, type InferenceResult } from '../../onnx/shape-inference.js';
import { dequantizedWeights, layerGraph, parameterLayers, parametersOf } from '../../passes/freeze-layers.js';
import type { ResizeMode } from '../../data/image-folder.js';
import { splitPixelPreprocessing } from '../../passes/pixel-preprocessing.js';
import { defaultNormalization, modelChannels, readPreprocessing } from '../../zoo/metadata.js';
import { UPGRADE_OPSET } from '../../ops/op-def.js';
import { upgradesOpset } from '../../passes/upgrade-opset.js';
import { spatialScoreShape } from '../../passes/flat-scores.js';
import { stepLines, stepsJson } from '../../report/provenance.js';

const externalNote = (files: readonly string[], bytes: number): string =>
  files.length ? `, ${formatBytes(bytes)} of it in ${files.map((f) => basename(f)).join(', ')}` : '';

const macsText = (stats: ModelStats): string => {
  if (stats.macs !== null) return `MACs ${formatCount(stats.macs)} per image${stats.unknownOps.length ? ` (without ${stats.unknownOps.join(', ')}, which slimkit has no definition for)` : ''}`;
  // Their output shapes are measured by running the model at one input size: a free one has none.
  if (stats.unknownOps.length > 0) return `MACs unknown: slimkit has no definition for ${stats.unknownOps.join(', ')}, and the shapes after ${stats.unknownOps.length > 1 ? 'them' : 'it'} are not known before the model runs (a free image size, a size ${stats.unknownOps.length > 1 ? 'they compute' : 'it computes'}, or one that changes with the batch)`;
  return "MACs unknown: the input's height and width are free (pass --image-size H,W)";
};

const shapeText = (shape: readonly Dim[] | undefined): string => (shape ? `[${shape.join(', ')}]` : '[?]');

/** What the way the model was exported means for the other commands (each handled, not an error). */
export function exportNotes(graph: Graph): string[] {
  const notes: string[] = [];
  const input = dataInputs(graph)[0];
  const batch = fixedBatchOf(input?.shape);
  if (batch !== undefined) {
    notes.push(`takes batches of ${batch} only (exported without dynamic_axes): training, calibration and fine-tuning free the batch, and the models they write keep ${batch}`);
  }
  if (upgradesOpset(graph)) notes.push(`ONNX opset ${graph.opsets['']}: slim quantize converts it to opset ${UPGRADE_OPSET} first (per-channel QDQ needs it)`);
  const raw = rawPixelInput(graph);
  if (raw) {
    const split = splitPixelPreprocessing(graph);
    notes.push('reason' in split
      ? `takes ${raw.dtype === 'uint8' ? 'raw ' : ''}${raw.text} pixels and preprocesses them itself: eval, bench and deploy take it as it is; quantize, prune with data and train cannot (${split.reason}) and want the network without its preprocessing`
      : `takes ${raw.dtype === 'uint8' ? 'raw ' : ''}${raw.text} pixels and preprocesses them itself (${split.preprocessing.nodes.map((n) => n.opType).join(' → ')}): eval, bench and deploy take it as it is; quantize, prune and train work on the network after that and write models that take the pixels`);
  }
  if (input?.shape?.length === 4 && modelChannels(graph) === 1) {
    notes.push(`takes grayscale (1-channel) images: image folders are read as luma (PIL's convert('L'))${grayscaleNormalizationNote(graph, raw?.dtype === 'uint8')}; CIFAR-10 (RGB) does not fit it`);
  }
  if (graph.inlinedFunctions?.length) {
    const names = graph.inlinedFunctions.slice(0, 4).join(', ') + (graph.inlinedFunctions.length > 4 ? ', …' : '');
    notes.push(`written with model-local functions (export_modules_as_functions: ${names}): every command reads it with their calls inlined, and the models they write hold the plain ops`);
  }
  const scores = spatialScoreShape(graph);
  if (scores) {
    notes.push(`scores ${shapeText(scores)} (a fully convolutional head, no flatten at export): eval, bench, calibration and deploy read them as they are; train, distill, QAT and fine-tuning train on [N, classes] and write the model with this output`);
  }
  return notes;
}

/** How a grayscale model's images are normalized, as far as its metadata says (info never fails over it). */
function grayscaleNormalizationNote(graph: Graph, rawPixels: boolean): string {
  if (rawPixels) return ' and fed as raw pixels, which it normalizes itself';
  try {
    const recorded = readPreprocessing(graph).normalization;
    if (!recorded) return ', normalized with mean 0.5 / std 0.5 unless --mean/--std say otherwise (it records none)';
    return recorded.mean.length === 1 ? `, normalized with its recorded mean ${recorded.mean[0]} / std ${recorded.std[0]}` : '';
  } catch {
    return '';
  }
}

export function registerInfo(program: Command): void {
  withImageSize(withJson(
    program
      .command('info')
      .description('inspect an ONNX model: inputs, outputs, size, parameters, MACs, ops')
      .argument('<model>', 'an .onnx file')
      .option('--layers', 'also list the layers with parameters, by the names `slim train --freeze` takes (PyTorch module names)'),
  ))
    .addHelpText('after', '\nExamples:\n  slim info resnet18.onnx --json\n  slim info resnet18.onnx --layers')
    .action(async (file: string, options: CommonOptions & { imageSize?: [number, number]; layers?: boolean }) => {
      const asRead = await loadModelForRuntime(file, { inspectOnly: true });
      const training = trainingModeProblem(asRead.graph);
      if (training) log(`warning: ${file} ${training}: eval, bench, quantize, prune and deploy refuse it — ${TRAINING_MODE_FIX}`);
      // Ops slimkit does not know may still be ONNX Runtime's: ask it before promising that eval and bench work.
      const ortError = asRead.unknownOps.length ? await ortLoadError(file) : undefined;
      // Then their output shapes are measured, so the other ops' MACs can be counted.
      const loaded = ortError === undefined && !training ? await withOpaqueFacts(asRead, file) : asRead;
      const { graph } = loaded;
      logUnknownOps(file, loaded.unknownOps, { ...(ortError !== undefined ? { ortError } : {}), macsCounted: loaded.facts !== undefined });
      const stats = await loadedModelStats(loaded, imageSizeFor(graph, file, options.imageSize));
      const result = {
        file,
        producer: [graph.producerName, graph.producerVersion].filter(Boolean).join(' '),
        ...(graph.metadata[SOURCE_PRODUCER_KEY] ? { source_producer: graph.metadata[SOURCE_PRODUCER_KEY] } : {}),
        ir_version: graph.irVersion,
        opsets: graph.opsets,
        size_bytes: stats.sizeBytes,
        external_data_bytes: stats.externalDataBytes,
        gzip_bytes: stats.gzipBytes,
        params: stats.params,
        nonzero_params: stats.nonzeroParams,
        macs: stats.macs,
        unknown_ops: stats.unknownOps,
        op_histogram: stats.opHistogram,
        weight_dtypes: stats.weightDtypes,
        inputs: stats.inputs,
        outputs: stats.outputs,
        notes: exportNotes(graph),
        history: stepsJson(graph.metadata),
        metadata: graph.metadata,
        ...(options.layers ? { layers: layerRows(graph, loaded.facts, imageSizeFor(graph, file, options.imageSize)) } : {}),
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
          `  producer ${result.producer || 'unknown'}${result.source_producer ? ` (from ${result.source_producer})` : ''}, IR ${graph.irVersion}, opset ${graph.opsets[''] ?? '?'}`,
          `  size ${formatBytes(stats.sizeBytes)} (gzip ${formatBytes(stats.gzipBytes)})${externalNote(loaded.externalFiles, stats.externalDataBytes)}`,
          `  params ${formatCount(stats.params)} (${formatCount(stats.nonzeroParams)} non-zero), ${macsText(stats)}`,
          `  weights ${dtypes || 'none'}`,
          `  ops ${ops}`,
          ...preprocessingLines(graph, file, options.imageSize),
          ...historyLines(graph),
          ...result.notes.map((n) => `  note: ${n}`),
          '',
          table(['', 'name', 'dtype', 'shape'], io),
          ...(result.layers ? ['', table(['layer', 'ops', 'parameters', 'params', 'MACs'], result.layers.map((l) => [
            l.layer,
            l.ops.join(' + '),
            l.parameters.map((p) => shapeText(p.shape)).join(' '),
            formatCount(l.params),
            l.macs === null ? '?' : formatCount(l.macs),
          ]))] : []),
        ].join('\n');
      });
    });
}

interface LayerRow {
  /** The module name (`layer1.0.conv1`): what --freeze matches. */
  layer: string;
  ops: string[];
  parameters: { name: string; shape: number[] }[];
  params: number;
  /** Per image; null when the input's height and width are free and no size is known, or its ops' are unknown. */
  macs: number | null;
}

/** The layers with parameters, as `--freeze` names them (layerGraph), with their MACs per image. */
function layerRows(graph: Graph, facts: InferenceResult | undefined, imageSize: [number, number] | undefined): LayerRow[] {
  const g = layerGraph(graph);
  // Counted again only where layerGraph renamed or untied nodes (its names are the ones looked up), or to pin a free H×W.
  const counted = !facts ? undefined : hasFreeImageSize(g) ? (imageSize ? inferShapes(pinImageSize(g, imageSize)) : undefined) : g === graph ? facts : inferShapes(g);
  // An op slimkit has no definition for has no MAC count (its output shape was measured, not inferred).
  const macsByNode = new Map(counted?.nodes.map((f) => [f.node.name, f.opaque ? null : f.macs]) ?? []);
  const batch = fixedBatchOf(dataInputs(g)[0]?.shape) ?? 1;
  // An int8 model lists its layers by their integer weights, counted as its float network is.
  const dequantized = dequantizedWeights(g);
  const index = new GraphIndex(g);
  return [...parameterLayers(g, { dequantized })].map(([layer, nodes]) => {
    const parameters = nodes.flatMap((n) => parametersOf(g, n, { dequantized, index })).map((name) => ({ name, shape: [...g.initializers.get(name)!.dims] }));
    return {
      layer,
      ops: nodes.map((n) => n.opType),
      parameters,
      params: parameters.reduce((sum, p) => sum + p.shape.reduce((a, b) => a * b, 1), 0),
      macs: counted && nodes.every((n) => macsByNode.get(n.name) !== null) ? nodes.reduce((sum, n) => sum + (macsByNode.get(n.name) ?? 0), 0) / batch : null,
    };
  });
}

/**
 * What eval, bench and deploy will assume about the images: the recorded input size, mean/std (or
 * the default they fall back to) and class names.
 */
function preprocessingLines(graph: Graph, file: string, sizeFlag: [number, number] | undefined): string[] {
  const input = dataInputs(graph)[0];
  if (input?.shape?.length !== undefined && input.shape.length !== 4) {
    return [`  input '${input.name}' ${shapeText(input.shape)} is not an image (N×C×H×W or N×H×W×C): slim bench times it on random inputs; eval, deploy, calibration and training feed images and cannot feed it`];
  }
  let p: ReturnType<typeof readPreprocessing>;
  try {
    p = readPreprocessing(graph, file);
  } catch (e) {
    return [`  preprocessing: ${e instanceof SlimError ? e.parts.problem : String(e)}`];
  }
  const n = p.normalization;
  const fallback = defaultNormalization(graph);
  const stats = n ? `mean ${formatNumbers(n.mean)}, std ${formatNumbers(n.std)}` : `mean/std not recorded (commands use ${modelChannels(graph) === 1 ? 'mean 0.5, std 0.5' : `CIFAR-10's: mean ${formatNumbers(fallback.mean)}, std ${formatNumbers(fallback.std)}`}; --mean/--std to change)`;
  const names = p.classNames;
  const size = sizeFlag ?? modelInputSize(graph);
  return [
    `  images ${size ? size.join('×') : 'of a size not recorded (--image-size)'}, ${modelChannels(graph) === 1 ? 'grayscale' : 'RGB'}; ${pixelsText(graph, stats)}`,
    `  classes ${names ? `${names.length}: ${names.slice(0, 10).join(', ')}${names.length > 10 ? `, … ${names.length - 10} more` : ''}` : 'not named (labels by position)'}`,
    ...(p.resize ? [`  photos resized ${resizeText(p.resize, size)} (slimkit.resize: image folders and deploy bundles; --resize to change)`] : []),
  ];
}

/** How slimkit made the model, step by step (nothing for a model it did not make). */
function historyLines(graph: Graph): string[] {
  const lines = stepLines(graph.metadata);
  return lines.length ? ['  made by slimkit', ...lines.map((l) => `    ${l}`)] : [];
}

/** How the images reach the model: raw uint8 pixels it normalizes itself, or float images normalized as `stats` say (channels-last ones too). */
function pixelsText(graph: Graph, stats: string): string {
  const raw = rawPixelInput(graph);
  if (raw?.dtype === 'uint8') return 'raw pixels, preprocessed by the model itself';
  return raw ? `${raw.layout}, fed normalized: ${stats}` : stats;
}

/** A recorded resize in words. */
function resizeText(mode: ResizeMode, size: [number, number] | undefined): string {
  if (mode === 'stretch') return `by stretching to ${size ? size.join('×') : 'the input'}`;
  const side = mode === 'shorter-side' ? 'the input' : String(mode.shorterSide);
  return `shorter side to ${side}, then the centre ${size ? size.join('×') : 'crop'}`;
}

/** Why ONNX Runtime cannot load the model, or undefined when it can. */
async function ortLoadError(file: string): Promise<string | undefined> {
  try {
    await (await openSession(file, { threads: 1 })).close();
    return undefined;
  } catch (e) {
    return e instanceof SlimError ? e.parts.problem.replace(/^ONNX Runtime cannot load the model: /, '') : String(e);
  }
}

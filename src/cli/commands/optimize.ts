import type { Command } from 'commander';
import { usageError } from '../../errors.js';
import { madeBySlimkit } from '../../onnx/graph.js';
import { writeModel } from '../../onnx/io.js';
import { loadModelForRuntime, validateGraph } from '../../onnx/validate.js';
import { withMeasuredOpaqueTypes } from '../../runtime/opaque-types.js';
import { formatTrace, INFERENCE_PIPELINE, PASSES, runPasses, type PassTrace } from '../../passes/index.js';
import { log } from '../../util/terminal.js';
import { printResult, type CommonOptions } from '../output.js';
import { withJson } from '../options.js';
import { didYouMean } from '../../util/suggest.js';
import { checkOutputFile } from '../paths.js';

interface OptimizeOptions extends CommonOptions {
  output: string;
  passes?: string;
  trace?: boolean;
}

export function registerOptimize(program: Command): void {
  withJson(
    program
      .command('optimize')
      .description('clean a model for inference: fold constants, shape subgraphs and BatchNorm, drop nodes that compute nothing (a Pad of zeros, Mul by 1, ...) and dead ones')
      .argument('<model>', 'an .onnx file')
      .requiredOption('-o, --output <file>', 'where to write the optimized model')
      .option('--passes <list>', `comma-separated passes to run, in order (default: the inference clean-up, ${INFERENCE_PIPELINE.map((p) => p.name).join(', ')}). Passes: ${Object.keys(PASSES).join(', ')}`)
      .option('--trace', 'print what each pass changed'),
  )
    .addHelpText('after', '\nExample:\n  slim optimize model.onnx -o model.opt.onnx --trace')
    .action(async (file: string, options: OptimizeOptions) => {
      checkOutputFile(options.output, '-o', [file], { model: true });
      // --passes '' is a list too (of nothing): only an absent flag means all of them.
      const passes = options.passes !== undefined
        ? options.passes.split(',').filter((name) => name.trim() !== '').map((name) => {
            const pass = PASSES[name.trim()];
            if (!pass) throw usageError(`unknown pass '${name.trim()}'`, `${didYouMean(name.trim(), Object.keys(PASSES))}choose from ${Object.keys(PASSES).join(', ')}`);
            return pass;
          })
        : INFERENCE_PIPELINE;
      // Ops slimkit has no definition for are left as they are: their output types, measured with ONNX
      // Runtime, are all the passes need of them (trial 31: optimize refused such a model).
      const loaded = await loadModelForRuntime(file);
      const { graph } = await withMeasuredOpaqueTypes(loaded.graph, file);
      if (loaded.unknownOps.length) log(`note: slimkit has no definition for ${loaded.unknownOps.join(', ')}: left as ${loaded.unknownOps.length > 1 ? 'they are' : 'it is'} (${loaded.unknownOps.length > 1 ? 'their' : 'its'} output shapes measured with ONNX Runtime); the passes work around ${loaded.unknownOps.length > 1 ? 'them' : 'it'}`);
      const traces: PassTrace[] = [];
      const optimized = runPasses(graph, passes, (t) => {
        traces.push(t);
        // A pass named in --passes that had nothing to do says why, trace or not.
        if (options.trace) log(formatTrace(t));
        else if (t.note && options.passes !== undefined) log(`${t.pass}: ${t.note}`);
      });
      validateGraph(optimized, { file: options.output });
      const { bytes } = await writeModel(madeBySlimkit(optimized), options.output);
      const result = { file, output: options.output, nodes_before: graph.nodes.length, nodes_after: optimized.nodes.length, size_bytes: bytes,
        passes: traces.map((t) => ({
          pass: t.pass, nodes_before: t.nodesBefore, nodes_after: t.nodesAfter,
          initializers_before: t.initializersBefore, initializers_after: t.initializersAfter, op_delta: t.opDelta, ms: t.ms,
          ...(t.note ? { note: t.note } : {}),
        })),
        opset_before: graph.opsets[''] ?? 0, opset_after: optimized.opsets[''] ?? 0,
      };
      const opset = result.opset_before !== result.opset_after ? `, opset ${result.opset_before} → ${result.opset_after}` : '';
      printResult(options, result, () => `wrote ${options.output}: ${graph.nodes.length} → ${optimized.nodes.length} nodes${opset}`);
    });
}

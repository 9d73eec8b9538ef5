/**
 * Ops slimkit has no definition for (a DepthToSpace from F.pixel_shuffle, an Einsum) are left float by
 * quantize, as ONNX Runtime's own quantizer leaves ops it has no int8 form for. Planning the int8 ops
 * around such an op needs only the types of what it produces; they are measured here by running the
 * model in ONNX Runtime at two batch sizes, and stored as the graph's value types, where shape
 * inference takes them (onnx/shape-inference.ts). Nothing else about the op is assumed.
 */
import { inputError, SlimError } from '../errors.js';
import type { DType } from '../onnx/dtype.js';
import { cloneGraph, dataInputs, type Dim, type Graph, type Node, type ValueInfo } from '../onnx/graph.js';
import { encodeModel } from '../onnx/io.js';
import { ModelProto } from '../onnx/proto.js';
import type { Tensor } from '../onnx/tensor.js';
import { inferShapes, type InferenceResult } from '../onnx/shape-inference.js';
import { isUnknownDim } from '../ops/shared/shapes.js';
import { opDefFor } from '../ops/registry.js';
import { Random } from '../util/random.js';
import { openSession } from './ort.js';
import { randomTensor } from './random-input.js';

export interface MeasuredOpaqueTypes {
  /** The graph with a stored type for every output of those ops. */
  graph: Graph;
  /** The ops' nodes, in graph order. */
  nodes: Node[];
}

const DYNAMIC_BATCH_FIX = "re-export it with one free batch axis (torch.onnx.export(..., dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}}))";

/**
 * The graph with the output types of every node slimkit has no definition for, as ONNX Runtime computes
 * them; the graph itself when it has none. The model's input dims other than the batch must be fixed:
 * the types are measured at one image size and batch sizes 1 and 2, and a dim that follows the batch is
 * stored as the batch's symbol (a model exported for one batch size is measured at it: measure again
 * once its batch is freed). `file` names the model in errors.
 */
export async function withMeasuredOpaqueTypes(graph: Graph, file: string): Promise<MeasuredOpaqueTypes> {
  const nodes = graph.nodes.filter((node) => !opDefFor(node));
  if (nodes.length === 0) return { graph, nodes };
  const named = [...new Set(nodes.map((n) => n.opType))].join(', ');
  const refuse = (problem: string, fix: string): Error => inputError({ file, problem: `${problem}, and it has ops slimkit has no definition for (${named}), whose output shapes ONNX Runtime measures at one input shape`, fix });

  const inputs = dataInputs(graph);
  const batchSymbol = inputs.map((v) => v.shape?.[0]).find((d): d is string => typeof d === 'string');
  for (const v of inputs) {
    if (!v.shape) throw refuse(`input '${v.name}' has no stated shape`, 're-export it with the input shape stated');
    if (v.shape.slice(1).some((d) => typeof d !== 'number')) throw refuse(`input '${v.name}' has a free size [${v.shape.join(', ')}]`, 're-export it at the image size it will run at (no dynamic height and width)');
    if (v.dtype === 'string') throw refuse(`input '${v.name}' takes strings`, 'export a model whose inputs are tensors');
  }
  // A model exported for one batch size runs at that size only: measured there, its batch freed by
  // passes/any-batch.ts, and measured again on the freed graph (which runs at 1 and 2).
  const fixed = [...new Set(inputs.map((v) => v.shape![0]))];
  if (batchSymbol === undefined && fixed.length !== 1) throw refuse(`its inputs' batch sizes differ (${fixed.join(', ')})`, DYNAMIC_BATCH_FIX);
  const batches = batchSymbol === undefined ? [fixed[0] as number, fixed[0] as number] : [1, 2];

  const wanted = nodes.flatMap((n) => n.outputs.filter(Boolean));
  const one = await measure(graph, wanted, batches[0]!, file);
  const two = batches[1] === batches[0] ? one : await measure(graph, wanted, batches[1]!, file);
  const g = cloneGraph(graph);
  for (const name of wanted) {
    const [a, b] = [one.get(name)!, two.get(name)!];
    // A dim that is the same at both batches is fixed; one that is the batch takes its symbol.
    const shape = a.dims.map((d, i): Dim | undefined => (d === b.dims[i] ? d : d === 1 && b.dims[i] === 2 ? batchSymbol : undefined));
    if (a.dims.length !== b.dims.length || shape.some((d) => d === undefined)) {
      const op = nodes.find((n) => n.outputs.includes(name))!;
      throw inputError({
        file,
        where: `node '${op.name}' (${op.opType})`,
        problem: `its output '${name}' is [${a.dims.join(', ')}] for one image and [${b.dims.join(', ')}] for two: its shape depends on the batch in a way quantize cannot plan around`,
        fix: `export the model without ${op.opType}, or quantize it with ONNX Runtime's own tools`,
      });
    }
    g.valueInfo.set(name, { name, dtype: a.dtype, shape: shape as Dim[] } satisfies ValueInfo);
  }
  return { graph: g, nodes };
}

/**
 * A model loaded with ops slimkit has no definition for, with the shapes and MACs of the rest (those
 * ops' MACs not counted, their output types measured as above): what `slim info` and `slim bench`
 * show. The model as loaded (facts undefined, MACs unknown) when they cannot be measured — a free image
 * size, a batch-dependent output, a model ONNX Runtime cannot run.
 */
export async function withOpaqueFacts<T extends { graph: Graph; facts: InferenceResult | undefined }>(model: T, file: string): Promise<T> {
  if (model.facts || model.graph.nodes.every((node) => opDefFor(node))) return model;
  try {
    const { graph } = await withMeasuredOpaqueTypes(model.graph, file);
    const facts = inferShapes(graph, { file });
    // A size such an op computes (a Floor in recompute_scale_factor's arithmetic) leaves the layers after
    // it unknown, and counted at 1×1 they were 10× too few MACs (trial 33): unknown, not a wrong count.
    if (facts.nodes.some((f) => f.outputs.some((t) => t.shape?.some(isUnknownDim)))) return model;
    return { ...model, graph, facts };
  } catch (e) {
    if (e instanceof SlimError) return model;
    throw e;
  }
}

/** Runs the graph once at `batch` on seeded random inputs, fetching `outputs` as well as its own. */
async function measure(graph: Graph, outputs: readonly string[], batch: number, file: string): Promise<Map<string, { dtype: DType; dims: number[] }>> {
  const proto = ModelProto.decode(encodeModel(graph).model);
  const declared = new Set(graph.outputs.map((v) => v.name));
  // Untyped graph outputs: ONNX Runtime takes their types from its own inference.
  for (const name of outputs) if (!declared.has(name)) proto.graph!.output!.push({ name });
  const session = await openSession(ModelProto.encode(proto), { label: file, threads: 1 });
  const random = new Random(batch);
  const feeds: Record<string, Tensor> = {};
  for (const v of dataInputs(graph)) {
    feeds[v.name] = randomTensor(v.dtype as Exclude<DType, 'string'>, v.shape!.map((d, i) => (i === 0 ? batch : (d as number))), random);
  }
  try {
    const results = await session.run(feeds, { outputs: [...outputs] });
    return new Map(outputs.map((name) => [name, { dtype: results[name]!.dtype, dims: [...results[name]!.dims] }]));
  } finally {
    await session.close();
  }
}


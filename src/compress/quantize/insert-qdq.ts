/**
 * The one graph surgery of static quantization: from a plan and its parameters, remove the folded
 * activations, put QuantizeLinear after every quantized activation's producer and a DequantizeLinear
 * before every reader, and replace weights and biases by their integer values behind a
 * DequantizeLinear. Idempotent: a second plan over the result finds every node already quantized.
 */
import { cloneGraph, dataInputs, type Graph, type Node } from '../../onnx/graph.js';
import { float32, makeTensor, type Tensor } from '../../onnx/tensor.js';
import { freshName, valueNames } from '../../passes/rewrite.js';
import { nodeLabel, rootOf, type QuantPlan } from './mark.js';
import { quantizeValue } from './math.js';
import type { ActivationQuant, BiasQuant, QuantParams, TensorQuant, WeightQuant } from './params.js';
import { withStepRecord } from '../../onnx/provenance.js';

export interface InsertOptions {
  /** Recorded in the model metadata (slimkit.quantization). */
  description?: Record<string, unknown>;
}

export function insertQdq(graph: Graph, plan: QuantPlan, params: QuantParams, options: InsertOptions = {}): Graph {
  const g = cloneGraph(graph);
  const taken = valueNames(g);
  foldActivations(g, plan);

  /** Per tensor: the quantized value to read (a Q output or an integer initializer) and its scale / zero point. */
  const sources = new Map<string, { quantized: string; scale: string; zeroPoint: string; axis: number | undefined }>();
  const qNodes = new Map<string, Node>();
  const activationNames = new Map<string, { scale: string; zeroPoint: string }>();

  const activationParams = (root: string, p: ActivationQuant): { scale: string; zeroPoint: string } => {
    let names = activationNames.get(root);
    if (!names) {
      names = { scale: freshName(taken, `${root}_scale`), zeroPoint: freshName(taken, `${root}_zero_point`) };
      g.initializers.set(names.scale, float32([], [p.scale]));
      g.initializers.set(names.zeroPoint, makeTensor(p.type, [], p.type === 'uint8' ? Uint8Array.of(p.zeroPoint) : Int8Array.of(p.zeroPoint)));
      activationNames.set(root, names);
    }
    return names;
  };

  for (const [name, planned] of plan.tensors) {
    const p = params.tensors.get(name);
    if (!p) continue;
    if (p.kind === 'activation') {
      const root = rootOf(plan.tensors, name) ?? name;
      const names = activationParams(root, p);
      const quantized = freshName(taken, `${name}_quantized`);
      if (planned.kind === 'constant') {
        g.initializers.set(quantized, integerTensor(p.type, g.initializers.get(name)!.dims, quantizeConstant(g.initializers.get(name)!, p)));
      } else {
        qNodes.set(name, {
          name: freshName(taken, `${name}_QuantizeLinear`),
          opType: 'QuantizeLinear',
          domain: '',
          inputs: [name, names.scale, names.zeroPoint],
          outputs: [quantized],
          attributes: {},
        });
      }
      sources.set(name, { quantized, ...names, axis: undefined });
    } else {
      sources.set(name, storeInteger(g, taken, name, p));
    }
  }

  // Rebuild the node list: Qs of graph inputs first, each node preceded by the DQs of its inputs and
  // followed by the Qs of its outputs, so the order stays topological.
  const nodes: Node[] = [];
  for (const v of dataInputs(g)) {
    const q = qNodes.get(v.name);
    if (q) nodes.push(q);
  }
  for (const node of g.nodes) {
    node.inputs = node.inputs.map((input, slot) => {
      const src = input ? sources.get(input) : undefined;
      if (!src) return input;
      const output = freshName(taken, `${input}_dequantized`);
      nodes.push({
        name: freshName(taken, `${input}_DequantizeLinear${node.name ? `_for_${node.name}_${slot}` : ''}`),
        opType: 'DequantizeLinear',
        domain: '',
        inputs: [src.quantized, src.scale, src.zeroPoint],
        outputs: [output],
        attributes: src.axis !== undefined ? { axis: { type: 'int', value: src.axis } } : {},
      });
      return output;
    });
    nodes.push(node);
    for (const out of node.outputs) {
      const q = out ? qNodes.get(out) : undefined;
      if (q) nodes.push(q);
    }
  }
  g.nodes = nodes;

  // Float weights and biases nobody reads any more go.
  const read = new Set(nodes.flatMap((n) => n.inputs));
  for (const [name, p] of params.tensors) {
    if ((p.kind === 'weight' || p.kind === 'bias' || plan.tensors.get(name)?.kind === 'constant') && !read.has(name)) {
      g.initializers.delete(name);
    }
  }
  if (options.description) g.metadata = withStepRecord(g.metadata, 'slimkit.quantization', options.description);
  return g;
}

/** Remove each folded activation; its producer now writes the activation's output directly. */
function foldActivations(g: Graph, plan: QuantPlan): void {
  if (plan.folded.size === 0) return;
  const doomed = new Set<Node>();
  for (const node of g.nodes) {
    const fold = plan.folded.get(nodeLabel(node));
    if (!fold) continue;
    doomed.add(node);
    for (const producer of g.nodes) {
      producer.outputs = producer.outputs.map((o) => (o === fold.input ? fold.output : o));
    }
    g.valueInfo.delete(fold.input);
  }
  g.nodes = g.nodes.filter((n) => !doomed.has(n));
  // Their bounds (Clip's min and max) go with them: ONNX Runtime warns at every load about unused initializers.
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const node of doomed) {
    for (const input of node.inputs.slice(1)) if (input && !read.has(input) && !g.outputs.some((o) => o.name === input)) g.initializers.delete(input);
  }
}

function storeInteger(g: Graph, taken: Set<string>, name: string, p: WeightQuant | BiasQuant): { quantized: string; scale: string; zeroPoint: string; axis: number | undefined } {
  const quantized = freshName(taken, `${name}_quantized`);
  const scale = freshName(taken, `${name}_scale`);
  const zeroPoint = freshName(taken, `${name}_zero_point`);
  const perChannel = p.axis !== undefined;
  const scales = p.kind === 'weight' ? p.params.map((x) => x.scale) : p.scales;
  const zeros = p.kind === 'weight' ? p.params.map((x) => x.zeroPoint) : p.scales.map(() => 0);
  const type = p.kind === 'weight' ? p.type : 'int32';
  const dims = perChannel ? [scales.length] : [];
  g.initializers.set(quantized, integerTensor(type, p.dims, p.values));
  g.initializers.set(scale, float32(dims, perChannel ? scales : scales.slice(0, 1)));
  g.initializers.set(zeroPoint, integerTensor(type, dims, Int32Array.from(perChannel ? zeros : zeros.slice(0, 1))));
  return { quantized, scale, zeroPoint, axis: p.axis };
}

function integerTensor(type: 'uint8' | 'int8' | 'int32', dims: readonly number[], values: Int32Array): Tensor {
  if (type === 'int32') return makeTensor('int32', dims, Int32Array.from(values));
  if (type === 'int8') return makeTensor('int8', dims, Int8Array.from(values));
  return makeTensor('uint8', dims, Uint8Array.from(values));
}

function quantizeConstant(t: Tensor, p: ActivationQuant): Int32Array {
  const data = t.data as Float32Array;
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = quantizeValue(data[i]!, p.scale, p.zeroPoint, p.qrange);
  return out;
}

export type { TensorQuant };

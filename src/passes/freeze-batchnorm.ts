/**
 * BatchNormalization frozen as what it computes at inference: folded into the Conv or Gemm before it
 * where it can be (fold-batchnorm.ts), and every other one (behind a Concat, an Add, a ReLU — DenseNet,
 * pre-activation ResNets) written as a per-channel Mul and Add of constants. What is left trains as a
 * fixed function: no batch statistics, no running averages. Used when only the classifier trains
 * (`slim train --freeze-backbone`), and with `only` for the BN nodes of the layers `--freeze` names. Pure.
 */
import { cloneGraph, type Graph, type Node } from '../onnx/graph.js';
import { inferShapes } from '../onnx/shape-inference.js';
import { float32, toNumbers } from '../onnx/tensor.js';
import { foldBatchNorm } from './fold-batchnorm.js';
import type { Pass } from './pass.js';
import { freshName, valueNames } from './rewrite.js';

export function freezeBatchNorm(graph: Graph, only?: (bn: Node) => boolean): Graph {
  const folded = foldBatchNorm(graph, only);
  const left = folded.nodes.filter((n) => n.opType === 'BatchNormalization' && (!only || only(n)));
  if (left.length === 0) return folded;
  const g = cloneGraph(folded);
  const ranks = inferShapes(g).types;
  const taken = valueNames(g);
  for (const n of g.nodes) taken.add(n.name);
  g.nodes = g.nodes.flatMap((bn) => {
    if (bn.opType !== 'BatchNormalization' || (only && !only(bn))) return [bn];
    const [x, gammaName, betaName, meanName, varName] = bn.inputs;
    const [gamma, beta, mean, variance] = [gammaName, betaName, meanName, varName].map((v) => g.initializers.get(v ?? ''));
    // A training-form or non-constant BN stays as it is: the engine refuses or trains it as before.
    if (!x || !gamma || !beta || !mean || !variance || bn.outputs.filter(Boolean).length !== 1) return [bn];
    const a = bn.attributes['epsilon'];
    const epsilon = Math.fround(a?.type === 'float' ? a.value : 1e-5);
    const [gv, bv, mv, vv] = [gamma, beta, mean, variance].map(toNumbers) as [number[], number[], number[], number[]];
    const scale = gv.map((v, c) => v / Math.sqrt(vv[c]! + epsilon));
    const shift = bv.map((v, c) => v - mv[c]! * scale[c]!);
    // [C, 1, …, 1]: broadcasts over N and the spatial axes of an N×C×… input.
    const rank = ranks.get(x)?.shape?.length ?? 4;
    const dims = [scale.length, ...new Array<number>(Math.max(rank - 2, 0)).fill(1)];
    const scaleName = freshName(taken, `${bn.name}.frozen_scale`);
    const shiftName = freshName(taken, `${bn.name}.frozen_shift`);
    g.initializers.set(scaleName, float32(dims, scale));
    g.initializers.set(shiftName, float32(dims, shift));
    const scaled = freshName(taken, `${bn.outputs[0]!}_scaled`);
    return [
      { name: freshName(taken, `${bn.name}_scale`), opType: 'Mul', domain: '', inputs: [x, scaleName], outputs: [scaled], attributes: {} },
      { name: freshName(taken, `${bn.name}_shift`), opType: 'Add', domain: '', inputs: [scaled, shiftName], outputs: [bn.outputs[0]!], attributes: {} },
    ];
  });
  const read = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const bn of left) for (const name of bn.inputs.slice(1)) if (name && !read.has(name)) g.initializers.delete(name);
  return g;
}

export const freezeBatchNormPass: Pass = {
  name: 'freeze-batchnorm',
  description: 'BatchNormalization as its inference function: folded into the layer before, else a constant per-channel Mul and Add',
  run: (graph) => freezeBatchNorm(graph),
};

/**
 * A trained model as transfer learning starts from it — one composition of passes, used by
 * `slim train --new-head [--freeze-backbone]` and by recipe train stages with `new_head` /
 * `freeze_backbone`: parameters untied (torch.onnx reads equal tensors through Identity nodes, so a
 * head's bias may be a backbone tensor), the classifier replaced by a fresh one for `classes`
 * (replace-head.ts), and with a frozen backbone every initializer but the head's named in `frozen`,
 * BatchNormalization frozen at its running statistics (freeze-batchnorm.ts). Pure.
 */
import type { Graph } from '../onnx/graph.js';
import { freezeBatchNorm } from './freeze-batchnorm.js';
import { findClassifierHead, replaceClassifierHead } from './replace-head.js';
import { untieIdentityWeights } from './untie-weights.js';

export interface TransferOptions {
  newHead: boolean;
  freezeBackbone: boolean;
  /** The data's class count: what a new head scores. */
  classes: number;
  /** Seeds the new head's initialization. */
  seed: number;
}

export interface TransferModel {
  graph: Graph;
  /** With freezeBackbone: the initializers training leaves as they are. */
  frozen?: Set<string>;
  /** What was done, one line each, for the command's log. */
  notes: string[];
}

export function transferModel(model: Graph, o: TransferOptions): TransferModel {
  if (!o.newHead && !o.freezeBackbone) return { graph: model, notes: [] };
  let graph = untieIdentityWeights(model);
  const notes: string[] = [];
  if (o.newHead) {
    const r = replaceClassifierHead(graph, { classes: o.classes, seed: o.seed });
    graph = r.graph;
    notes.push(`new classifier: ${r.replaced.kind} '${r.replaced.node}' scored ${r.replaced.classes} classes from ${r.replaced.inFeatures} features; it now scores the data's ${o.classes}, freshly initialized (seed ${o.seed})`);
  }
  if (!o.freezeBackbone) return { graph, notes };
  graph = freezeBatchNorm(graph);
  const head = findClassifierHead(graph);
  const trained = new Set([head.weight, head.bias].filter((v): v is string => v !== undefined));
  const frozen = new Set([...graph.initializers.keys()].filter((name) => !trained.has(name)));
  const count = [...trained].reduce((n, name) => n + graph.initializers.get(name)!.data.length, 0);
  notes.push(`frozen backbone: training only ${head.kind} '${head.node}' (${count} parameters); the layers before it keep their weights, BatchNormalization its running statistics`);
  return { graph, frozen, notes };
}

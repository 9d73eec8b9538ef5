/**
 * Nodes whose output for one image depends on the other images run with it (OpDef.mixesImages):
 * DynamicQuantizeLinear measures one quantization range over the whole batch. A device classifies one
 * image per run, so such a model's top-1 measured in batches of 256 is not the device's — on a small
 * ResNet18 whose classifier was quantized dynamically, 38.29 % in batches of 256 against 38.25 % one
 * image at a time — and a server that batches concurrent requests would answer one client differently
 * depending on who else asked. Evaluation and serving run such a model one image per run.
 */
import { opDefFor } from '../ops/registry.js';
import type { Graph } from './graph.js';

export interface ImageMixingNode {
  node: string;
  opType: string;
  reason: string;
}

export function imageMixingNodes(graph: Graph): ImageMixingNode[] {
  const found: ImageMixingNode[] = [];
  for (const node of graph.nodes) {
    const def = opDefFor(node);
    if (!def?.mixesImages) continue;
    const reason = def.mixesImages(node, def.parseAttrs(node, graph.opsets[node.domain] ?? 0));
    if (reason) found.push({ node: node.name || node.outputs[0] || node.opType, opType: node.opType, reason });
  }
  return found;
}

/** Whether any node of `graph` mixes the images of a batch: evaluate and serve it one image per run. */
export function mixesImages(graph: Graph): boolean {
  return imageMixingNodes(graph).length > 0;
}

/** The note evaluation prints for such a model, or undefined when its images are independent. */
export function oneImagePerRunNote(file: string, nodes: readonly ImageMixingNode[]): string | undefined {
  const first = nodes[0];
  if (!first) return undefined;
  const more = nodes.length > 1 ? ` (and ${nodes.length - 1} more)` : '';
  return `note: ${file}: ${first.opType} '${first.node}'${more} ${first.reason}, so an image's result depends on the images run with it: evaluating one image per run, as a device classifies it`;
}

/**
 * What --keep and --layer-ratio may name: a node (`/stem/stem.0/Conv`, as `slim prune --analyze` lists
 * them) or the PyTorch module it belongs to (`stem.0`, as `slim info --layers` and `--freeze` name it).
 */
import type { Graph } from '../../onnx/graph.js';
import { layerName } from '../../passes/freeze-layers.js';

/** The nodes `name` names: that node, else every node of that module; none when it names neither. */
export function nodesNamed(graph: Graph, name: string): string[] {
  if (graph.nodes.some((n) => n.name === name)) return [name];
  return graph.nodes.filter((n) => n.name !== '' && layerName(n) === name).map((n) => n.name);
}

/** The fix of an error about a name that is neither. */
export const NAMES_FIX = 'give a node name as `slim prune MODEL --analyze` lists them, or a PyTorch module name as `slim info MODEL --layers` lists them';

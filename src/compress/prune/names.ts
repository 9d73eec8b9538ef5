/**
 * What --keep and --layer-ratio may name: a node (`/stem/stem.0/Conv`, as `slim prune --analyze` lists
 * them) or the PyTorch module it belongs to (`stem.0`, as `slim info --layers` and `--freeze` name it),
 * a module holding others included (`branch.b` for `branch.b.0` and `branch.b.1`).
 */
import { usageError, type SlimError } from '../../errors.js';
import type { Graph } from '../../onnx/graph.js';
import { enclosingModules, layerName } from '../../passes/freeze-layers.js';
import { closest } from '../../util/suggest.js';

const inModule = (layer: string, module: string): boolean => layer === module || layer.startsWith(`${module}.`);

/** The nodes `name` names: that node, else every node of that module or of modules inside it; none when it names neither. */
export function nodesNamed(graph: Graph, name: string): string[] {
  if (graph.nodes.some((n) => n.name === name)) return [name];
  return graph.nodes.filter((n) => n.name !== '' && inModule(layerName(n), name)).map((n) => n.name);
}

/** The error for a name that is neither a node nor a module, with the one meant when it is a typo away. */
export function unknownName(graph: Graph, name: string): SlimError {
  const named = graph.nodes.filter((n) => n.name !== '');
  const meant = closest(name, [...enclosingModules(named.map(layerName)), ...named.map((n) => n.name)]);
  return usageError(`no node or module named '${name}'`, `${meant ? `did you mean '${meant}'? ` : ''}give a node name as \`slim prune MODEL --analyze\` lists them, or a PyTorch module name as \`slim info MODEL --layers\` lists them`);
}

/**
 * Layers kept as they are while the rest of the model trains (`slim train --freeze`, a recipe stage's
 * `freeze`): what PyTorch's `requires_grad_(False)` on a module does, plus its BatchNormalization held at
 * its running statistics, so a frozen layer computes exactly what it did — the usual way to fine-tune a
 * pretrained model on few images (freeze the early layers, train the rest).
 *
 * Layers are named as PyTorch names modules: `layer1.0.conv1`. slimkit's own models carry those names;
 * torch.onnx writes them into its node names as scopes (`/layer1/layer1.0/conv1/Conv`) while a folded
 * Conv's weights get anonymous names (`onnx::Conv_193`), so a pattern is matched against each layer's
 * module name and against its parameters' names. A pattern is a name (`layer1` also covers
 * `layer1.0.conv1`) or a glob (`layer[12]` is not one: `*` and `?` only). Pure.
 */
import { usageError } from '../errors.js';
import type { Graph, Node } from '../onnx/graph.js';
import { freezeBatchNorm } from './freeze-batchnorm.js';
import { untieIdentityWeights } from './untie-weights.js';

export interface FrozenLayers {
  /** The model with the matched BatchNormalization frozen (folded into its layer, or a constant scale and shift). */
  graph: Graph;
  /** Initializers training leaves as they are (the engine's `frozen`). */
  frozen: Set<string>;
  /** The matched layers' names, in graph order. */
  layers: string[];
  /** What was done, one line, for the command's log. */
  notes: string[];
}

/**
 * The module a node belongs to: its name for slimkit's models (and exporters that name nodes after
 * modules), the scope path of torch.onnx's `/scope/…/Op` names — `/layer1/layer1.0/conv1/Conv` is
 * `layer1.0.conv1` (a scope either repeats its parent's path, `layer1.0`, or adds to it, `conv1`).
 */
export function layerName(node: Node): string {
  if (!node.name.startsWith('/')) return node.name;
  let path = '';
  for (const scope of node.name.split('/').filter(Boolean).slice(0, -1)) path = path && !scope.startsWith(`${path}.`) ? `${path}.${scope}` : scope;
  return path || node.name;
}

/** The float initializers a node reads besides its data input: its parameters. */
function parametersOf(graph: Graph, node: Node): string[] {
  return node.inputs.slice(1).filter((v): v is string => !!v && graph.initializers.get(v)?.dtype === 'float32');
}

/** Nodes with parameters, by layer name in graph order: what `--freeze` can name (and `slim info --layers` lists). */
export function parameterLayers(graph: Graph): Map<string, Node[]> {
  const layers = new Map<string, Node[]>();
  for (const node of graph.nodes) {
    if (parametersOf(graph, node).length === 0) continue;
    const name = layerName(node);
    layers.set(name, [...(layers.get(name) ?? []), node]);
  }
  return layers;
}

/** `name` is named by `pattern`: equal to it, inside it (`layer1` covers `layer1.0.conv1.weight`), or matched by its glob. */
export function matchesPattern(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return name === pattern || name.startsWith(`${pattern}.`);
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
  return regex.test(name);
}

/**
 * `graph` with the layers `patterns` name frozen. Every pattern must name something: a typo would
 * otherwise train what the user meant to keep. `file` names the model in errors.
 */
export function freezeLayers(graph: Graph, patterns: readonly string[], o: { file?: string; flag?: string } | string = {}): FrozenLayers {
  const { file = 'the model', flag = '--freeze' } = typeof o === 'string' ? { file: o } : o;
  const g = untieIdentityWeights(graph);
  const layers = parameterLayers(g);
  const matched = new Set<Node>();
  for (const pattern of patterns) {
    let found = false;
    for (const [name, nodes] of layers) {
      for (const node of nodes) {
        if (matchesPattern(pattern, name) || parametersOf(g, node).some((p) => matchesPattern(pattern, p))) {
          matched.add(node);
          found = true;
        }
      }
    }
    if (!found) {
      const names = [...layers.keys()];
      throw usageError(
        `${flag} '${pattern}' names no layer or parameter of ${file}`,
        `its layers are ${names.slice(0, 8).join(', ')}${names.length > 8 ? `, … (${names.length} in all)` : ''}; \`slim info MODEL.onnx --layers\` lists them all`,
      );
    }
  }
  const matchedNames = new Set([...matched].map((n) => n.name));
  // A frozen BatchNormalization computes with its running statistics: folded into the layer before it
  // (which stays trainable unless it is frozen too), else a constant per-channel scale and shift.
  const bns = new Set([...matched].filter((n) => n.opType === 'BatchNormalization').map((n) => n.name));
  const out = bns.size > 0 ? freezeBatchNorm(g, (bn) => bns.has(bn.name)) : g;
  const frozen = new Set<string>();
  for (const node of out.nodes) if (matchedNames.has(node.name)) for (const p of parametersOf(out, node)) frozen.add(p);
  // The scale and shift a frozen BN became (new initializers, read by no layer that was matched or trains).
  const layerInputs = new Set(out.nodes.filter((n) => n.opType !== 'Mul' && n.opType !== 'Add').flatMap((n) => n.inputs));
  for (const name of out.initializers.keys()) if (!g.initializers.has(name) && !layerInputs.has(name)) frozen.add(name);
  const trainable = [...parameterLayers(out).values()].flat().flatMap((n) => parametersOf(out, n)).filter((p) => !frozen.has(p));
  if (trainable.length === 0) throw usageError(`${flag} ${patterns.map((p) => `'${p}'`).join(', ')} names every layer of ${file}: nothing would train`, 'leave out at least the last layers (the classifier)');
  const frozenLayers = [...new Set([...matched].map(layerName))];
  const count = [...frozen].reduce((n, name) => n + out.initializers.get(name)!.data.length, 0);
  const total = [...out.initializers.values()].filter((t) => t.dtype === 'float32').reduce((n, t) => n + t.data.length, 0);
  const shown = frozenLayers.slice(0, 6).join(', ') + (frozenLayers.length > 6 ? `, … (${frozenLayers.length} layers)` : '');
  return {
    graph: out,
    frozen,
    layers: frozenLayers,
    notes: [`frozen: ${shown} — ${count.toLocaleString('en')} of ${total.toLocaleString('en')} parameters keep their values${bns.size ? `; ${bns.size} BatchNormalization held at their running statistics` : ''}`],
  };
}

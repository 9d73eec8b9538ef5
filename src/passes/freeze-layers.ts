/**
 * Layers kept as they are while the rest of the model trains (`slim train --freeze`, a recipe stage's
 * `freeze`): what PyTorch's `requires_grad_(False)` on a module does, plus its BatchNormalization held at
 * its running statistics, so a frozen layer computes exactly what it did — the usual way to fine-tune a
 * pretrained model on few images (freeze the early layers, train the rest).
 *
 * Layers are named as PyTorch names modules: `layer1.0.conv1`. slimkit's own models carry those names;
 * torch.onnx writes them into its node names as scopes (`/layer1/layer1.0/conv1/Conv`) while a folded
 * Conv's weights get anonymous names (`onnx::Conv_193`), so a pattern is matched against each layer's
 * module name (all it learns) and against its parameters' names (that one). A pattern is a name (`layer1` also covers
 * `layer1.0.conv1`) or a glob (`*` and `?`). A frozen Conv's BatchNormalization (the BN right after it)
 * is frozen with it. Pure.
 */
import { SlimError } from '../errors.js';
import { closest } from '../util/suggest.js';
import { GraphIndex, type Graph, type Node } from '../onnx/graph.js';
import { isGroupNormCore } from '../ops/instance-normalization.js';
import { learnedOperand } from '../ops/shared/learned.js';
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
 * modules), the scope path of torch.onnx's `/scope/…/Op` names. torch.onnx writes each scope from the
 * module's last named atom on: `/layer2/layer2.0/downsample/downsample.0/Conv` is
 * `layer2.0.downsample.0`, `/features/features.0/features.0.0/Conv` is `features.0.0`.
 */
export function layerName(node: Node): string {
  if (!node.name.startsWith('/')) return node.name;
  let path: string[] = [];
  for (const scope of node.name.split('/').filter(Boolean).slice(0, -1)) {
    const [head, ...rest] = scope.split('.');
    // `name.0.1`: indices under the last named atom of the path so far, which it repeats.
    const at = rest.length > 0 && rest.every(isIndex) ? path.findLastIndex((a) => !isIndex(a)) : -1;
    path = at >= 0 && path[at] === head ? [...path.slice(0, at + 1), ...rest] : [...path, head!, ...rest];
  }
  return path.join('.') || node.name;
}

const isIndex = (atom: string): boolean => /^\d+$/.test(atom);

/** Ops whose constant inputs are weights; Add and Mul hold a bias or a per-channel scale when theirs has more than one value. */
const WEIGHTED = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'BatchNormalization', 'LayerNormalization', 'InstanceNormalization', 'GroupNormalization', 'PRelu']);

/**
 * The float initializers a node learns: a weighted op's, or the bias / per-channel scale of an Add or
 * Mul (either operand: torch.onnx writes a Linear on 3-D input as MatMul + Add(bias, x)). Scalars
 * (HardSwish's 3, Clip bounds) and the constants of other ops are not parameters.
 */
export function parametersOf(graph: Graph, node: Node, o: { dequantized?: ReadonlyMap<string, string>; index?: GraphIndex } = {}): string[] {
  const isFloat = (v: string | undefined): v is string => !!v && graph.initializers.get(v)?.dtype === 'float32';
  // BatchNormalization learns its scale and shift; its running statistics are buffers, not parameters.
  if (node.opType === 'BatchNormalization') return node.inputs.slice(1, 3).filter(isFloat);
  const index = (): GraphIndex => o.index ?? new GraphIndex(graph);
  // A GroupNorm's InstanceNormalization holds fixed 1s and 0s; its γ and β are the Mul and Add after.
  if (node.opType === 'InstanceNormalization' && isGroupNormCore(node, graph, index())) return [];
  // An int8 model's weights come through a DequantizeLinear of an integer initializer: that one stands for them.
  const storedName = (v: string): string | undefined => o.dequantized?.get(v) ?? (isFloat(v) ? v : undefined);
  const floats = node.inputs.flatMap((v) => storedName(v) ?? []);
  if (WEIGHTED.has(node.opType)) return floats;
  if (node.opType === 'Add' || node.opType === 'Mul') {
    const producers = index().producer;
    const lookup = { producer: (v: string) => producers.get(v), stored: (v: string) => graph.initializers.get(storedName(v) ?? '') };
    return node.inputs.flatMap((v, i) => (v && storedName(v) && learnedOperand(node, i, lookup) ? [storedName(v)!] : []));
  }
  return [];
}

/** Whether a model's weights are stored as integers behind DequantizeLinear (a QDQ int8 model): nothing in it trains. */
export function hasIntegerWeights(graph: Graph): boolean {
  return [...dequantizedWeights(graph).values()].some((name) => graph.initializers.get(name)?.dtype !== 'float32');
}

/** The refusal for training such a model, said before any data is read (and by the engine, for other callers). */
export function integerWeightsError(file: string | undefined): SlimError {
  return new SlimError({
    ...(file ? { file } : {}),
    problem: 'nothing in it can train: its weights are stored as int8 (a quantized model)',
    fix: 'train or distill the float model and quantize after, or fine-tune in int8 with `slim quantize FLOAT.onnx --qat`',
  }, 'usage');
}

/** An int8 (QDQ) model's dequantized weights: DequantizeLinear output → the integer initializer it reads. */
export function dequantizedWeights(graph: Graph): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of graph.nodes) {
    const source = n.inputs[0];
    if (n.opType === 'DequantizeLinear' && source && graph.initializers.has(source) && n.outputs[0]) out.set(n.outputs[0], source);
  }
  return out;
}

/**
 * The graph as layers are named in: weights torch.onnx shares through Identity nodes untied (each layer
 * its own), and nodes without a name (ONNX allows it) or with a taken one named `Op_<index>`.
 */
export function layerGraph(graph: Graph): Graph {
  const g = untieIdentityWeights(graph);
  const count = new Map<string, number>();
  for (const n of g.nodes) count.set(n.name, (count.get(n.name) ?? 0) + 1);
  if (g.nodes.every((n) => n.name && count.get(n.name) === 1)) return g;
  const taken = new Set(count.keys());
  const kept = new Set<string>();
  const nodes = g.nodes.map((n, i) => {
    // The first node of a name keeps it; later ones, and nameless ones, get their own.
    if (n.name && !kept.has(n.name)) {
      kept.add(n.name);
      return n;
    }
    let name = `${n.opType}_${i}`;
    while (taken.has(name)) name = `${name}_`;
    taken.add(name);
    return { ...n, name };
  });
  return { ...g, nodes };
}

/** Nodes with parameters, by layer name in graph order: what `--freeze` can name (and `slim info --layers` lists). Takes a layerGraph. */
export function parameterLayers(graph: Graph, o: { dequantized?: ReadonlyMap<string, string> } = {}): Map<string, Node[]> {
  const layers = new Map<string, Node[]>();
  const index = new GraphIndex(graph);
  for (const node of graph.nodes) {
    if (parametersOf(graph, node, { ...o, index }).length === 0) continue;
    const name = layerName(node);
    layers.set(name, [...(layers.get(name) ?? []), node]);
  }
  return layers;
}

/** Every module of these layer names and every module holding one (`block1` and `block1.0` for `block1.0`), once each. */
export function enclosingModules(layers: readonly string[]): string[] {
  return [...new Set(layers.flatMap((n) => n.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.'))))];
}

/** `name` is named by `pattern`: equal to it or inside it (`layer1` covers `layer1.0.conv1.weight`), the pattern a name or a glob. */
export function matchesPattern(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return name === pattern || name.startsWith(`${pattern}.`);
  // A glob covers what is inside what it matches too: `layer?` names layer1.0.conv1 as `layer1` does.
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}(\\..*)?$`);
  return regex.test(name);
}

/**
 * `graph` with the layers `patterns` name frozen. Every pattern must name something: a typo would
 * otherwise train what the user meant to keep. `file` names the model in errors; `freshHead`: the
 * parameters of a classifier just replaced (--new-head), which must not be frozen.
 */
export function freezeLayers(graph: Graph, patterns: readonly string[], o: { file?: string; flag?: string; freshHead?: readonly string[]; fromFile?: boolean } = {}): FrozenLayers {
  const { file = 'the model', flag = '--freeze' } = o;
  // A --freeze flag is usage (exit 2); a recipe's `freeze:` is the recipe file's content (exit 1, as its other errors).
  const refuse = (problem: string, fix: string): SlimError => new SlimError({ problem, fix }, o.fromFile ? 'input' : 'usage');
  const g = layerGraph(graph);
  // torch.onnx (eval mode) folds each BN into the Conv before it and calls the result onnx::Conv_…
  const folded = [...g.initializers.keys()].some((k) => k.startsWith('onnx::'))
    ? ' — this export folded BatchNormalization into the Conv before it and named the weights onnx::…: name the Conv\'s layer'
    : '';
  const { layers, parameters } = matchPatterns(g, patterns, (pattern, names) => {
    // A typo of a layer or of a module holding layers (block1 for block1.0).
    const meant = closest(pattern, enclosingModules(names));
    return refuse(
      `${flag} '${pattern}' names no layer or parameter of ${file}`,
      `${meant ? `did you mean '${meant}'? ` : ''}its layers are ${names.slice(0, 8).join(', ')}${names.length > 8 ? `, … (${names.length} in all)` : ''}; \`slim info MODEL.onnx --layers\` lists them all${meant ? '' : folded}`,
    );
  });
  // A Conv whose weight is named keeps its BN too: else the BN trains and is folded into that weight.
  withTheirBatchNorm(g, layers, g.nodes.filter((n) => parameters.has(n.inputs[1] ?? '')));
  // A frozen BatchNormalization computes with its running statistics: folded into the layer before it
  // (which stays trainable unless it is frozen too), else a constant per-channel scale and shift.
  const bns = new Set([...layers].filter((n) => n.opType === 'BatchNormalization').map((n) => n.name));
  const out = bns.size > 0 ? freezeBatchNorm(g, (bn) => bns.has(bn.name)) : g;
  const layerNames = new Set([...layers].map((n) => n.name));
  // A BN alone (its Conv trains): its statistics are fixed and its scale and shift go into the Conv's weights.
  const producer = new Map(g.nodes.flatMap((n) => n.outputs.map((v) => [v, n] as const)));
  const intoTraining = [...layers].filter((n) => {
    const before = producer.get(n.inputs[0] ?? '');
    return n.opType === 'BatchNormalization' && (before?.opType === 'Conv' || before?.opType === 'Gemm') && !layers.has(before);
  }).length;
  const frozen = new Set([...parameters].filter((p) => out.initializers.has(p)));
  const outIndex = new GraphIndex(out);
  for (const node of out.nodes.filter((n) => layerNames.has(n.name))) parametersOf(out, node, { index: outIndex }).forEach((p) => frozen.add(p));
  // The scale and shift a BN became when it could not be folded: new constants read by Mul and Add only.
  const readByLayers = new Set(out.nodes.filter((n) => n.opType !== 'Mul' && n.opType !== 'Add').flatMap((n) => n.inputs));
  for (const name of out.initializers.keys()) {
    if (!g.initializers.has(name) && !readByLayers.has(name)) frozen.add(name);
  }
  // A fresh classifier (--new-head) held at its random initialization would train nothing useful.
  const head = o.freshHead?.find((p) => frozen.has(p));
  if (head) throw refuse(`${flag} ${patterns.map((p) => `'${p}'`).join(', ')} names the new classifier (${head}): it starts from random weights and must train`, 'leave the classifier out of the layers to freeze');
  const all = [...parameterLayers(out).values()].flat().flatMap((n) => parametersOf(out, n, { index: outIndex }));
  if (all.every((p) => frozen.has(p))) throw refuse(`${flag} ${patterns.map((p) => `'${p}'`).join(', ')} names every layer of ${file}: nothing would train`, 'leave out at least the last layers (the classifier)');

  const gIndex = new GraphIndex(g);
  const inLayers = new Set([...layers].flatMap((n) => parametersOf(g, n, { index: gIndex })));
  const named = [...new Set(g.nodes.filter((n) => layers.has(n)).map(layerName)), ...[...parameters].filter((p) => frozen.has(p) && !inLayers.has(p))];
  const size = (names: Iterable<string>): number => [...new Set(names)].reduce((n, name) => n + (out.initializers.get(name)?.data.length ?? 0), 0);
  const shown = named.slice(0, 6).join(', ') + (named.length > 6 ? `, … (${named.length} layers)` : '');
  return {
    graph: out,
    frozen,
    layers: named,
    notes: [`frozen: ${shown} — ${size(all.filter((p) => frozen.has(p))).toLocaleString('en')} of ${size(all).toLocaleString('en')} parameters keep their values${bns.size ? `; ${bns.size} BatchNormalization held at their running statistics${intoTraining ? ` (${intoTraining} of them folded into the layer before, which trains)` : ''}` : ''}`],
  };
}

/**
 * The layers (nodes) and parameters the patterns name: a layer named freezes all it learns, a
 * parameter named (layer1.0.conv1.weight) only itself. A pattern naming nothing is `refused`'s error.
 */
function matchPatterns(g: Graph, patterns: readonly string[], refused: (pattern: string, layerNames: string[]) => Error): { layers: Set<Node>; parameters: Set<string> } {
  const byLayer = parameterLayers(g);
  const index = new GraphIndex(g);
  const layers = new Set<Node>();
  const parameters = new Set<string>();
  for (const pattern of patterns) {
    let found = false;
    for (const [name, nodes] of byLayer) {
      for (const node of nodes) {
        if (matchesPattern(pattern, name)) {
          layers.add(node);
          found = true;
        }
        for (const p of parametersOf(g, node, { index }).filter((p) => matchesPattern(pattern, p))) {
          parameters.add(p);
          found = true;
        }
      }
    }
    if (!found) throw refused(pattern, [...byLayer.keys()]);
  }
  return { layers, parameters };
}

/**
 * Adds to `layers` the BatchNormalization right after each Conv or Gemm in it, or whose weight was named
 * (torch's conv1 + bn1 are one layer once folded): freezing the Conv alone would let the BN train and
 * then be folded into the "frozen" weights.
 */
function withTheirBatchNorm(g: Graph, layers: Set<Node>, weightsNamed: readonly Node[]): void {
  const consumers = new Map<string, Node[]>();
  for (const n of g.nodes) for (const v of n.inputs) if (v) consumers.set(v, [...(consumers.get(v) ?? []), n]);
  for (const n of [...layers, ...weightsNamed]) {
    const next = n.outputs[0] ? consumers.get(n.outputs[0]) : undefined;
    if ((n.opType === 'Conv' || n.opType === 'Gemm') && next?.length === 1 && next[0]!.opType === 'BatchNormalization') layers.add(next[0]!);
  }
}

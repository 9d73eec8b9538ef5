/**
 * Which stored operand of an Add or Mul is a parameter — one rule for the engine (what trains), the
 * statistics (`params`) and --freeze / `slim info --layers` (what a layer learns).
 */
import type { Node } from '../../onnx/graph.js';
import { numel, type Tensor } from '../../onnx/tensor.js';

export interface OperandLookup {
  producer(value: string): Node | undefined;
  /** The stored tensor a value is (an initializer, or what the caller reads through: a Cast, a DequantizeLinear). */
  stored(value: string): Tensor | undefined;
}

/** Ops whose weights make them a layer: what comes before the first of them is preprocessing. */
const LAYERS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'BatchNormalization', 'LayerNormalization', 'InstanceNormalization', 'PRelu']);

/**
 * Whether the stored operand `slot` of an Add or Mul is a parameter PyTorch trains. A constant of one
 * value per output added to a MatMul or Conv result is that layer's bias (a 1-output Linear's too). A per-channel
 * constant that scales or shifts an activation (more than one value) is what torch.onnx writes for a
 * parameter used outside a module's own op: GroupNorm's affine after its InstanceNormalization,
 * LayerNorm's below opset 17, ConvNeXt's layer scale. Scalars (HardSwish's 3 and 1/6) are not, and
 * neither is preprocessing: a constant applied before the first layer with weights (a model's own mean
 * and 1/std buffers, even behind a crop or a resize).
 */
export function learnedOperand(node: Node, slot: number, g: OperandLookup): boolean {
  if (node.opType !== 'Add' && node.opType !== 'Mul') return false;
  const name = node.inputs[slot];
  const other = node.inputs[1 - slot];
  const constant = name ? g.stored(name) : undefined;
  if (!constant || !other || g.stored(other)) return false;
  const layer = g.producer(other);
  if (node.opType === 'Add' && (layer?.opType === 'MatMul' || layer?.opType === 'Conv')) {
    // One value per output (a 1-output Linear's one too); a scalar added to many outputs (x + 3 of a
    // hand-written hardswish) is not a bias.
    const weight = g.stored(layer.inputs[1] ?? '');
    const outputs = weight?.dims[layer.opType === 'Conv' ? 0 : weight.dims.length - 1];
    if (numel(constant.dims) === outputs) return true;
  }
  return numel(constant.dims) > 1 && !beforeAnyLayer(other, g);
}

/** Whether no layer with weights lies between the graph input and `value` (its whole upstream is preprocessing). */
function beforeAnyLayer(value: string, g: OperandLookup): boolean {
  const seen = new Set<string>();
  const pending = [value];
  while (pending.length > 0) {
    const current = pending.pop()!;
    if (seen.has(current)) continue;
    seen.add(current);
    const producer = g.producer(current);
    if (!producer) continue; // the graph input, or a constant
    if (LAYERS.has(producer.opType)) return false;
    for (const v of producer.inputs) if (v && g.stored(v) === undefined) pending.push(v);
  }
  return true;
}

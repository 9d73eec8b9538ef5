/**
 * Which integer kernel ONNX Runtime's CPU provider runs for an int8 Conv is decided by the model, not by
 * a session option: QLinearConv's weight packing (ORT 1.30, qlinearconv.cc `PrePack`) takes
 *
 *  - int8 weights whose zero points are all 0 → MLAS's symmetric direct convolution ("ConvSym":
 *    AVX2 / AVX-VNNI / AVX512-VNNI kernels on x64, dot-product kernels on arm64, requantization fused).
 *    It has no AMX kernel.
 *  - any other weight zero point → im2col + MLAS's u8×s8 GEMM, which runs on AMX tiles where the CPU
 *    has AMX-INT8 (Intel Sapphire Rapids and later) and the kernel grants it (Linux ≥ 5.16).
 *
 * Symmetric int8 weights lie in [−127, 127], so storing q − 1 with zero point −1 (values in [−128, 126])
 * describes exactly the same weights: DequantizeLinear gives the same floats and ORT's integer outputs
 * are bit-identical. Only the kernel changes. Measured with ORT's profiler on ResNet18-CIFAR (width 1,
 * 1 thread, this 2-core Sapphire Rapids VM): the 3×3 convs of the last stage take 100 µs instead of
 * 215 µs, the model 1.58 ms instead of 2.44 ms; with AMX withheld from ORT the GEMM path is slower than
 * ConvSym (3.03 ms), hence a choice per CPU. Depthwise and grouped convs never take the GEMM path, so
 * they keep zero point 0, and so do Convs with a reduction shorter than AMX_MIN_K, where the im2col of
 * the GEMM path costs more than AMX saves (the channel-padded RGB first conv, K = 36: 30 µs ConvSym
 * against 63 µs GEMM; see pad-channels.ts).
 */
import { release } from 'node:os';
import { option, usageError } from '../../errors.js';
import { int8KernelsSaturate, linuxX64CpuFlags } from '../../util/cpu-flags.js';
import { cloneGraph, GraphIndex, type Graph } from '../../onnx/graph.js';
import { makeTensor, type Tensor } from '../../onnx/tensor.js';
import { toUnsignedWeights } from './unsigned-layout.js';

/**
 * The CPU an int8 model's weights are laid out for: 'avx2' is x64 without VNNI, whose u8×s8 sums
 * saturate — its weights are stored as uint8 (unsigned-layout.ts).
 */
export type Int8Cpu = 'amx' | 'generic' | 'avx2';
/** 'auto': the CPU this process runs on (AMX or generic: 'avx2' is asked for, as the model may run elsewhere). */
export type CpuChoice = Int8Cpu | 'auto';
export const CPU_CHOICES: readonly CpuChoice[] = ['auto', 'amx', 'generic', 'avx2'];

/** The zero point of int8 Conv weights for each signed layout (see the module comment). */
const CONV_WEIGHT_ZERO_POINT: Record<Exclude<Int8Cpu, 'avx2'>, number> = { amx: -1, generic: 0 };
/** Input channels × kernel size below which a Conv stays on ConvSym for 'amx'. */
const AMX_MIN_K = 64;

/**
 * 'amx' when this machine can run ORT's AMX kernels: Linux on x64 with the amx_tile and amx_int8 flags,
 * kernel 5.16 or later (the first to grant AMX state to processes); 'generic' otherwise.
 */
export function hostInt8Cpu(cpuinfo = '/proc/cpuinfo'): Int8Cpu {
  const flags = linuxX64CpuFlags(cpuinfo);
  if (flags.length === 0) return 'generic';
  const [major = 0, minor = 0] = release().split('.').map((v) => Number.parseInt(v, 10));
  if (major < 5 || (major === 5 && minor < 16)) return 'generic';
  return flags.includes('amx_tile') && flags.includes('amx_int8') ? 'amx' : 'generic';
}

let host: Int8Cpu | undefined;

/**
 * The layout choice for weights quantized with `reduceRange`: never AMX's. --reduce-range keeps weights
 * to 7 bits (−64…64) so that x64 CPUs without VNNI cannot overflow their 16-bit sums of two u8×s8
 * products (255·64·2 fits, 255·65·2 does not); AMX's layout shifts them to −65…64. So 'auto' means
 * generic there, and asking for both is refused.
 */
export function layoutChoice(choice: CpuChoice, reduceRange: boolean): CpuChoice {
  if (!reduceRange) return choice;
  if (choice === 'amx') {
    throw usageError(`${option('--cpu', 'amx')} lays int8 Conv weights out as −65…64, past the 7 bits ${option('--reduce-range')} keeps them to for x64 CPUs without VNNI`, `drop ${option('--cpu', 'amx')} (the model then runs everywhere), or ${option('--reduce-range')} (for CPUs with VNNI or AMX)`);
  }
  return 'generic';
}

/** int8 weights past 7 bits: a u8 activation up to 255 times |q| ≤ 64, twice, still fits 16 bits (--reduce-range). */
const SEVEN_BIT_MAX = 64;

/**
 * Where an op reads int8 weights in a quantized model: a QDQ model's DequantizeLinear, dynamic
 * quantization's MatMulInteger, and the integer ops of a QOperator-format model (ORT's quantizer writes them).
 */
const WEIGHT_SLOT: Record<string, number> = { DequantizeLinear: 0, MatMulInteger: 1, ConvInteger: 1, QLinearConv: 3, QLinearMatMul: 3, QGemm: 3 };

/** Whether `graph` has int8 weights past 7 bits (any past ±64, read as weights: WEIGHT_SLOT), which sums without VNNI can saturate on. */
export function hasWideInt8Weights(graph: Graph): boolean {
  const weights = new Set(graph.nodes.flatMap((n) => (n.opType in WEIGHT_SLOT ? [n.inputs[WEIGHT_SLOT[n.opType]!]] : [])));
  return [...graph.initializers].some(([name, t]) => t.dtype === 'int8' && weights.has(name) && (t.data as Int8Array).some((q) => q > SEVEN_BIT_MAX || q < -SEVEN_BIT_MAX));
}

/**
 * A note when this CPU's ONNX Runtime int8 sums can saturate (int8KernelsSaturate) and `graph` has int8
 * weights they would (any past ±64, read as weights: WEIGHT_SLOT): the scores it measures are this CPU's.
 */
export function saturationNote(graph: Graph, file: string): string | undefined {
  if (!int8KernelsSaturate() || !hasWideInt8Weights(graph)) return undefined;
  return `note: this CPU (x64 without VNNI) adds ONNX Runtime's int8 products in 16 bits, which can saturate with ${file}'s 8-bit weights: its scores here may be below its scores on arm64, in the browser or on a VNNI CPU (slim quantize --cpu avx2 makes models for CPUs like this one)`;
}

/**
 * The same model on exact int8 kernels, to score beside this CPU's top-1: on an x64 CPU whose int8 sums
 * saturate, a QDQ model with 8-bit weights with its weights as uint8 (toUnsignedWeights: what arm64, a
 * VNNI CPU and the browser compute). Undefined where this CPU's scores are exact already, or where some
 * wide weights cannot move (dynamic quantization's MatMulInteger, a weight two layers share).
 */
export function exactKernelsTwin(graph: Graph): Graph | undefined {
  if (!int8KernelsSaturate() || !hasWideInt8Weights(graph)) return undefined;
  const moved = toUnsignedWeights(graph).graph;
  return hasWideInt8Weights(moved) ? undefined : moved;
}

export function resolveCpu(choice: CpuChoice): Int8Cpu {
  // A program's typo ('amx2') would otherwise lay the model out for no CPU at all, without a word.
  const choices: readonly CpuChoice[] = ['auto', 'amx', 'generic', 'avx2'];
  if (!choices.includes(choice)) throw usageError(`${option('--cpu')} must be one of ${choices.join(', ')}, got '${String(choice)}'`);
  if (choice !== 'auto') return choice;
  host ??= hostInt8Cpu();
  return host;
}

export interface RetargetResult {
  graph: Graph;
  /** Names of the Conv nodes whose weights were rewritten. */
  changed: string[];
}

/**
 * Re-lay the int8 weights of the plain (group 1) Convs of a QDQ graph for `cpu`: the weight
 * DequantizeLinear's int8 values shift by the change of zero point ('amx': Convs with K ≥ AMX_MIN_K). Exact in both directions, and a
 * no-op on weights already laid out for `cpu` (or not in a form it can shift: uint8 weights, mixed zero
 * points, values that would leave int8). `only` limits the change to the Convs of those names.
 */
export function retargetConvWeights(graph: Graph, cpu: Int8Cpu, options: { only?: ReadonlySet<string> } = {}): RetargetResult {
  if (cpu === 'avx2') return toUnsignedWeights(retargetConvWeights(graph, 'generic').graph);
  const target = CONV_WEIGHT_ZERO_POINT[cpu];
  const g = cloneGraph(graph);
  const index = new GraphIndex(g);
  const changed: string[] = [];
  const done = new Set<string>();
  for (const conv of g.nodes) {
    if (conv.opType !== 'Conv' || (conv.domain !== '' && conv.domain !== 'ai.onnx')) continue;
    const group = conv.attributes['group'];
    if (group?.type === 'int' && group.value !== 1) continue;
    const dq = conv.inputs[1] ? index.producer.get(conv.inputs[1]) : undefined;
    if (dq?.opType !== 'DequantizeLinear') continue;
    const [valuesName, , zeroName] = dq.inputs;
    if (!valuesName || !zeroName || done.has(valuesName)) continue;
    const values = g.initializers.get(valuesName);
    const zeros = g.initializers.get(zeroName);
    if (values?.dtype !== 'int8' || zeros?.dtype !== 'int8') continue;
    if (cpu === 'amx' && values.dims.slice(1).reduce((a, b) => a * b, 1) < AMX_MIN_K) continue;
    // A measured layout (tune-layout.ts) names the Convs that take the AMX path.
    // By the label `changed` reports (and tuning picks by): an unnamed Conv goes by its output.
    if (options.only && !options.only.has(conv.name || conv.outputs[0] || '')) continue;
    const shifted = shiftWeights(values as Tensor<'int8'>, zeros as Tensor<'int8'>, target);
    if (!shifted) continue;
    // A weight shared with a reader that is not a plain Conv keeps its layout.
    if (index.consumersOf(valuesName).some((n) => n !== dq) || index.consumersOf(zeroName).some((n) => n !== dq)) continue;
    g.initializers.set(valuesName, shifted.values);
    g.initializers.set(zeroName, shifted.zeros);
    done.add(valuesName);
    changed.push(conv.name || conv.outputs[0] || '');
  }
  return { graph: changed.length > 0 ? g : graph, changed };
}

/** The same weights with zero point `target`, or undefined when already there or not representable. */
function shiftWeights(values: Tensor<'int8'>, zeros: Tensor<'int8'>, target: number): { values: Tensor<'int8'>; zeros: Tensor<'int8'> } | undefined {
  const z = zeros.data;
  if (z.length === 0 || !z.every((v) => v === z[0])) return undefined;
  const delta = target - z[0]!;
  if (delta === 0) return undefined;
  const data = values.data;
  const out = new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]! + delta;
    if (v < -128 || v > 127) return undefined;
    out[i] = v;
  }
  return { values: makeTensor('int8', values.dims, out), zeros: makeTensor('int8', zeros.dims, new Int8Array(z.length).fill(target)) };
}

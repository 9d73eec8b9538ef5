import { cloneGraph, emptyGraph, type Attribute, type Graph, type Node } from '../onnx/graph.js';
import { makeTensor, numel, type Tensor } from '../onnx/tensor.js';
import { Random } from '../util/random.js';

/**
 * A small appender for classifier graphs. Names follow torchvision's module paths (`layer1.0.conv1`)
 * and state-dict keys (`layer1.0.conv1.weight`, `layer1.0.bn1.running_mean`), so weights map 1:1 to
 * a PyTorch model of the same architecture.
 *
 * Initializers are declared with an init rule and filled only by `build()`, in declaration order,
 * from one seeded generator: the same seed gives the same bytes, and `parameterCount()` is known
 * without allocating a single weight (the zoo listing uses that for ResNet-50 at 25 M parameters).
 */

/** How an initializer is filled. */
export type Init =
  | { kind: 'normal'; std: number }
  | { kind: 'uniform'; bound: number }
  | { kind: 'constant'; value: number };

/** A value flowing through the graph, with its channel count (dim 1 of NCHW, or features after flatten). */
export interface Value {
  name: string;
  channels: number;
}

export interface ConvOptions {
  /** Module path, e.g. `layer1.0.conv1`; the weight is `<name>.weight`. */
  name: string;
  outChannels: number;
  kernel: number;
  stride?: number;
  /** Symmetric padding on every side; default keeps size for odd kernels at stride 1: floor(kernel/2). */
  pad?: number;
  bias?: boolean;
}

export interface BatchNormOptions {
  name: string;
  /** Initial γ; torchvision uses 1, or 0 for the last BN of a residual block (zero_init_residual). */
  gamma?: number;
  /** 1e-5 like PyTorch. */
  epsilon?: number;
}

export interface MaxPoolOptions {
  name: string;
  kernel: number;
  stride?: number;
  pad?: number;
}

export interface GemmOptions {
  name: string;
  outFeatures: number;
  /** Name of the produced value (e.g. the graph output `logits`); defaults to the node name. */
  output?: string;
}

export interface GraphBuilderOptions {
  /** Graph name. */
  name: string;
  /** [channels, height, width] of one input image; the batch dimension is the symbol `batch`. */
  inputShape: [number, number, number];
  inputName?: string;
  opset?: number;
}

interface Declared {
  dims: number[];
  init: Init;
  /** Running statistics are state, not parameters: they are excluded from `parameterCount()`. */
  buffer: boolean;
}

export class GraphBuilder {
  readonly input: Value;
  private readonly graph: Graph;
  private readonly declared = new Map<string, Declared>();
  private readonly nodeNames = new Set<string>();
  private readonly valueNames = new Set<string>();

  constructor(options: GraphBuilderOptions) {
    const inputName = options.inputName ?? 'input';
    const [c, h, w] = options.inputShape;
    this.graph = emptyGraph(options.name, options.opset ?? 17);
    this.graph.irVersion = 8;
    this.graph.inputs.push({ name: inputName, dtype: 'float32', shape: ['batch', c, h, w] });
    this.valueNames.add(inputName);
    this.input = { name: inputName, channels: c };
  }

  /** Conv without bias by default (a BatchNormalization follows in ResNets). Weight init: kaiming_normal_(fan_out, relu). */
  conv(x: Value, o: ConvOptions): Value {
    const stride = o.stride ?? 1;
    const pad = o.pad ?? Math.floor(o.kernel / 2);
    const fanOut = o.outChannels * o.kernel * o.kernel;
    const inputs = [x.name, this.param(`${o.name}.weight`, [o.outChannels, x.channels, o.kernel, o.kernel], { kind: 'normal', std: Math.sqrt(2 / fanOut) })];
    if (o.bias) {
      // PyTorch's default Conv2d bias: U(±1/√fan_in).
      const fanIn = x.channels * o.kernel * o.kernel;
      inputs.push(this.param(`${o.name}.bias`, [o.outChannels], { kind: 'uniform', bound: 1 / Math.sqrt(fanIn) }));
    }
    const out = this.node('Conv', o.name, inputs, {
      kernel_shape: ints([o.kernel, o.kernel]),
      strides: ints([stride, stride]),
      pads: ints([pad, pad, pad, pad]),
      dilations: ints([1, 1]),
      group: { type: 'int', value: 1 },
    });
    return { name: out, channels: o.outChannels };
  }

  /** Inference-form BatchNormalization; momentum 0.9 in ONNX terms is PyTorch's 0.1. */
  batchNorm(x: Value, o: BatchNormOptions): Value {
    const c = [x.channels];
    const inputs = [
      this.param(`${o.name}.weight`, c, { kind: 'constant', value: o.gamma ?? 1 }),
      this.param(`${o.name}.bias`, c, { kind: 'constant', value: 0 }),
      this.param(`${o.name}.running_mean`, c, { kind: 'constant', value: 0 }, true),
      this.param(`${o.name}.running_var`, c, { kind: 'constant', value: 1 }, true),
    ];
    const out = this.node('BatchNormalization', o.name, [x.name, ...inputs], {
      epsilon: { type: 'float', value: o.epsilon ?? 1e-5 },
      momentum: { type: 'float', value: 0.9 },
    });
    return { name: out, channels: x.channels };
  }

  relu(x: Value, name: string): Value {
    return { name: this.node('Relu', name, [x.name], {}), channels: x.channels };
  }

  add(a: Value, b: Value, name: string): Value {
    if (a.channels !== b.channels) {
      throw new Error(`add '${name}': ${a.name} has ${a.channels} channels but ${b.name} has ${b.channels}`);
    }
    return { name: this.node('Add', name, [a.name, b.name], {}), channels: a.channels };
  }

  maxPool(x: Value, o: MaxPoolOptions): Value {
    const stride = o.stride ?? o.kernel;
    const pad = o.pad ?? 0;
    const out = this.node('MaxPool', o.name, [x.name], {
      kernel_shape: ints([o.kernel, o.kernel]),
      strides: ints([stride, stride]),
      pads: ints([pad, pad, pad, pad]),
    });
    return { name: out, channels: x.channels };
  }

  globalAvgPool(x: Value, name: string): Value {
    return { name: this.node('GlobalAveragePool', name, [x.name], {}), channels: x.channels };
  }

  /** Flatten to [batch, features]; `x` must already be 1×1 spatially (after a global pool). */
  flatten(x: Value, name: string): Value {
    return { name: this.node('Flatten', name, [x.name], { axis: { type: 'int', value: 1 } }), channels: x.channels };
  }

  /** A Linear layer as Gemm (transB=1, weight [out, in] like nn.Linear), PyTorch's default init. */
  gemm(x: Value, o: GemmOptions): Value {
    const bound = 1 / Math.sqrt(x.channels);
    const weight = this.param(`${o.name}.weight`, [o.outFeatures, x.channels], { kind: 'uniform', bound });
    const bias = this.param(`${o.name}.bias`, [o.outFeatures], { kind: 'uniform', bound });
    const out = this.node(
      'Gemm',
      o.name,
      [x.name, weight, bias],
      { alpha: { type: 'float', value: 1 }, beta: { type: 'float', value: 1 }, transB: { type: 'int', value: 1 } },
      o.output,
    );
    return { name: out, channels: o.outFeatures };
  }

  /** Learnable elements declared so far (weights and biases, BN γ/β), running statistics excluded. */
  parameterCount(): number {
    let n = 0;
    for (const d of this.declared.values()) if (!d.buffer) n += numel(d.dims);
    return n;
  }

  /** Mark `x` as the graph output [batch, channels], fill every initializer from `seed`, and return the Graph. */
  build(x: Value, o: { seed: number; metadata?: Record<string, string> }): Graph {
    const rng = new Random(o.seed);
    const initializers = new Map<string, Tensor>();
    for (const [name, d] of this.declared) initializers.set(name, fill(d, rng));
    return cloneGraph({
      ...this.graph,
      outputs: [{ name: x.name, dtype: 'float32', shape: ['batch', x.channels] }],
      metadata: { ...o.metadata },
      initializers,
    });
  }

  private param(name: string, dims: number[], init: Init, buffer = false): string {
    if (this.declared.has(name)) throw new Error(`initializer '${name}' is declared twice`);
    this.declared.set(name, { dims, init, buffer });
    return name;
  }

  /** Appends a node named `name` (made unique with _1, _2 … if reused) and returns its output value name. */
  private node(opType: string, name: string, inputs: string[], attributes: Record<string, Attribute>, output?: string): string {
    const nodeName = unique(name, this.nodeNames);
    const out = unique(output ?? nodeName, this.valueNames);
    const node: Node = { name: nodeName, opType, domain: '', inputs, outputs: [out], attributes };
    this.graph.nodes.push(node);
    return out;
  }
}

function ints(value: number[]): Attribute {
  return { type: 'ints', value };
}

function unique(name: string, taken: Set<string>): string {
  let candidate = name;
  for (let i = 1; taken.has(candidate); i++) candidate = `${name}_${i}`;
  taken.add(candidate);
  return candidate;
}

function fill(d: Declared, rng: Random): Tensor<'float32'> {
  const t = makeTensor('float32', d.dims);
  const data = t.data;
  const init = d.init;
  switch (init.kind) {
    case 'constant':
      data.fill(init.value);
      break;
    case 'normal':
      for (let i = 0; i < data.length; i++) data[i] = rng.normal() * init.std;
      break;
    case 'uniform':
      for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-init.bound, init.bound);
      break;
  }
  return t;
}

import './helpers/engine-env.js';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { nativeAvailable } from '../src/engine/native.js';
import { EnginePlan } from '../src/engine/plan.js';
import type { Graph } from '../src/onnx/graph.js';
import { float32, type Tensor } from '../src/onnx/tensor.js';
import { Random } from '../src/util/random.js';
import { GraphBuilder } from '../src/zoo/builder.js';

/**
 * The distillation loss of a training step against PyTorch's formula on the same fixed logits:
 *   α·F.cross_entropy(s, y, label_smoothing) + (1 − α)·T²·F.kl_div(F.log_softmax(s/T), F.softmax(t/T), "batchmean")
 * The student is one linear layer, so the engine's step exposes dL/ds exactly: with plain SGD at
 * lr 1 the bias moves by −Σ_batch dL/ds and the weight by −(dL/ds)ᵀ·x.
 */

const available = nativeAvailable();
const FEATURES = 16;
const CLASSES = 10;
const BATCH = 12;

function linear(seed: number, classes = CLASSES): Graph {
  const b = new GraphBuilder({ name: `linear-${seed}`, inputShape: [FEATURES, 1, 1] });
  const logits = b.gemm(b.flatten(b.input, 'flatten'), { name: 'fc', outFeatures: classes, output: 'logits' });
  return b.build(logits, { seed });
}

function inputs(seed: number): { x: Tensor<'float32'>; labels: Int32Array } {
  const rng = new Random(seed);
  // Scaled so that logits spread over a few units, as a trained model's do.
  const x = float32([BATCH, FEATURES, 1, 1], Array.from({ length: BATCH * FEATURES }, () => 3 * rng.normal()));
  return { x, labels: Int32Array.from({ length: BATCH }, () => rng.int(CLASSES)) };
}

interface Reference {
  loss: number;
  grad: number[][];
}

/** PyTorch's loss and d(loss)/d(student logits), in float64. */
function torchReference(s: Float32Array, t: Float32Array, labels: Int32Array, o: { temperature: number; alpha: number; labelSmoothing: number }): Reference {
  const script = `
import json, sys, torch
import torch.nn.functional as F
a = json.load(sys.stdin)
s = torch.tensor(a["s"], dtype=torch.float64).reshape(${BATCH}, ${CLASSES}).requires_grad_(True)
t = torch.tensor(a["t"], dtype=torch.float64).reshape(${BATCH}, ${CLASSES})
y = torch.tensor(a["labels"], dtype=torch.long)
T, alpha = a["temperature"], a["alpha"]
loss = alpha * F.cross_entropy(s, y, label_smoothing=a["labelSmoothing"]) + (1 - alpha) * T * T * F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
loss.backward()
print(json.dumps({"loss": loss.item(), "grad": s.grad.tolist()}))
`;
  const out = execFileSync('/usr/bin/python3', ['-c', script], {
    input: JSON.stringify({ s: Array.from(s), t: Array.from(t), labels: Array.from(labels), ...o }),
    encoding: 'utf8',
  });
  return JSON.parse(out) as Reference;
}

/** One SGD step at lr 1 (no momentum, no decay): returns the loss and the gradients it applied. */
async function step(
  student: Graph,
  x: Tensor<'float32'>,
  labels: Int32Array,
  options: { temperature: number; alpha: number; labelSmoothing: number; targets?: Float32Array },
  teacher?: EnginePlan,
): Promise<{ loss: number; gradW: Float32Array; gradB: Float32Array; logits: Float32Array }> {
  const plan = EnginePlan.create(student, { threads: 1 });
  plan.setOptimizer({ kind: 'sgd', momentum: 0, nesterov: false, weightDecay: 0 });
  const logits = plan.forward(x)[0]!.data;
  const [w0, b0] = [plan.read('fc.weight'), plan.read('fc.bias')];
  const { loss } = await plan.trainStepOn(x, labels, { lr: 1, ...options }, teacher);
  const [w1, b1] = [plan.read('fc.weight'), plan.read('fc.bias')];
  return { loss, gradW: w0.map((v, k) => v - w1[k]!), gradB: b0.map((v, k) => v - b1[k]!), logits };
}

function expectGradients(r: { gradW: Float32Array; gradB: Float32Array }, ref: Reference, x: Tensor<'float32'>): void {
  for (let c = 0; c < CLASSES; c++) {
    let gb = 0;
    for (let n = 0; n < BATCH; n++) gb += ref.grad[n]![c]!;
    expect(r.gradB[c]!).toBeCloseTo(gb, 5);
    for (let f = 0; f < FEATURES; f++) {
      let gw = 0;
      for (let n = 0; n < BATCH; n++) gw += ref.grad[n]![c]! * x.data[n * FEATURES + f]!;
      expect(Math.abs(r.gradW[c * FEATURES + f]! - gw)).toBeLessThan(1e-5 * (1 + Math.abs(gw)));
    }
  }
}

describe.skipIf(!available)('distillation loss vs PyTorch', () => {
  const cases = [
    { temperature: 4, alpha: 0.5, labelSmoothing: 0 },
    { temperature: 1, alpha: 0.3, labelSmoothing: 0.1 },
    { temperature: 8, alpha: 0, labelSmoothing: 0 },
    { temperature: 2, alpha: 1, labelSmoothing: 0 },
  ];
  for (const o of cases) {
    it(`T = ${o.temperature}, α = ${o.alpha}, label smoothing ${o.labelSmoothing}: teacher plan and cached logits`, async () => {
      const { x, labels } = inputs(7 + o.temperature);
      const teacher = EnginePlan.create(linear(99), { threads: 1 });
      const t = teacher.forward(x)[0]!.data;

      const live = await step(linear(3), x, labels, o, teacher);
      const ref = torchReference(live.logits, t, labels, o);
      expect(Math.abs(live.loss - ref.loss)).toBeLessThan(1e-5 * (1 + ref.loss));
      expectGradients(live, ref, x);

      // The same step fed the teacher's logits from a cache: the same loss and gradients.
      const cached = await step(linear(3), x, labels, { ...o, targets: t });
      expect(Math.abs(cached.loss - ref.loss)).toBeLessThan(1e-5 * (1 + ref.loss));
      expectGradients(cached, ref, x);
    });
  }

  it('T² keeps the soft-target gradient at one scale as T grows (and it would vanish without it)', async () => {
    const { x, labels } = inputs(21);
    const teacher = EnginePlan.create(linear(99), { threads: 1 });
    const norms = [];
    for (const temperature of [2, 8, 32]) {
      const r = await step(linear(3), x, labels, { temperature, alpha: 0, labelSmoothing: 0 }, teacher);
      norms.push(Math.hypot(...r.gradB));
    }
    // Without T² the norm would fall 16× per step of 4× in T; with it, it settles to a constant.
    expect(norms[1]! / norms[0]!).toBeGreaterThan(0.5);
    expect(norms[2]! / norms[1]!).toBeGreaterThan(0.8);
    expect(norms[2]! / norms[1]!).toBeLessThan(1.25);
  });

  it('a teacher with other classes, or a cache of the wrong size, is refused with a message', async () => {
    const { x, labels } = inputs(5);
    const teacher = EnginePlan.create(linear(99, 7), { threads: 1 });
    await expect(step(linear(3), x, labels, { temperature: 4, alpha: 0.5, labelSmoothing: 0 }, teacher)).rejects.toThrow(/same classes/);
    await expect(step(linear(3), x, labels, { temperature: 4, alpha: 0.5, labelSmoothing: 0, targets: new Float32Array(BATCH * 7) })).rejects.toThrow(/cached teacher logits hold/);
  });
});

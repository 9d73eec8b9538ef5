/**
 * The measured Conv layout (src/compress/quantize/tune-layout.ts): each int8 Conv keeps the faster of
 * ORT's two kernels as ORT's profiler timed it. Oracles: ONNX Runtime (the tuned model computes exactly
 * what the all-AMX model computes), the timings it returns (every choice follows them), and QAT's
 * canonical form (the recorded layout re-applies to the same bytes).
 */
import { describe, expect, it } from 'vitest';
import { toCanonicalLayout, toCpuLayout } from '../src/compress/qat/index.js';
import { DEFAULT_STATIC, quantizeStatic, retargetConvWeights, tuneConvLayout } from '../src/compress/quantize/index.js';
import { GraphIndex, type Graph } from '../src/onnx/graph.js';
import { float32 } from '../src/onnx/tensor.js';
import { exactInt8Output } from './helpers/int8-host.js';
import { profileNodes } from '../src/runtime/profile.js';
import { Random } from '../src/util/random.js';
import { buildZooModel } from '../src/zoo/index.js';

function zeroPoints(g: Graph): Map<string, number> {
  const index = new GraphIndex(g);
  return new Map(g.nodes.filter((n) => n.opType === 'Conv').map((c) => [c.name, (g.initializers.get(index.producer.get(c.inputs[1]!)!.inputs[2]!)!.data as Int8Array)[0]!]));
}

describe('tuneConvLayout', () => {
  const rng = new Random(7);
  const x = float32([1, 3, 32, 32], Array.from({ length: 3072 }, () => rng.normal()));

  it('keeps the faster kernel per Conv, computes what the all-AMX model computes, and records the choice', async () => {
    const float = buildZooModel('resnet18-cifar', { width: 0.5 });
    const { graph: amx } = await quantizeStatic(float, [{ input: x }], { ...DEFAULT_STATIC, cpu: 'amx' }, { threads: 1 });
    const tuned = await tuneConvLayout(amx, { threads: 1, runs: 20 });
    const candidates = retargetConvWeights(retargetConvWeights(amx, 'generic').graph, 'amx').changed;
    expect(tuned.timings.map((t) => t.conv).sort()).toEqual([...candidates].sort());
    const zp = zeroPoints(tuned.graph);
    for (const t of tuned.timings) {
      expect(t.amxUs).toBeGreaterThan(0);
      expect(zp.get(t.conv), t.conv).toBe(t.amxUs < t.genericUs ? -1 : 0);
    }
    expect(tuned.amxConvs).toEqual(tuned.timings.filter((t) => t.amxUs < t.genericUs).map((t) => t.conv));
    const record = JSON.parse(tuned.graph.metadata['slimkit.quantization']!) as { cpu: string; amx_convs: string[]; tuned_threads: number };
    expect(record).toMatchObject({ cpu: 'amx', amx_convs: tuned.amxConvs, tuned_threads: 1 });
    // Same model: the integers ORT computes do not change.
    expect(await exactInt8Output(tuned.graph, { input: x })).toEqual(await exactInt8Output(amx, { input: x }));
    // QAT trains the canonical form and re-applies the recorded layout: the same weights come back.
    const canonical = toCanonicalLayout(tuned.graph);
    expect(canonical.amxConvs).toEqual(tuned.amxConvs);
    expect(zeroPoints(toCpuLayout(canonical.graph, 'amx', canonical.amxConvs))).toEqual(zp);
  }, 120_000);

  it('profileNodes names the fused int8 Convs after the Conv nodes', async () => {
    const float = buildZooModel('resnet18-cifar', { width: 0.25 });
    const { graph } = await quantizeStatic(float, [{ input: x }], { ...DEFAULT_STATIC, cpu: 'generic' }, { threads: 1 });
    const p = await profileNodes(graph, { threads: 1, runs: 5, warmup: 2 });
    expect(p.runUs).toBeGreaterThan(0);
    const convs = [...p.nodes].filter(([, n]) => n.op === 'QLinearConv').map(([name]) => name.replace(/(_token_\d+)*$/, ''));
    expect(new Set(convs)).toEqual(new Set(graph.nodes.filter((n) => n.opType === 'Conv').map((n) => n.name)));
  }, 60_000);
});

/**
 * `slim bench --target web`: the model timed in headless Chromium with onnxruntime-web's WebAssembly
 * build, as the web bundle runs it. The page's output on the seeded benchmark inputs is the oracle's
 * (onnxruntime-node's on the same inputs); a model whose two outputs differ gets no timing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModel, writeModel } from '../src/onnx/io.js';
import { emptyGraph, type Graph } from '../src/onnx/graph.js';
import { float32, makeTensor, type Tensor } from '../src/onnx/tensor.js';
import { computesReduced } from '../src/runtime/benchmark-web.js';
import { runSlim } from './helpers/cli.js';
import { makeInt8CifarModel } from './helpers/deploy-models.js';
import { CHROMIUM, chromiumReady, gate } from './helpers/deploy-prereq.js';
import { fixturePath } from './helpers/fixtures.js';
import { Net } from './prune-fixtures.js';

const ready = gate('slim bench --target web', chromiumReady());
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'slim-bench-web-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Row {
  file: string;
  target: string;
  runtime: string;
  threads: number;
  latency_ms: { p50: number; p90: number; p99: number };
  throughput_ips: number;
  peak_rss_bytes: number | null;
  max_abs_diff_vs_node: number;
  params: number;
  turn_p50_ms?: number[];
}

const bench = async (args: string[]): Promise<{ code: number; stderr: string; rows: Row[] }> => {
  const r = await runSlim(['bench', ...args, '--target', 'web', '--browser', CHROMIUM, '--runs', '50', '--warmup', '2', '--json'], { timeoutMs: 180_000 });
  return { code: r.code, stderr: r.stderr, rows: r.code === 0 ? (JSON.parse(r.stdout) as { models: Row[] }).models : [] };
};

describe('slim bench --target web: flags', () => {
  it('--browser needs --target web; a missing browser is named', async () => {
    const model = fixturePath('torch-tiny-resnet.onnx');
    const stray = await runSlim(['bench', model, '--browser', '/usr/bin/true']);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/--browser applies to --target web only/);
    const missing = await runSlim(['bench', model, '--target', 'web', '--browser', '/nonexistent/chrome']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/the browser \/nonexistent\/chrome does not exist/);
    const wrong = await runSlim(['bench', model, '--target', 'phone']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--target must be one of host, web, got 'phone'/);
  });

  it('knows which models compute in reduced precision (the looser browser-vs-Node check)', async () => {
    expect(computesReduced(await readModel(fixturePath('torch-tiny-resnet.onnx')))).toBe(false);
    const int8 = await makeInt8CifarModel(path.join(dir, 'reduced.onnx'));
    expect(computesReduced(await readModel(int8))).toBe(true);
  }, 120_000);
});

describe.runIf(ready)('slim bench --target web in headless Chromium', () => {
  it('times float32 and int8 models in the browser; their outputs there equal onnxruntime-node\'s', async () => {
    const fp32 = fixturePath('torch-tiny-resnet.onnx');
    const int8 = await makeInt8CifarModel(path.join(dir, 'int8.onnx'));
    const { code, stderr, rows } = await bench([fp32, int8, '--threads', '1']);
    expect(code, stderr).toBe(0);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.target).toBe('web');
      expect(row.runtime).toMatch(/^onnxruntime-web \d+\.\d+\.\d+ \(WebAssembly\) in Chromium \d+/);
      expect(row.threads).toBe(1);
      expect(row.peak_rss_bytes).toBeNull();
      expect(row.latency_ms.p50).toBeGreaterThan(0);
      expect(row.latency_ms.p50).toBeLessThanOrEqual(row.latency_ms.p90);
      expect(row.throughput_ips).toBeGreaterThan(0);
    }
    expect(rows[0]!.max_abs_diff_vs_node).toBeLessThan(1e-4);
    expect(rows[1]!.max_abs_diff_vs_node).toBeLessThan(0.05);
    // Their pages took turns of 10 runs: 50 runs are 5 rounds, each model's p50 recorded per turn.
    for (const row of rows) expect(row.turn_p50_ms).toHaveLength(5);
    // The table names what timed the models, and how.
    const table = await runSlim(['bench', fp32, int8, '--target', 'web', '--runs', '50', '--warmup', '1', '--threads', '1'], { timeoutMs: 180_000 });
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/timed in the browser: onnxruntime-web .* in Chromium .*, 1 thread\(s\), in turns of 10 runs, each model in a page of its own/);
    expect(table.stdout).toMatch(/latency of .*int8\.onnx vs .*torch-tiny-resnet\.onnx: ×[\d.]+, the median over 5 rounds of turns/);
  }, 300_000);

  it('runs threads on its cross-origin-isolated page, and models with external data', async () => {
    const file = path.join(dir, 'external.onnx');
    await writeModel(await readModel(fixturePath('torch-tiny-resnet.onnx')), file, { externalData: { thresholdBytes: 256 } });
    const { code, stderr, rows } = await bench([file, '--threads', '2']);
    expect(code, stderr).toBe(0);
    expect(stderr).not.toMatch(/not cross-origin isolated/);
    expect(rows[0]!.threads).toBe(2);
    expect(rows[0]!.max_abs_diff_vs_node).toBeLessThan(1e-4);
    // One model: nothing to take turns with.
    expect(rows[0]!.turn_p50_ms).toBeUndefined();
  }, 180_000);

  it('takes the same NaN on both sides as agreement (a Sqrt of negative values)', async () => {
    const n = new Net(['batch', 3, 8, 8]);
    const graph = n.output(n.op('Sqrt', n.conv('input', 3, 4)));
    const file = path.join(dir, 'nan.onnx');
    await writeModel(graph, file);
    const { code, stderr, rows } = await bench([file]);
    expect(code, stderr).toBe(0);
    expect(rows[0]!.max_abs_diff_vs_node).toBeLessThan(1e-5);
  }, 180_000);

  it('times an int8 model whose sums saturate in onnxruntime-node here: checked against exact kernels, as the browser computes (it was refused)', async () => {
    // Every input at 255 and every weight at 127: each pair of u8×s8 products passes int16 (vpmaddubsw),
    // so on an x64 CPU without VNNI onnxruntime-node's sums come out about half the exact ones.
    const g = emptyGraph('saturating');
    g.inputs = [{ name: 'x', dtype: 'float32', shape: ['batch', 4, 6, 6] }];
    g.outputs = [{ name: 'out', dtype: 'float32', shape: ['batch', 8, 6, 6] }];
    const init = (name: string, t: Tensor): void => void g.initializers.set(name, t);
    init('ten', float32([], [10]));
    init('xs', float32([], [1 / 255]));
    init('xz', makeTensor('uint8', [], Uint8Array.of(0)));
    init('w', makeTensor('int8', [8, 4, 3, 3], new Int8Array(8 * 4 * 9).fill(127)));
    init('ws', float32([], [0.01]));
    init('wz', makeTensor('int8', [], Int8Array.of(0)));
    init('ys', float32([], [46 / 255]));
    init('yz', makeTensor('uint8', [], Uint8Array.of(0)));
    const node = (opType: string, inputs: string[], output: string, attributes: Graph['nodes'][number]['attributes'] = {}): Graph['nodes'][number] => ({ name: output, opType, domain: '', inputs, outputs: [output], attributes });
    g.nodes = [
      node('Add', ['x', 'ten'], 'xa'),
      node('QuantizeLinear', ['xa', 'xs', 'xz'], 'xq'),
      node('DequantizeLinear', ['xq', 'xs', 'xz'], 'xd'),
      node('DequantizeLinear', ['w', 'ws', 'wz'], 'wd'),
      node('Conv', ['xd', 'wd'], 'y', { pads: { type: 'ints', value: [1, 1, 1, 1] } }),
      node('QuantizeLinear', ['y', 'ys', 'yz'], 'yq'),
      node('DequantizeLinear', ['yq', 'ys', 'yz'], 'out'),
    ];
    const file = path.join(dir, 'saturating.onnx');
    await writeModel(g, file);
    const { code, stderr, rows } = await bench([file]);
    expect(code, stderr).toBe(0);
    expect(rows[0]!.max_abs_diff_vs_node).toBeLessThan(0.5);
  }, 180_000);

  it('gives no timing for a model the browser computes differently from onnxruntime-node', async () => {
    // Noise from RandomNormalLike: each runtime draws its own, so the outputs cannot agree.
    const n = new Net(['batch', 3, 8, 8]);
    const x = n.conv('input', 3, 4);
    const noise = n.node('RandomNormalLike', [x], { scale: { type: 'float', value: 10 } })[0]!;
    const graph = n.output(n.op('Add', x, noise));
    const file = path.join(dir, 'noise.onnx');
    await writeModel(graph, file);
    // Beside a model that runs well: every page is checked before any is timed, and the one that
    // differs is named (the browser closes, the command ends).
    const { code, stderr } = await bench([fixturePath('torch-tiny-resnet.onnx'), file]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/noise\.onnx: onnxruntime-web's output .* differs from onnxruntime-node's on the same input \(max difference [\d.]+\), so its timing is not reported/);
  }, 180_000);
});

/**
 * Load test of `slim serve` on loopback: C concurrent keep-alive clients each send R classify requests
 * (PNG/JPEG/WebP test images), after a warm-up round; then a garbage phase (non-images, truncated images,
 * oversized bodies, wrong methods) with a check that the server still answers. Reports one JSON line:
 * p50/p90/p99 latency, throughput, error count, RSS before/after each round (read from /proc).
 *
 *   npx tsx bench/serve-load.ts [--model FILE.onnx] [--clients 200] [--requests 20] [--rounds 3] [--threads N]
 * Default model: the zoo's resnet18-cifar at width 0.25 (fp32, untrained: speed does not depend on weights).
 */
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeModel } from '../src/onnx/io.js';
import { buildZooModel } from '../src/zoo/index.js';
import { percentile, request, rssBytes, startServe } from '../test/helpers/deploy-http.js';
import { writeTestImages } from '../test/helpers/deploy-models.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    clients: { type: 'string', default: '200' },
    requests: { type: 'string', default: '20' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string' },
  },
});
const clients = Number(values.clients);
const perClient = Number(values.requests);
const rounds = Number(values.rounds);

const dir = await mkdtemp(path.join(tmpdir(), 'slim-serve-load-'));
try {
  let model = values.model;
  if (!model) {
    model = path.join(dir, 'resnet18-w0.25.onnx');
    await writeModel(buildZooModel('resnet18-cifar', { width: 0.25 }), model);
  }
  const images = await writeTestImages(path.join(dir, 'images'), { count: 24, resized: 8 });
  const bodies = await Promise.all(images.map((i) => readFile(i.file)));
  const served = await startServe(model, values.threads ? ['--threads', values.threads] : []);
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const round = async (n: number): Promise<{ latencies: number[]; errors: number; seconds: number }> => {
    const latencies: number[] = [];
    let errors = 0;
    const start = performance.now();
    await Promise.all(Array.from({ length: clients }, async (_, c) => {
      for (let k = 0; k < n; k++) {
        const t = performance.now();
        try {
          const r = await request(`${served.url}/v1/classify`, { method: 'POST', body: bodies[(c * 7 + k) % bodies.length]!, agent });
          if (r.status !== 200) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
    }));
    return { latencies, errors, seconds: (performance.now() - start) / 1000 };
  };
  try {
    await round(2);
    const rss: number[] = [await rssBytes(served.pid)];
    const all: number[] = [];
    let errors = 0;
    let seconds = 0;
    for (let r = 0; r < rounds; r++) {
      const res = await round(perClient);
      all.push(...res.latencies);
      errors += res.errors;
      seconds += res.seconds;
      rss.push(await rssBytes(served.pid));
    }
    // Garbage: every answer must be a 4xx, and the server must keep serving.
    const garbage = [
      () => request(`${served.url}/v1/classify`, { method: 'POST', body: 'not an image', agent }),
      () => request(`${served.url}/v1/classify`, { method: 'POST', body: bodies[0]!.subarray(0, 40), agent }),
      () => request(`${served.url}/v1/classify`, { method: 'POST', body: Buffer.alloc(11 * 1024 * 1024) }),
      () => request(`${served.url}/v1/classify`, { method: 'GET', agent }),
      () => request(`${served.url}/nope`, { method: 'POST', body: bodies[0]!, agent }),
    ];
    const statuses: Record<string, number> = {};
    await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const s = await garbage[i % garbage.length]!().then((r) => String(r.status), (e: NodeJS.ErrnoException) => e.code ?? 'error');
      statuses[s] = (statuses[s] ?? 0) + 1;
    }));
    const after = await round(2);
    const mib = (b: number): number => Math.round((b / 2 ** 20) * 10) / 10;
    console.log(JSON.stringify({
      bench: 'serve-load',
      model: path.basename(model),
      clients,
      requests: all.length,
      errors,
      rps: Math.round(all.length / seconds),
      latency_ms: { p50: +percentile(all, 50).toFixed(1), p90: +percentile(all, 90).toFixed(1), p99: +percentile(all, 99).toFixed(1) },
      rss_mib_by_round: rss.map(mib),
      garbage_statuses: statuses,
      errors_after_garbage: after.errors,
    }));
  } finally {
    agent.destroy();
    const code = await served.stop();
    if (code !== 0) console.error(`slim serve exited with ${code}:\n${served.stderr()}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

/**
 * The HTTP server (src/serve): answers against the classifier itself, every refusal of the hardening
 * list with its status and JSON body — and the server still serving afterwards —, the bounded queue,
 * graceful shutdown, static files without traversal, metrics, and a 200-client load on loopback.
 */
import { gunzipSync } from 'node:zlib';
import { mkdtemp, readFile, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { prepareModel } from '../src/deploy/prepare-model.js';
import type { BundleConfig } from '../src/deploy/config.js';
import { openClassifier, topK, type Classifier, type PreparedImage } from '../src/serve/classifier.js';
import { createClassifyServer, type ClassifyServer } from '../src/serve/server.js';
import { makeInt8CifarModel, writeTestImages, type TestImage } from './helpers/deploy-models.js';
import { percentile, request, rssBytes, startServe, uploadChunked } from './helpers/deploy-http.js';
import { SATURATING_HOST } from './helpers/int8-host.js';

let dir: string;
let modelFile: string;
let images: TestImage[];
let config: BundleConfig;
let classifier: Classifier;
let server: ClassifyServer;
let url: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'slim-deploy-server-'));
  modelFile = await makeInt8CifarModel(path.join(dir, 'int8.onnx'));
  images = await writeTestImages(path.join(dir, 'images'), { count: 12, resized: 4 });
  const prepared = await prepareModel(modelFile);
  config = { ...prepared.config, target: 'linux-x64', createdBy: { slimkit: 'test', onnxruntime: '1.30.0', sharp: sharp.versions.sharp } };
  classifier = await openClassifier({ config, model: prepared.bytes, threads: 1 });
  server = createClassifyServer({ classifier, maxBodyBytes: 1024 * 1024 });
  url = (await server.listen(0)).url;
}, 120_000);

afterAll(async () => {
  await server?.shutdown();
  await classifier?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A PNG whose header claims width×height pixels (a "pixel bomb": tiny file, huge decode). */
function pngHeader(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(64))), chunk('IEND', Buffer.alloc(0))]);
}

describe('POST /v1/classify', () => {
  it('answers every test image with the classifier\'s own top-k, latency and image facts', async () => {
    for (const img of images) {
      const bytes = await readFile(img.file);
      const reply = await request(`${url}/v1/classify?top=3`, { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
      expect(reply.status, reply.body.toString()).toBe(200);
      const body = reply.json();
      const [scores] = await classifier.run([await classifier.prepare(bytes)]);
      expect(body.top).toEqual(topK(scores!, config.labels, 3));
      expect(body.top).toHaveLength(3);
      expect(body.latency_ms).toBeGreaterThan(0);
      expect(body.latency_ms).toBeGreaterThanOrEqual(body.timings_ms.inference);
      const meta = await sharp(bytes).metadata();
      expect(body.image).toEqual({ format: meta.format === 'jpeg' ? 'jpeg' : meta.format, width: meta.width, height: meta.height });
    }
    // More than the model's classes: every class, as the default of 5 gives a model of fewer (it was a 400).
    const all = await request(`${url}/v1/classify?top=99`, { method: 'POST', body: await readFile(images[0]!.file) });
    expect(all.status).toBe(200);
    expect(all.json().top).toHaveLength(10);
  });

  it('refuses garbage with clear 4xx JSON errors and keeps serving', async () => {
    const png = await readFile(images[0]!.file);
    const cases: { name: string; send: () => Promise<{ status: number; body: string; headers?: http.IncomingHttpHeaders }>; status: number; code: string; says: RegExp }[] = [
      { name: 'text', send: () => asText(request(`${url}/v1/classify`, { method: 'POST', body: 'hello, world' })), status: 415, code: 'unsupported_media_type', says: /text/ },
      { name: 'html with an image content type', send: () => asText(request(`${url}/v1/classify`, { method: 'POST', body: '<html><body>x</body></html>', headers: { 'content-type': 'image/png' } })), status: 415, code: 'unsupported_media_type', says: /HTML/ },
      { name: 'multipart form', send: () => asText(request(`${url}/v1/classify`, { method: 'POST', body: '------x\r\nContent-Disposition: form-data; name="f"\r\n\r\n', headers: { 'content-type': 'multipart/form-data; boundary=----x' } })), status: 415, code: 'unsupported_media_type', says: /data-binary/ },
      { name: 'svg', send: () => asText(request(`${url}/v1/classify`, { method: 'POST', body: '<svg xmlns="http://www.w3.org/2000/svg"/>' })), status: 415, code: 'unsupported_media_type', says: /SVG/ },
      { name: 'empty body', send: () => asText(request(`${url}/v1/classify`, { method: 'POST' })), status: 400, code: 'empty_body', says: /no body/ },
      { name: 'truncated PNG', send: () => asText(request(`${url}/v1/classify`, { method: 'POST', body: png.subarray(0, Math.floor(png.length / 2)) })), status: 422, code: 'undecodable_image', says: /cannot read image/ },
      { name: 'pixel bomb', send: () => asText(request(`${url}/v1/classify`, { method: 'POST', body: pngHeader(20000, 20000) })), status: 413, code: 'image_too_large', says: /20000×20000/ },
      { name: 'Content-Length over the limit', send: () => asText(request(`${url}/v1/classify`, { method: 'POST', body: Buffer.alloc(1024 * 1024 + 1) })), status: 413, code: 'body_too_large', says: /larger than the limit of 1 MiB \(1,048,576 bytes\)/ },
      { name: 'chunked body over the limit', send: () => uploadChunked(`${url}/v1/classify`, 8 * 1024 * 1024), status: 413, code: 'body_too_large', says: /limit/ },
      { name: 'bad top', send: () => asText(request(`${url}/v1/classify?top=0`, { method: 'POST', body: png })), status: 400, code: 'bad_query', says: /whole number ≥ 1, got '0'/ },
      { name: 'GET on classify', send: () => asText(request(`${url}/v1/classify`)), status: 405, code: 'method_not_allowed', says: /POST/ },
      { name: 'DELETE on healthz', send: () => asText(request(`${url}/healthz`, { method: 'DELETE' })), status: 405, code: 'method_not_allowed', says: /GET/ },
      { name: 'unknown path', send: () => asText(request(`${url}/v2/predict`, { method: 'POST', body: png })), status: 404, code: 'not_found', says: /v1\/classify/ },
      { name: 'traversal-looking path', send: () => asText(request(`${url}/../../etc/passwd`)), status: 404, code: 'not_found', says: /no route/ },
    ];
    for (const c of cases) {
      const reply = await c.send();
      expect(reply.status, `${c.name}: ${reply.body}`).toBe(c.status);
      const error = JSON.parse(reply.body).error;
      expect(error, c.name).toMatchObject({ status: c.status, code: c.code });
      expect(error.message, c.name).toMatch(c.says);
      const ok = await request(`${url}/v1/classify`, { method: 'POST', body: png });
      expect(ok.status, `still serving after ${c.name}`).toBe(200);
    }
    const wrong = await request(`${url}/v1/classify`, { method: 'PUT', body: png });
    expect(wrong.headers['allow']).toBe('POST');
  });

  it('the pixel limit is the server\'s to raise: an 8000×6000 photo (48 MP) passes it at --max-megapixels 50, and the 413 says so', async () => {
    const photo = pngHeader(8000, 6000);
    const refused = await classifier.prepare(photo, 'photo.png').then(() => undefined, (e: unknown) => e as Error);
    expect(refused?.message).toMatch(/image is 8000×6000 = 48\.0 megapixels; the limit is 40\.0 — downscale it first .*, or raise the server's --max-megapixels/);
    const roomier = await openClassifier({ config, model: (await prepareModel(modelFile)).bytes, threads: 1, maxPixels: 50e6 });
    try {
      // Past the size check: the header-only PNG then fails to decode (422), not as too large (413).
      const next = await roomier.prepare(photo, 'photo.png').then(() => undefined, (e: unknown) => e as Error);
      expect(next?.message).toBeDefined();
      expect(next?.message).not.toMatch(/megapixels/);
    } finally {
      await roomier.close();
    }
  });

  it('answers malformed HTTP with 400 and keeps serving', async () => {
    const { port } = new URL(url);
    const net = await import('node:net');
    const raw = await new Promise<string>((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write('BREW /pot HTCPCP/1.0\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d.toString()));
      socket.on('close', () => resolve(text));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect((await request(`${url}/healthz`)).status).toBe(200);
  });
});

describe('GET /healthz, /v1/model, /metrics', () => {
  it('reports health and the model', async () => {
    const health = await request(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(health.json()).toMatchObject({ status: 'ok', model: config.name });
    const model = (await request(`${url}/v1/model`)).json();
    expect(model).toMatchObject({ sha256: config.model.sha256, labels: config.labels, input: { size: [32, 32], type: 'float32' } });
  });

  it('exposes Prometheus metrics whose counters follow the requests', async () => {
    const before = (await request(`${url}/metrics`)).body.toString();
    const count = (text: string, code: string): number =>
      Number(new RegExp(`^slim_http_requests_total\\{route="/v1/classify",method="POST",code="${code}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    const png = await readFile(images[1]!.file);
    for (let i = 0; i < 3; i++) await request(`${url}/v1/classify`, { method: 'POST', body: png });
    await request(`${url}/v1/classify`, { method: 'POST', body: 'not an image' });
    const reply = await request(`${url}/metrics`);
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const after = reply.body.toString();
    expect(count(after, '200') - count(before, '200')).toBe(3);
    expect(count(after, '415') - count(before, '415')).toBe(1);
    for (const family of ['slim_http_request_duration_seconds_bucket', 'slim_inference_duration_seconds_count', 'slim_batch_size_bucket', 'slim_queue_depth', 'slim_requests_in_flight', 'slim_queue_capacity 256', 'process_resident_memory_bytes']) {
      expect(after).toContain(family);
    }
    expect(after).toMatch(new RegExp(`slim_model_info\\{name="${config.name}",sha256="${config.model.sha256}",classes="10",input="float32\\[N,3,32,32\\]"[^}]*\\} 1`));
    // Every sample line is "name{labels} value" with a numeric value.
    for (const line of after.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^[a-z_]+(\{[^}]*\})? (-?[\d.e+-]+|\+Inf)$/);
  });
});

/** A classifier whose runs wait until released: makes queueing and draining deterministic. */
function gatedClassifier(): { classifier: Classifier; open(): void; started: () => number } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let runs = 0;
  const c: Classifier = {
    config: { ...config, labels: ['a', 'b'] },
    maxBatch: 1,
    threads: 1,
    prepare: async () => ({ data: new Float32Array(3), width: 1, height: 1 }) as PreparedImage,
    run: async (imgs) => {
      runs++;
      await gate;
      return imgs.map(() => Float64Array.of(0.25, 0.75));
    },
    close: async () => {},
  };
  return { classifier: c, open: () => release(), started: () => runs };
}

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('bounded queue and graceful shutdown', () => {
  it('answers 503 with Retry-After once the queue is full, and serves the admitted requests', async () => {
    const gated = gatedClassifier();
    const s = createClassifyServer({ classifier: gated.classifier, queueCapacity: 3 });
    const u = (await s.listen(0)).url;
    const png = await readFile(images[0]!.file);
    const admitted = [0, 1, 2].map(() => request(`${u}/v1/classify`, { method: 'POST', body: png }));
    await until(async () => (await request(`${u}/metrics`)).body.toString().includes('slim_requests_in_flight 3'));
    const refused = await request(`${u}/v1/classify`, { method: 'POST', body: png });
    expect(refused.status).toBe(503);
    expect(refused.json().error.code).toBe('queue_full');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    gated.open();
    for (const r of await Promise.all(admitted)) {
      expect(r.status).toBe(200);
      expect(r.json().top[0]).toMatchObject({ label: 'b', score: 0.75 });
    }
    await s.shutdown();
  });

  it('holds at most maxBufferedBytes of uploads: stalled uploads cannot take all the memory', async () => {
    const MiB = 1024 * 1024;
    const s = createClassifyServer({ classifier, maxBodyBytes: MiB, maxBufferedBytes: 2 * MiB });
    const u = (await s.listen(0)).url;
    const { hostname, port } = new URL(u);
    const net = await import('node:net');
    const stalled = [0, 1].map(() => {
      const socket = net.connect(Number(port), hostname, () => {
        socket.write(`POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: ${MiB}\r\n\r\n`);
        socket.write(Buffer.alloc(1024)); // …and the rest never comes
      });
      socket.on('error', () => {});
      return socket;
    });
    const bufferedIs = (n: number) => async () => (await request(`${u}/metrics`)).body.toString().includes(`slim_buffered_body_bytes ${n}\n`);
    try {
      await until(bufferedIs(2 * MiB));
      const png = await readFile(images[0]!.file);
      const refused = await request(`${u}/v1/classify`, { method: 'POST', body: png });
      expect(refused.status).toBe(503);
      expect(refused.json().error.code).toBe('busy');
      expect(refused.headers['retry-after']).toBe('1');
      for (const socket of stalled) socket.destroy();
      await until(bufferedIs(0));
      expect((await request(`${u}/v1/classify`, { method: 'POST', body: png })).status).toBe(200);
    } finally {
      for (const socket of stalled) socket.destroy();
      await s.shutdown();
    }
  });

  it('the access log: one line per request, with the top class or the refusal\'s code', async () => {
    const lines: string[] = [];
    const s = createClassifyServer({ classifier, accessLog: (line) => lines.push(line) });
    const u = (await s.listen(0)).url;
    try {
      const png = await readFile(images[0]!.file);
      const ok = (await request(`${u}/v1/classify?top=2`, { method: 'POST', body: png })).json();
      await request(`${u}/v1/classify`, { method: 'POST', body: Buffer.from('hello, not an image') });
      await request(`${u}/nowhere`);
      await request(`${u}/healthz`);
      await until(() => lines.length === 4);
      const stamp = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z 127\\.0\\.0\\.1';
      const top = ok.top[0] as { label: string; score: number };
      expect(lines[0]).toMatch(new RegExp(`^${stamp} POST /v1/classify\\?top=2 200 \\d+\\.\\d ms ${top.label} ${top.score.toFixed(3)}$`));
      expect(lines[1]).toMatch(new RegExp(`^${stamp} POST /v1/classify 415 \\d+\\.\\d ms unsupported_media_type$`));
      expect(lines[2]).toMatch(new RegExp(`^${stamp} GET /nowhere 404 \\d+\\.\\d ms not_found$`));
      expect(lines[3]).toMatch(new RegExp(`^${stamp} GET /healthz 200 \\d+\\.\\d ms$`));
    } finally {
      await s.shutdown();
    }
  });

  it('a stalled upload holds no place in the queue, and is answered 408 request_timeout when its time is up', async () => {
    // A queue of one: the stalled upload used to hold it, and every other client got 503 queue_full.
    const lines: string[] = [];
    const s = createClassifyServer({ classifier, queueCapacity: 1, requestTimeoutMs: 1000, accessLog: (line) => lines.push(line) });
    const u = (await s.listen(0)).url;
    const { hostname, port } = new URL(u);
    const net = await import('node:net');
    let answer = '';
    const stalled = net.connect(Number(port), hostname, () => {
      stalled.write('POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n');
      stalled.write(Buffer.alloc(100)); // …and the rest never comes
    });
    stalled.on('data', (d: Buffer) => (answer += d.toString()));
    stalled.on('error', () => {});
    const t0 = Date.now();
    try {
      await until(async () => (await request(`${u}/metrics`)).body.toString().includes('slim_buffered_body_bytes 5000\n'));
      const png = await readFile(images[0]!.file);
      expect((await request(`${u}/v1/classify`, { method: 'POST', body: png })).status).toBe(200);
      await until(() => answer.length > 0, 5000);
      expect(Date.now() - t0).toBeLessThan(4000);
      expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(answer).toMatch(/x-content-type-options: nosniff/);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ error: { status: 408, code: 'request_timeout', message: 'the request was not received in full within 1 s; send the whole body at once' } });
      // The access log names the timed-out client too (it never became a request Node handed over).
      expect(lines.filter((l) => / - 408 request_timeout$/.test(l))).toHaveLength(1);
    } finally {
      stalled.destroy();
      await s.shutdown();
    }
  });

  it('on shutdown finishes admitted requests, refuses new ones, then closes', async () => {
    const gated = gatedClassifier();
    const s = createClassifyServer({ classifier: gated.classifier });
    const u = (await s.listen(0)).url;
    const png = await readFile(images[0]!.file);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await request(`${u}/healthz`, { agent }); // one idle keep-alive socket
    const inFlight = [0, 1].map(() => request(`${u}/v1/classify`, { method: 'POST', body: png }));
    await until(() => gated.started() >= 1);
    // Both admitted before the shutdown (one batch at a time: the second waits in the queue, unseen by the
    // classifier; on a busy machine it arrived after the shutdown began and was rightly refused).
    await until(async () => /^slim_requests_in_flight 2$/m.test((await request(`${u}/metrics`)).body.toString()));
    let closed = false;
    const done = s.shutdown().then(() => (closed = true));
    expect(s.draining).toBe(true);
    // While the admitted requests finish, a new client is answered — 503, not a reset or a refused
    // connection — so a load balancer's health check and a client's retry logic hear why.
    const health = await request(`${u}/healthz`);
    expect(health.status).toBe(503);
    expect(health.headers['connection']).toBe('close');
    const late = await request(`${u}/v1/classify`, { method: 'POST', body: png });
    expect([late.status, late.json().error.code, late.headers['retry-after']]).toEqual([503, 'draining', '5']);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(false); // still waiting for the admitted requests
    gated.open();
    for (const r of await Promise.all(inFlight)) expect(r.status).toBe(200);
    await done;
    expect(closed).toBe(true);
    await expect(request(`${u}/healthz`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    agent.destroy();
  });

  it('every one of many concurrent requests at shutdown gets an answer: 200 or 503, none reset', async () => {
    const gated = gatedClassifier();
    const s = createClassifyServer({ classifier: gated.classifier });
    const u = (await s.listen(0)).url;
    const png = await readFile(images[0]!.file);
    const all = Array.from({ length: 20 }, () => request(`${u}/v1/classify`, { method: 'POST', body: png }).then((r) => r.status, (e: NodeJS.ErrnoException) => e.code));
    await until(() => gated.started() >= 1);
    const done = s.shutdown();
    gated.open();
    const statuses = await Promise.all(all);
    await done;
    expect(statuses.filter((st) => st !== 200 && st !== 503), JSON.stringify(statuses)).toEqual([]);
    expect(statuses).toContain(200);
  });
});

describe('static files (web bundles)', () => {
  it('a bad request behind a streaming file closes the connection instead of writing a 400 into the file', async () => {
    const root = path.join(dir, 'big-site');
    await mkdir(root, { recursive: true });
    await writeFile(path.join(root, 'big.bin'), Buffer.alloc(16 * 1024 * 1024, 0x61));
    const s = createClassifyServer({ classifier, staticDir: root });
    const u = (await s.listen(0)).url;
    const { hostname, port } = new URL(u);
    const net = await import('node:net');
    try {
      const received = await new Promise<Buffer>((resolve, reject) => {
        const socket = net.connect(Number(port), hostname, () => socket.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n'));
        const chunks: Buffer[] = [];
        socket.once('data', () => setTimeout(() => socket.write('BOGUS LINE\r\n\r\n'), 5));
        socket.on('data', (d: Buffer) => chunks.push(d));
        socket.on('close', () => resolve(Buffer.concat(chunks)));
        socket.on('error', reject);
      });
      const body = received.subarray(received.indexOf('\r\n\r\n') + 4);
      expect(body.indexOf('HTTP/1.1 400')).toBe(-1);
      expect(body.every((b) => b === 0x61)).toBe(true);
    } finally {
      await s.shutdown();
    }
  });

  it('serves files under the root only', async () => {
    const root = path.join(dir, 'site');
    await mkdir(path.join(root, 'ort'), { recursive: true });
    await writeFile(path.join(root, 'index.html'), '<p>hi</p>');
    await writeFile(path.join(root, 'ort', 'x.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d]));
    await writeFile(path.join(dir, 'secret.txt'), 'SECRET-CONTENT-42');
    await writeFile(path.join(root, '.env'), 'TOKEN=1');
    await symlink(path.join(dir, 'secret.txt'), path.join(root, 'link.txt'));
    const s = createClassifyServer({ classifier, staticDir: root });
    const u = (await s.listen(0)).url;
    try {
      const index = await request(`${u}/`);
      expect(index.status).toBe(200);
      expect(index.headers['content-type']).toMatch(/text\/html/);
      expect(index.body.toString()).toBe('<p>hi</p>');
      const wasm = await request(`${u}/ort/x.wasm`);
      expect(wasm.headers['content-type']).toBe('application/wasm');
      // Revalidated, not re-downloaded: a browser sending the ETag back gets 304 (a trial's page fetched
      // the 13.6 MiB runtime on every load); gzipped for a client that accepts it, the same bytes unpacked.
      const etag = wasm.headers['etag']!;
      expect(etag).toMatch(/^W\/"[0-9a-f]+-[0-9a-f]+"$/);
      expect(wasm.headers['last-modified']).toBeDefined();
      const again = await request(`${u}/ort/x.wasm`, { headers: { 'if-none-match': etag } });
      expect(again.status).toBe(304);
      expect(again.body.length).toBe(0);
      expect((await request(`${u}/ort/x.wasm`, { headers: { 'if-none-match': 'W/"0-0"' } })).status).toBe(200);
      const packed = await request(`${u}/index.html`, { headers: { 'accept-encoding': 'gzip, br' } });
      expect(packed.headers['content-encoding']).toBe('gzip');
      expect(packed.headers['vary']).toBe('accept-encoding');
      expect(gunzipSync(packed.body).toString()).toBe('<p>hi</p>');
      // If-Modified-Since alone revalidates too; a write to a page file is 405, not "no route".
      expect((await request(`${u}/ort/x.wasm`, { headers: { 'if-modified-since': wasm.headers['last-modified']! } })).status).toBe(304);
      expect((await request(`${u}/ort/x.wasm`, { headers: { 'if-modified-since': new Date(0).toUTCString() } })).status).toBe(200);
      const put = await request(`${u}/index.html`, { method: 'PUT', body: 'x' });
      expect(put.status).toBe(405);
      expect(put.headers['allow']).toBe('GET, HEAD');
      const head = await request(`${u}/index.html`, { method: 'HEAD', headers: { 'accept-encoding': 'gzip' } });
      expect(head.headers['content-length']).toBe(String(packed.body.length));
      expect(head.body.length).toBe(0);
      // Sent over a raw socket: URL parsers in clients would remove the dot segments first.
      for (const evil of ['/../secret.txt', '/ort/../../secret.txt', '/%2e%2e/secret.txt', '/ort/..%2f..%2fsecret.txt', '/%2e%2e%5csecret.txt', '/link.txt', '/.env', '/index.html%00.png', '/%zz']) {
        const reply = await rawGet(u, evil);
        expect(reply, evil).toMatch(/^HTTP\/1\.1 40[04] /);
        expect(reply, evil).not.toContain('SECRET-CONTENT');
        expect(reply, evil).not.toContain('TOKEN');
      }
      expect((await request(`${u}/v1/classify`, { method: 'POST', body: await readFile(images[0]!.file) })).status).toBe(200);
    } finally {
      await s.shutdown();
    }
  });
});

describe('slim serve (a separate process)', () => {
  it('serves 200 concurrent clients with 0 errors, flat RSS, and stops gracefully on SIGTERM', async () => {
    const served = await startServe(modelFile, ['--threads', '1']);
    const bodies = await Promise.all(images.map((i) => readFile(i.file)));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
    const round = async (perClient: number): Promise<{ latencies: number[]; errors: string[] }> => {
      const latencies: number[] = [];
      const errors: string[] = [];
      await Promise.all(Array.from({ length: 200 }, async (_, c) => {
        for (let k = 0; k < perClient; k++) {
          const start = performance.now();
          try {
            const r = await request(`${served.url}/v1/classify`, { method: 'POST', body: bodies[(c + k) % bodies.length]!, agent });
            if (r.status !== 200) errors.push(`${r.status} ${r.body}`);
          } catch (e) {
            errors.push(String(e));
          }
          latencies.push(performance.now() - start);
        }
      }));
      return { latencies, errors };
    };
    try {
      await round(2); // warm-up: sockets, ORT arenas, sharp caches
      await round(2); // allocator high-water marks settle in the first rounds
      const rssBefore = await rssBytes(served.pid);
      const { latencies, errors } = await round(5);
      const rssAfter = await rssBytes(served.pid);
      const p50 = percentile(latencies, 50);
      const p99 = percentile(latencies, 99);
      console.log(`serve load: 200 clients × 5 requests, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB`);
      expect(errors).toEqual([]);
      expect(latencies).toHaveLength(1000);
      expect(rssAfter - rssBefore).toBeLessThan(24 * 2 ** 20);
      // Garbage in between does not disturb the process.
      expect((await request(`${served.url}/v1/classify`, { method: 'POST', body: 'garbage' })).status).toBe(415);
      expect((await request(`${served.url}/healthz`)).status).toBe(200);
    } finally {
      agent.destroy();
      const code = await served.stop();
      expect(code).toBe(0);
      expect(served.stderr()).toMatch(/SIGTERM received[\s\S]*closed/);
      // One access-log line per request: 2 × 400 warm-up, 1,000 timed, then the garbage one.
      expect(served.stderr().match(/ POST \/v1\/classify 200 \d+\.\d ms \S+ \d\.\d{3}\n/g)).toHaveLength(1800);
      expect(served.stderr()).toMatch(/ POST \/v1\/classify 415 \d+\.\d ms unsupported_media_type\n/);
      // Its 8-bit weights, served on a CPU whose int8 sums saturate: said (helpers/int8-host.ts).
      expect(/slim serve: note: this CPU \(x64 without VNNI\) .* can saturate with .*'s 8-bit weights/.test(served.stderr())).toBe(SATURATING_HOST);
    }
  }, 120_000);

  it('--no-access-log: no line per request', async () => {
    const served = await startServe(modelFile, ['--threads', '1', '--no-access-log']);
    try {
      expect((await request(`${served.url}/v1/classify`, { method: 'POST', body: await readFile(images[0]!.file) })).status).toBe(200);
      expect((await request(`${served.url}/nowhere`)).status).toBe(404);
    } finally {
      expect(await served.stop()).toBe(0);
    }
    expect(served.stderr()).toMatch(/listening on/);
    expect(served.stderr()).not.toMatch(/\/v1\/classify 200|\/nowhere 404/);
  }, 60_000);
});

function rawGet(base: string, target: string): Promise<string> {
  const { hostname, port } = new URL(base);
  return import('node:net').then((net) => new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.on('data', (d) => (text += d.toString()));
    socket.on('close', () => resolve(text));
    socket.on('error', reject);
  }));
}

function asText(p: Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }>): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return p.then((r) => ({ status: r.status, body: r.body.toString(), headers: r.headers }));
}

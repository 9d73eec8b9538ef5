/**
 * The web bundle in a real browser: Debian's Chromium, driven by playwright-core, opens the page served
 * by `slim serve`'s static handler, a file is chosen (and one dropped), and onnxruntime-web (wasm)
 * classifies it. Oracle: the Node classifier (sharp + onnxruntime-node) on the same file — identical
 * pixels and top-1 for images at the model's size, top-1 and near-identical pixels for resized ones.
 */
import { formatBytes } from '../src/report/format.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ortWebVersion } from '../src/runtime/ort-web.js';
import { deploy, type DeployResult } from '../src/deploy/bundle.js';
import { readBundle } from '../src/deploy/open-bundle.js';
import { loadImageFile } from '../src/data/index.js';
import { openClassifier, topK, type Classifier } from '../src/serve/classifier.js';
import { createClassifyServer, type ClassifyServer } from '../src/serve/server.js';
import { makeInt8CifarModel, withPixelPreprocessing, writeTestImages, type TestImage } from './helpers/deploy-models.js';
import { readModel, writeModel } from '../src/onnx/io.js';
import { request } from './helpers/deploy-http.js';
import { CHROMIUM, chromiumReady, gate } from './helpers/deploy-prereq.js';
import { fixturePath } from './helpers/fixtures.js';

const ready = gate('web bundle in Chromium', chromiumReady());

let dir: string;
let images: TestImage[];
let web: DeployResult;
let classifier: Classifier;
let server: ClassifyServer;
let url: string;
let browser: BrowserContext;
let page: Page;
let modelFile: string;

interface PageResult {
  file: string;
  top: { index: number; label: string; score: number }[];
  latency_ms: number;
  pixels: number[];
}

beforeAll(async () => {
  if (!ready) return;
  dir = await mkdtemp(path.join(tmpdir(), 'slim-deploy-web-'));
  const model = (modelFile = await makeInt8CifarModel(path.join(dir, 'int8.onnx')));
  images = await writeTestImages(path.join(dir, 'images'), { count: 10, resized: 4 });
  web = await deploy({ model, target: 'web', out: path.join(dir, 'site') });
  const bundle = await readBundle(web.out);
  classifier = await openClassifier({ config: bundle.config, model: bundle.modelPath, threads: 1 });
  server = createClassifyServer({ classifier, staticDir: web.out });
  url = (await server.listen(0)).url;
  browser = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
  await page.goto(`${url}/`);
  await page.waitForSelector('#status[data-state=ready], #status[data-state=error]', { timeout: 60_000 });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.shutdown();
  await classifier?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `use` gets a page showing the web bundle in `siteDir` (served with its own classifier, also passed), then all is closed. */
async function onBundlePage(siteDir: string, use: (page: Page, classifier: Classifier) => Promise<void>): Promise<void> {
  const bundle = await readBundle(siteDir);
  const own = await openClassifier({ config: bundle.config, model: bundle.modelPath, threads: 1 });
  const server = createClassifyServer({ classifier: own, staticDir: siteDir });
  const other = await browser.newPage();
  try {
    await other.goto(`${(await server.listen(0)).url}/`);
    await other.waitForSelector('#status[data-state=ready], #status[data-state=error]', { timeout: 60_000 });
    await use(other, own);
  } finally {
    await other.close();
    await server.shutdown();
    await own.close();
  }
}

/** An async function body run in the page as written (vitest would rewrite an import() in a function passed to evaluate). */
const inBrowser = (body: string): string => `(async () => {${body}\n})()`;

async function classifyInPage(file: string, on: Page = page): Promise<PageResult> {
  await on.evaluate(() => {
    delete window.slimLast;
    delete window.slimError;
  });
  await on.setInputFiles('#file', file);
  await on.waitForFunction(() => window.slimLast !== undefined || window.slimError !== undefined, undefined, { timeout: 60_000 });
  const error = await on.evaluate(() => window.slimError);
  expect(error).toBeUndefined();
  return (await on.evaluate(() => window.slimLast)) as PageResult;
}

describe.runIf(ready)('web bundle in headless Chromium', () => {
  it('is a static site: page, app, model, config and onnxruntime-web', () => {
    expect(web.files.map((f) => f.path).sort()).toEqual(['README.md', 'app.js', 'classifier.js', 'index.html', 'model.onnx', 'ort/ort-wasm-simd-threaded.wasm', 'ort/ort.wasm.bundle.min.mjs', 'slim.json']);
    // It names the runtime it ships: onnxruntime-web's version, not onnxruntime-node's.
    expect(classifier.config.createdBy.onnxruntime).toBe(ortWebVersion());
  });

  it("its README says how to use the model from one's own page: slim.json's contract (a trial found only how to open the demo)", async () => {
    const readme = await readFile(path.join(web.out, 'README.md'), 'utf8');
    expect(readme).toContain('## Use the model from your own page');
    expect(readme).toContain('`preprocess.layout` (NCHW), `channels`, `scale`, `mean`, `std`: each value is\n  (pixel × scale − mean) / std, channel by channel;');
    expect(readme).toContain('`labels`: output i is `labels[i]`');
    // The page weight, runtime included, with its gzipped size (a trial's model was 1 % of the download).
    const files = await Promise.all(['ort/ort-wasm-simd-threaded.wasm', 'ort/ort.wasm.bundle.min.mjs'].map((f) => readFile(path.join(web.out, f))));
    const runtime = files.reduce((a, f) => a + f.length, 0);
    expect(readme).toContain('## Page weight');
    expect(readme).toContain(`onnxruntime-web's WebAssembly build\n(\`ort/\`: ${formatBytes(runtime)}, `);
    expect(readme).toMatch(/gzipped\) — pruning and int8 shrink only the model/);
  });

  it("classifier.js is the page's classifier as a module for one's own page: loadClassifier() classifies a Blob as the Node classifier does", async () => {
    const readme = await readFile(path.join(web.out, 'README.md'), 'utf8');
    expect(readme).toContain("import { loadClassifier } from './classifier.js';");
    // The page imports it rather than holding a copy.
    expect(await readFile(path.join(web.out, 'app.js'), 'utf8')).toContain('from "./classifier.js"');
    const own = await browser.newPage();
    try {
      // Another page of the site (the user's), importing the module by URL.
      await own.goto(`${url}/slim.json`);
      for (const img of images.slice(0, 3)) {
        const bytes = await readFile(img.file);
        const inPage = (await own.evaluate(inBrowser(`
          const { loadClassifier } = await import('${url}/classifier.js');
          const model = await loadClassifier();
          const r = await model.classify(new Blob([new Uint8Array(${JSON.stringify(Array.from(bytes))})]), { top: 3 });
          await model.close();
          return { top: r.top, scores: Array.from(r.scores), pixels: Array.from(r.pixels), labels: model.config.labels };`))) as { top: PageResult['top']; scores: number[]; pixels: number[]; labels: string[] };
        const [scores] = await classifier.run([await classifier.prepare(bytes)]);
        const { pixels } = await loadImageFile(bytes, { size: [32, 32] });
        expect(inPage.labels).toEqual(classifier.config.labels);
        expect(inPage.pixels, img.file).toEqual(Array.from(pixels));
        expect(inPage.top.map((p) => p.label), img.file).toEqual(topK(scores!, classifier.config.labels, 3).map((p) => p.label));
        expect(inPage.scores).toHaveLength(10);
        inPage.scores.forEach((v, i) => expect(Math.abs(v - scores![i]!), img.file).toBeLessThan(1e-4));
      }
      // A folder that holds no bundle is named, with what to pass instead.
      const missing = await own.evaluate(inBrowser(`
        const { loadClassifier } = await import('${url}/classifier.js');
        return loadClassifier('/nowhere').then(() => 'loaded', (e) => e.message);`));
      expect(missing).toBe(`cannot load ${url}/nowhere/slim.json (HTTP 404): pass loadClassifier the URL of the bundle folder, served over HTTP`);
    } finally {
      await own.close();
    }
  }, 120_000);

  it('loads the model and classifies chosen images like the Node classifier', async () => {
    expect(await page.textContent('#status')).toMatch(/Ready/);
    // slim serve sends the cross-origin isolation headers: onnxruntime-web may run threads.
    expect(await page.evaluate('self.crossOriginIsolated')).toBe(true);
    let resized = 0;
    for (const img of images) {
      const inPage = await classifyInPage(img.file);
      const bytes = await readFile(img.file);
      const { pixels } = await loadImageFile(bytes, { size: [32, 32] });
      const [scores] = await classifier.run([await classifier.prepare(bytes)]);
      const expected = topK(scores!, classifier.config.labels, 5);
      if (!img.file.endsWith('.png')) resized++;
      // The page resizes with slimkit's own code (Pillow's arithmetic), so even the JPEG and WebP images
      // it decodes and resizes give the model the Node classifier's bytes (its own resampler, aligned as
      // libvips, was up to 15 levels off).
      expect(inPage.pixels, img.file).toEqual(Array.from(pixels));
      expect(inPage.top[0]!.label, img.file).toBe(expected[0]!.label);
      inPage.top.forEach((p) => expect(Math.abs(p.score - scores![p.index]!), img.file).toBeLessThan(1e-4));
      const shown = await page.$$eval('#results li', (items) => items.map((li) => li.textContent ?? ''));
      expect(shown).toHaveLength(5);
      expect(shown[0]).toContain(expected[0]!.label);
      expect(await page.getAttribute('#status', 'data-state')).toBe('done');
    }
    expect(resized).toBe(4);
  }, 120_000);

  it('classifies a dropped image and reports a non-image without breaking', async () => {
    const file = images[1]!;
    const bytes = await readFile(file.file);
    await page.evaluate(() => {
      delete window.slimLast;
      delete window.slimError;
    });
    const drop = await page.evaluateHandle(({ data, name }) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(data)], name, { type: 'image/png' }));
      return dt;
    }, { data: Array.from(bytes), name: path.basename(file.file) });
    await page.dispatchEvent('#drop', 'drop', { dataTransfer: drop });
    await page.waitForFunction(() => window.slimLast !== undefined, undefined, { timeout: 60_000 });
    const [scores] = await classifier.run([await classifier.prepare(bytes)]);
    expect((await page.evaluate(() => window.slimLast!.top[0]!.label))).toBe(topK(scores!, classifier.config.labels, 1)[0]!.label);

    const junk = path.join(dir, 'junk.png');
    await import('node:fs/promises').then((fs) => fs.writeFile(junk, 'not really a png'));
    await page.setInputFiles('#file', junk);
    await page.waitForSelector('#status[data-state=error]');
    expect(await page.textContent('#status')).toMatch(/junk\.png: cannot classify — this browser cannot decode it \(image\/png: .*\); JPEG, PNG, WebP, GIF, BMP and AVIF work everywhere/);
    // The previous image's scores and picture are gone: under the error they would read as the junk's.
    expect(await page.$$eval('#results li', (items) => items.length)).toBe(0);
    expect(await page.$eval('#preview', (img) => (img as HTMLImageElement).style.display)).toBe('none');
    await classifyInPage(images[2]!.file); // and it still works
  }, 60_000);

  it('a model that takes raw channels-last pixels (uint8 N×H×W×C, normalizing inside) scores in the page as the float one', async () => {
    const file = path.join(dir, 'pixels.onnx');
    await writeModel(withPixelPreprocessing(await readModel(modelFile)), file);
    const site = await deploy({ model: file, target: 'web', out: path.join(dir, 'site-pixels') });
    const bundle = await readBundle(site.out);
    expect(bundle.config.preprocess.layout).toBe('NHWC');
    // It is fed the decoded values, and the bundle says so instead of listing statistics nothing applies.
    expect(bundle.config.preprocess).toMatchObject({ scale: 1, mean: [0, 0, 0], std: [1, 1, 1] });
    const readme = await readFile(path.join(site.out, 'README.md'), 'utf8');
    expect(readme).toContain('then fed as the decoded 0–255 values (uint8): the model normalizes them itself');
    expect(readme).not.toMatch(/normalized with mean|× scale − mean/);
    expect(readme).toContain('`preprocess.layout` (NHWC), `channels`: the decoded 0–255 values as they are (uint8), the model normalizes them itself;');
    await expect(deploy({ model: file, target: 'linux-x64', out: path.join(dir, 'pixels-mean'), mean: [0.1, 0.2, 0.3], std: [0.5, 0.5, 0.5] }))
      .rejects.toThrow(/pixels\.onnx takes raw uint8 pixels and normalizes them itself: --mean and --std would not be applied — drop --mean and --std/);
    await onBundlePage(site.out, async (pixelsPage) => {
      for (const img of images.filter((i) => i.file.endsWith('.png')).slice(0, 3)) {
        const inPage = await classifyInPage(img.file, pixelsPage);
        const [scores] = await classifier.run([await classifier.prepare(await readFile(img.file))]);
        expect(inPage.top[0]!.label, img.file).toBe(topK(scores!, classifier.config.labels, 1)[0]!.label);
        inPage.top.forEach((p) => expect(Math.abs(p.score - scores![p.index]!), img.file).toBeLessThan(1e-4));
      }
    });
  }, 120_000);

  it('a grayscale model (1 channel): the page feeds one luma plane, as the Node classifier does', async () => {
    const site = await deploy({ model: fixturePath('torch-tiny-resnet-gray.onnx'), target: 'web', out: path.join(dir, 'site-gray') });
    const bundle = await readBundle(site.out);
    expect(bundle.config.preprocess).toMatchObject({ channels: 'grayscale', size: [28, 28], mean: [0.5], std: [0.5] });
    await onBundlePage(site.out, async (grayPage, grayClassifier) => {
      for (const img of images.filter((i) => i.file.endsWith('.png')).slice(0, 3)) {
        const inPage = await classifyInPage(img.file, grayPage);
        const bytes = await readFile(img.file);
        const { pixels } = await loadImageFile(bytes, { size: [28, 28], channels: 1 });
        expect(inPage.pixels).toHaveLength(28 * 28);
        const meanDiff = inPage.pixels.reduce((a, v, i) => a + Math.abs(v - pixels[i]!), 0) / pixels.length;
        expect(meanDiff, img.file).toBeLessThan(3);
        const [scores] = await grayClassifier.run([await grayClassifier.prepare(bytes)]);
        inPage.top.forEach((p) => expect(Math.abs(p.score - scores![p.index]!), img.file).toBeLessThan(1e-4));
      }
    });
  }, 120_000);

  it('the same server answers the API beside the page', async () => {
    const reply = await request(`${url}/v1/classify`, { method: 'POST', body: await readFile(images[0]!.file) });
    expect(reply.status).toBe(200);
    const wasm = await request(`${url}/ort/ort-wasm-simd-threaded.wasm`, { method: 'HEAD' });
    expect(wasm.headers['content-type']).toBe('application/wasm');
  });
});

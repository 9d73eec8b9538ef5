/**
 * Text files of a bundle: package.json (exact onnxruntime-node and sharp versions), install.sh, the
 * systemd unit, the device README and the web page's HTML. Pure functions of the bundle config.
 */
import { shellWord } from '../util/shell.js';
import type { BundleConfig } from './config.js';
import { formatBytes, formatPercent } from '../report/format.js';
import { describeResize } from '../data/image-folder.js';

export interface TemplateContext {
  config: BundleConfig;
  /** Safe name for the package, the unit file and /opt/<name>. */
  serviceName: string;
  port: number;
  /** The bundle folder's name, as `slim deploy --out` made it (the README's copy command names it). */
  folder?: string;
  /** A web bundle's runtime files (ort/): bytes as copied and gzipped, for the page weight it states. */
  webRuntime?: { bytes: number; gzipBytes: number };
}

const NPM_PLATFORM = { 'linux-arm64': { os: 'linux', cpu: 'arm64' }, 'linux-x64': { os: 'linux', cpu: 'x64' } } as const;

export function packageJson({ config, serviceName }: TemplateContext): string {
  if (config.target === 'web') {
    return `${JSON.stringify({ name: serviceName, version: '1.0.0', private: true, description: `${config.name}: image classifier for the browser (onnxruntime-web), made by slimkit` }, null, 2)}\n`;
  }
  // No "os"/"cpu" fields: npm refuses a root package whose cpu differs from the host even with
  // --cpu, which would break `slim deploy --install` on an x86 host. install.sh checks uname instead.
  return `${JSON.stringify({
    name: serviceName,
    version: '1.0.0',
    private: true,
    description: `${config.name}: image classifier for ${config.target}, made by slimkit ${config.createdBy.slimkit}`,
    type: 'module',
    engines: { node: '>=20.9.0' },
    scripts: { start: 'node server.js', predict: 'node predict.js', doctor: 'node doctor.js' },
    dependencies: { 'onnxruntime-node': config.createdBy.onnxruntime, sharp: config.createdBy.sharp },
  }, null, 2)}\n`;
}

export function installScript({ config }: TemplateContext): string {
  const platform = config.target === 'web' ? undefined : NPM_PLATFORM[config.target];
  return `#!/bin/sh
# Installs this bundle's two dependencies (onnxruntime-node, sharp) at the exact versions in package.json.
# Run it once on the device, in this folder. Needs Node.js >= 20.9 and npm; the npm registry must be reachable
# (or copy a bundle made with \`slim deploy --install\`, which already holds node_modules).
set -eu
cd "$(dirname "$0")"
# Node's architecture, not the kernel's: 32-bit Raspberry Pi OS on a Pi 4/5 boots a 64-bit kernel
# (uname -m: aarch64) under a 32-bit userland and Node (arm), for which onnxruntime-node has no binary.
node_arch=$(node -p process.arch 2>/dev/null || echo "none (is Node.js installed?)")
case "$node_arch" in
  arm64|x64) ;;
  *) echo "install.sh: Node.js here is built for $node_arch; bundles run on 64-bit Node (arm64 or x64)." >&2
     echo "            32-bit Raspberry Pi OS has 32-bit Node even on a 64-bit kernel: install the 64-bit OS." >&2
     exit 1 ;;
esac
if [ "$node_arch" != "${platform?.cpu === 'arm64' ? 'arm64' : 'x64'}" ]; then
  echo "install.sh: note: this bundle was made for ${config.target}; installing the dependencies for $node_arch instead" >&2
  rm -rf node_modules package-lock.json
fi
# The npm packages already hold the CPU runtime and sharp's prebuilt libvips: the only install script,
# onnxruntime-node's optional GPU download, is not wanted (--ignore-scripts; it also keeps npm 11 from
# asking to approve it).
if [ -f package-lock.json ]; then
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --no-audit --no-fund --ignore-scripts
else
  ONNXRUNTIME_NODE_INSTALL=skip npm install --omit=dev --no-audit --no-fund --ignore-scripts
fi
node doctor.js
`;
}

export function systemdUnit({ config, serviceName, port }: TemplateContext): string {
  return `# systemd unit for the ${config.name} classifier. Install (see README.md):
#   sudo cp -r . /opt/${serviceName} && sudo cp /opt/${serviceName}/${serviceName}.service /etc/systemd/system/
#   sudo systemctl daemon-reload && sudo systemctl enable --now ${serviceName}
[Unit]
Description=slimkit image classifier ${config.name} (HTTP :${port})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
WorkingDirectory=/opt/${serviceName}
ExecStart=/usr/bin/env node /opt/${serviceName}/server.js
Environment=PORT=${port}
Environment=HOST=0.0.0.0
Environment=NODE_ENV=production
# Environment=SLIM_THREADS=4
# SIGTERM: the server answers admitted requests (up to 30 s), then exits.
KillSignal=SIGTERM
TimeoutStopSec=45
Restart=on-failure
RestartSec=2
# Runs as a throw-away unprivileged user with a read-only view of the system.
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes

[Install]
WantedBy=multi-user.target
`;
}

/** How an image is brought to the input size, in the READMEs' words. */
function geometryText(p: BundleConfig['preprocess']): string {
  if (p.resize === 'stretch') return 'stretched to the size (each side scaled on its own)';
  if (p.resize === 'shorter-side') return 'scaled so its shorter side fits and centre-cropped (torchvision Resize + CenterCrop)';
  return `scaled so its shorter side is ${p.resize.shorterSide} and centre-cropped (torchvision Resize(${p.resize.shorterSide}) + CenterCrop)`;
}

/** What the model is fed: normalized floats, or the decoded 0–255 values a uint8 model normalizes itself. */
function valuesText(config: BundleConfig): string {
  const p = config.preprocess;
  return config.model.inputType === 'uint8'
    ? 'fed as the decoded 0–255 values (uint8): the model normalizes them itself'
    : `normalized with mean ${JSON.stringify(p.mean)} and std ${JSON.stringify(p.std)} (pixels scaled to 0..1)`;
}

/** The `slim eval` that feeds a folder's images as the bundle does. */
function evalCommand(p: BundleConfig['preprocess']): string {
  return p.resize === 'shorter-side' ? 'slim eval' : `slim eval --resize ${describeResize(p.resize)}`;
}

/**
 * An int8 model scored on an x64 CPU without VNNI, whose 16-bit int8 sums saturate: arm64 and the
 * browser compute it exactly (the exact-kernel score is theirs); an x64 target may be either kind of CPU.
 */
function exactKernelsScore(target: BundleConfig['target'], saturated: number, exact: number): string {
  const made = `the machine that made it (an x64 CPU without VNNI, whose int8 sums saturate) measured ${formatPercent(saturated)}`;
  if (target === 'linux-arm64') return `Top-1 **${formatPercent(exact)}** on this device's int8 kernels, which compute exactly (${made})`;
  if (target === 'web') return `Top-1 **${formatPercent(exact)}** in the browser, whose int8 kernels compute exactly (${made})`;
  return `Top-1 **${formatPercent(exact)}** on x64 CPUs with VNNI or AMX (exact int8 kernels), **${formatPercent(saturated)}** on x64 CPUs without them,
whose 16-bit int8 sums saturate (\`node doctor.js\` says which this CPU is)`;
}

/**
 * What the model scores and how it was made, from what its file records: a trial shipping to a Pi found
 * size and hash in the bundle, and no accuracy or history.
 */
function madeSection(config: BundleConfig): string {
  const t = config.model.top1;
  const on = t ? [t.images !== undefined ? `${t.images.toLocaleString('en')} images` : undefined, t.data].filter(Boolean).join(' of ') : '';
  const score = t?.exactKernels !== undefined
    ? `${exactKernelsScore(config.target, t.value, t.exactKernels)}${on ? `, on ${on}` : ''}: what slimkit recorded for this model as it is
(ONNX Runtime). \`slim eval model.onnx --data <your test images>\` measures it again on images of your own, with this CPU's kernels.`
    : t
    ? `Top-1 **${(t.value * 100).toFixed(2)} %**${on ? ` on ${on}` : ''}: what slimkit recorded for this model as it is (ONNX Runtime, on the machine that made it; another
CPU's int8 kernels may round a score one step apart, so a borderline image can flip).
\`slim eval model.onnx --data <your test images>\` measures it again on images of your own.`
    : config.model.top1Note
      ? `No top-1 is stated: ${config.model.top1Note}. Measure it as this bundle runs it before you ship it
(\`slim eval\` with the bundle's --image-size and --resize, on your test images).`
      : `No top-1 is recorded for this model as it is (the last step that changed its weights did not score them):
\`slim eval model.onnx --data <your test images>\` measures it before you ship it.`;
  const steps = config.model.made?.length ? `\n\nHow it was made (\`slim info model.onnx\` shows the same):\n\n${config.model.made.map((l) => `    ${l}`).join('\n')}` : '';
  return `## What it scores

${score}${steps}
`;
}

function labelsPreview(labels: readonly string[]): string {
  const shown = labels.slice(0, 20).map((l, i) => `${i}=${l}`).join(', ');
  return labels.length > 20 ? `${shown}, … (${labels.length} in all; see slim.json)` : shown;
}

export function nodeReadme(ctx: TemplateContext): string {
  const { config, serviceName, port, folder } = ctx;
  const p = config.preprocess;
  const arm = config.target === 'linux-arm64';
  const device = arm ? 'a 64-bit ARM Linux device (Raspberry Pi 4 / 5 with 64-bit Raspberry Pi OS, Jetson, Graviton, …)' : 'a 64-bit x86 Linux machine';
  // The sample answer names a class the model has, with its own index.
  const exampleClass = Math.min(3, config.labels.length - 1);
  return `# ${config.name} — image classifier for ${config.target}

Made by slimkit ${config.createdBy.slimkit}. Runs on ${device} with Node.js — no Python, no build step.

| file | what it is |
| --- | --- |
| \`model.onnx\` | the model (${formatBytes(config.model.bytes)}, sha256 \`${config.model.sha256}\`) |
| \`slim.json\` | preprocessing, labels and the model's input/output names |
| \`predict.js\` | classify image files from the command line |
| \`server.js\` | HTTP server: \`POST /v1/classify\`, \`GET /v1/model\`, \`GET /healthz\`, \`GET /metrics\` |
| \`doctor.js\` | what this CPU offers (dot-product / VNNI), threads, versions, advice |
| \`lib/\` | code shared by the three commands (generated, do not edit) |
| \`install.sh\` | installs the two dependencies at pinned versions |
| \`${serviceName}.service\` | systemd unit to run the server at boot |

The model sees ${p.size[0]}×${p.size[1]} ${p.channels === 'grayscale' ? 'grayscale (luma as PIL\'s convert("L") computes it)' : 'RGB'} images: each image is rotated by its EXIF orientation, ${geometryText(p)}, then
${valuesText(config)} — exactly as
\`${evalCommand(p)}\` does it, with the same code and the same sharp/libvips version. Classes: ${labelsPreview(config.labels)}.

${madeSection(config)}${arm ? `
Before copying it, it can be tried on an x86-64 Linux machine under emulation, from the slimkit folder:
\`scripts/setup-arm64.sh\` once (qemu and an arm64 Node), then \`scripts/qemu-arm64.sh BUNDLE/predict.js photo.jpg\`
(with \`slim deploy --install\`, so the bundle holds its arm64 modules; slow, but the same code and kernels).
` : ''}
## 1. Requirements

- ${arm ? 'A 64-bit OS and Node: `node -p process.arch` must print `arm64` (32-bit Raspberry Pi OS prints `arm`, even on a Pi whose kernel is 64-bit, and cannot run this).' : '`node -p process.arch` must print `x64`.'}
- Node.js 20.9 or newer (\`node --version\`). Debian 12 / Raspberry Pi OS 12 ship Node 18, which is too old:
  install Node 20 or 22 LTS from nodejs.org (e.g. \`curl -fsSL https://deb.nodesource.com/setup_22.x | sudo bash - && sudo apt-get install -y nodejs\`).
- About ${arm ? '100' : '150'} MB of disk for the dependencies.

## 2. Copy and install

\`\`\`sh
# on your computer
scp -r ${shellWord(`${folder ?? serviceName}/`)} ${arm ? 'pi@raspberrypi.local' : 'you@your-server'}:~/${shellWord(serviceName)}
# on the device
cd ~/${serviceName}
sh install.sh          # npm install of onnxruntime-node ${config.createdBy.onnxruntime} and sharp ${config.createdBy.sharp}, then doctor.js
\`\`\`

If the bundle already has a \`node_modules\` folder (made with \`slim deploy --install\`), skip \`install.sh\`: it
works offline as copied.

## 3. Classify images

\`\`\`sh
node predict.js cat.jpg dog.png         # top 5 classes and latency per image
node predict.js photos/ --top 1 --json  # every image in a folder, one JSON document
\`\`\`

Exit status 0 when every image was classified, 1 when one could not be read (it is named on stderr), 2 for bad usage.

## 4. Run the HTTP server

\`\`\`sh
node server.js                    # listens on 0.0.0.0:8080; --port, --host, --threads (node server.js --help)
curl --data-binary @cat.jpg http://localhost:8080/v1/classify
curl --data-binary @cat.jpg 'http://localhost:8080/v1/classify?top=1'
\`\`\`

Answer (\`latency_ms\` is the whole request inside the server; \`timings_ms\` splits it):

\`\`\`json
{"model":"${config.name}","top":[{"index":${exampleClass},"label":"${config.labels[exampleClass]}","score":0.91}],"latency_ms":4.2,
 "timings_ms":{"queue":0.01,"decode":0.8,"batch_wait":0.02,"inference":3.1},"batch_size":1,"image":{"format":"jpeg","width":640,"height":480}}
\`\`\`

| request | answer |
| --- | --- |
| \`POST /v1/classify\` with the raw image bytes (JPEG, PNG, WebP, GIF, TIFF, AVIF) | 200 top-k (\`?top=K\`, default 5; every class when the model has fewer) |
| \`GET /v1/model\` | labels, input size, preprocessing, limits |
| \`GET /healthz\` | 200 \`{"status":"ok"}\`; 503 while shutting down |
| \`GET /metrics\` | Prometheus text: \`slim_http_requests_total{route,method,code}\`, \`slim_http_request_duration_seconds\`, \`slim_inference_duration_seconds\`, \`slim_batch_size\`, \`slim_queue_depth\`, \`slim_requests_in_flight\`, \`slim_model_info\`, \`process_resident_memory_bytes\` |

Errors are JSON \`{"error":{"status":415,"code":"unsupported_media_type","message":"…"}}\`:
400 empty body or bad \`top\` · 404 unknown path · 405 wrong method · 413 body over 10 MiB (\`--max-body-mb\`) or image
over 40 megapixels · 415 not an image (decided by its first bytes, not by Content-Type; send raw bytes, not a
multipart form) · 422 an image that does not decode · 503 with \`Retry-After\` when ${256} requests are already queued
(\`--queue\`), when uploads in progress already hold 256 MiB or an eighth of the RAM (whichever is less), or
the server is stopping.

${config.model.oneImagePerRun
    ? `Concurrent requests are decoded in parallel and run through the model one image per run: this model's result for
one image depends on the others run with it (dynamic quantization measures one range over the batch), so
batching would make one client's answer depend on the other requests (\`--max-batch\` is ignored).`
    : `Concurrent requests are decoded in parallel and run through the model together in batches of up to 8
(\`--max-batch\`), so throughput grows with load while the queue and upload bounds keep memory bounded.`}

Each request is one line on stderr (the journal, under systemd): time, client, method, path, status, milliseconds,
then the top class and its score or the refusal's code (\`queue_full\`, \`request_timeout\`…); \`--no-access-log\`
or \`SLIM_ACCESS_LOG=0\` turns them off.

## 5. Start at boot (systemd)

\`\`\`sh
sudo cp -r ~/${serviceName} /opt/${serviceName}
sudo cp /opt/${serviceName}/${serviceName}.service /etc/systemd/system/
sudo systemctl daemon-reload
sudo systemctl enable --now ${serviceName}
systemctl status ${serviceName}           # logs: journalctl -u ${serviceName} -f
\`\`\`

The unit runs \`server.js\` on port ${port} as an unprivileged throw-away user; set \`SLIM_THREADS\` and the other
variables in the unit (\`sudo systemctl edit ${serviceName}\`). \`systemctl stop\` sends SIGTERM: the server answers the
requests it has admitted, refuses new ones with 503, and exits.

## 6. Speed and the CPU

\`node doctor.js\` prints the CPU model and features and what follows from them. In short: int8 models need the
Arm dot-product instructions (\`asimddp\`, Cortex-A76 / Raspberry Pi 5) or x86 VNNI to beat fp32; on a Cortex-A72
(Raspberry Pi 4) int8 may be no faster than fp32, though it stores its weights in a quarter of the bytes. By default ONNX Runtime uses
one thread per CPU.

## Troubleshooting

- \`has no node_modules\`: run \`sh install.sh\` in this folder first.
- \`holds native modules for linux-…, but this machine is linux-…\` (or Node's \`Could not load the "sharp" module\` /
  \`Cannot find module …onnxruntime_binding.node\`): the dependencies were installed for another machine.
  Delete \`node_modules\` and run \`sh install.sh\` on this device.
- \`model.onnx has N bytes but slim.json records M\`: the copy is incomplete; copy the folder again.
- \`EADDRINUSE\`: another program uses the port; \`node server.js --port 8081\`.
- Wrong answers on your own photos: the model only knows its ${config.labels.length} classes and was trained on
  ${p.size[0]}×${p.size[1]} images; check \`slim eval\` on similar images first.
`;
}

/** What a first visit downloads: the model is the small part (a trial compared 434 and 150 KiB models under a 13.6 MiB runtime). */
function pageWeight(config: BundleConfig, runtime: TemplateContext['webRuntime']): string {
  if (!runtime) return '';
  return `## Page weight

A first visit downloads the model (${formatBytes(config.model.bytes)}) and onnxruntime-web's WebAssembly build
(\`ort/\`: ${formatBytes(runtime.bytes)}, ${formatBytes(runtime.gzipBytes)} gzipped) — pruning and int8 shrink only the model.
Serve the folder compressed and let browsers revalidate rather than re-download (\`slim serve\` gzips, and
answers a browser holding a file with 304; most static hosts do both): \`ort/\` changes only with slimkit's version.

`;
}

export function webReadme({ config, webRuntime }: TemplateContext): string {
  return `# ${config.name} — image classifier in the browser

Made by slimkit ${config.createdBy.slimkit}. A static page: the model runs in the browser with onnxruntime-web
${config.createdBy.onnxruntime} (WebAssembly, CPU); no image leaves the machine.

| file | what it is |
| --- | --- |
| \`index.html\`, \`app.js\` | the page and its code (generated by slimkit, do not edit) |
| \`classifier.js\` | \`loadClassifier()\`: the model with the page's preprocessing, for your own pages (below) |
| \`model.onnx\` | the model (${formatBytes(config.model.bytes)}, sha256 \`${config.model.sha256}\`) |
| \`slim.json\` | preprocessing, labels, input/output names |
| \`ort/\` | onnxruntime-web's WebAssembly build |

${madeSection(config)}
${pageWeight(config, webRuntime)}## Open it

Browsers do not run WebAssembly modules from \`file://\` pages: serve the folder over HTTP, e.g.

\`\`\`sh
slim serve .                  # slimkit's server: this page plus the /v1/classify API
python3 -m http.server 8000   # or any static file server; then open http://localhost:8000/
\`\`\`

Choose an image or drop one on the page; it shows the top 5 classes and the time the model took. Any static
host (nginx, GitHub Pages, S3) works: upload the whole folder, and serve \`.wasm\` as \`application/wasm\`.
The model runs on up to 4 threads when the page is served with the headers
\`Cross-Origin-Opener-Policy: same-origin\` and \`Cross-Origin-Embedder-Policy: require-corp\` (\`slim serve\`
sends them; browsers allow WebAssembly threads only then), otherwise on one. \`slim bench model.onnx
--target web\` measures the model in a headless browser, as this page runs it.

## Preprocessing

The page follows slimkit's preprocessing exactly: EXIF orientation, ${geometryText(config.preprocess)} to
${config.preprocess.size.join('×')} with the same resizing code as \`${evalCommand(config.preprocess)}\` and the Node bundle (Pillow's
bilinear arithmetic, as torchvision's Resize computes it), then ${valuesText(config)}. Only the decoding is
the browser's: an sRGB PNG gives the page the bytes \`${evalCommand(config.preprocess)}\` computes, while a JPEG decoder may round a
little differently from libvips's. Where exact agreement matters, send PNGs or classify on a server with
the Node bundle.

The page reads the formats the browser decodes: JPEG, PNG, WebP, GIF, BMP and AVIF in current Chrome,
Firefox and Safari (TIFF in Safari only). The Node bundle and \`slim serve\` also read TIFF.

## Use the model from your own page

\`classifier.js\` is what the page runs, as a module: import it from this folder (served over HTTP) and
classify a \`File\` or \`Blob\`, an \`<img>\`, a canvas or an \`ImageBitmap\` with the page's preprocessing:

\`\`\`html
<script type="module">
  import { loadClassifier } from './classifier.js';   // or its URL from another folder
  const model = await loadClassifier();                // slim.json, ort/ and the model, from classifier.js's folder
  document.querySelector('input[type=file]').onchange = async (e) => {
    const { top, latency_ms } = await model.classify(e.target.files[0]);
    console.log(top[0].label, top[0].score, latency_ms);   // top: the 5 best; scores: every class
  };
</script>
\`\`\`

\`loadClassifier(folderUrl, { threads })\` loads another folder's bundle; \`model.config\` is its \`slim.json\`.
To run the model some other way (another runtime, a worker of your own), \`slim.json\` is the contract your
code keeps to:

- \`model.file\`, \`model.input\` (${config.model.inputType}), \`model.output\`: load the file with
  \`ort.InferenceSession.create\` and feed one tensor under the input's name;
- \`preprocess.size\` (${config.preprocess.size.join('×')}, height × width) and \`preprocess.resize\` (${config.preprocess.resize}): the geometry above;
- \`preprocess.layout\` (${config.preprocess.layout}), \`channels\`${config.model.inputType === 'uint8' ? ': the decoded 0–255 values as they are (uint8), the model normalizes them itself' : ', \`scale\`, \`mean\`, \`std\`: each value is\n  (pixel × scale − mean) / std, channel by channel'};
- \`labels\`: output i is \`labels[i]\`; \`model.outputKind\` \`logits\` means scores come from a softmax.

To get the same answers as \`${evalCommand(config.preprocess)}\` and the page, keep slimkit's resizing (a canvas
\`drawImage\` scales with the browser's own filter, close but not the same); or send the image to a server
running the Node bundle or \`slim serve\` (\`POST /v1/classify\` with the image bytes, JSON back).
`;
}

export function webIndexHtml({ config }: TemplateContext): string {
  const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(config.name)} — image classifier</title>
<link rel="icon" href="data:,">
<style>
  body { font: 16px/1.45 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  #drop { display: block; border: 2px dashed #888; border-radius: 8px; padding: 2rem; text-align: center; cursor: pointer; }
  #drop.over { border-color: #0a6; background: #efe; }
  #preview { max-width: 100%; max-height: 16rem; display: none; margin: 1rem auto; }
  ol { padding-left: 1.5rem; } li { margin: .2rem 0; }
  .bar { display: inline-block; height: .7rem; background: #0a6; vertical-align: middle; margin-left: .5rem; }
  #status[data-state=error] { color: #b00; }
  small { color: #666; }
</style>
</head>
<body>
<h1>${esc(config.name)}</h1>
<p><small>${config.labels.length} classes · ${config.preprocess.size.join('×')} input · onnxruntime-web ${esc(config.createdBy.onnxruntime)} (WebAssembly) · runs in your browser</small></p>
<label id="drop" for="file">Drop an image here, or click to choose one
  <input id="file" type="file" accept="image/*" hidden>
</label>
<img id="preview" alt="the chosen image">
<p id="status" data-state="loading" role="status">Loading the model…</p>
<ol id="results"></ol>
<script type="module" src="./app.js"></script>
</body>
</html>
`;
}

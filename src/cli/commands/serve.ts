import type { Command } from 'commander';
import { readFile, stat } from 'node:fs/promises';
import { arch } from 'node:os';
import type { BundleConfig } from '../../deploy/config.js';
import { readBundle } from '../../deploy/open-bundle.js';
import { prepareModel } from '../../deploy/prepare-model.js';
import { ortVersion } from '../../runtime/ort.js';
import { decodeModel } from '../../onnx/io.js';
import { saturationNote } from '../../compress/quantize/cpu.js';
import { int8KernelsSaturate } from '../../util/cpu-flags.js';
import { openClassifier, type Classifier } from '../../serve/classifier.js';
import { runServer } from '../../serve/run.js';
import { VERSION } from '../../version.js';
import { usageError } from '../../errors.js';
import { log } from '../../util/terminal.js';
import { type CommonOptions } from '../output.js';
import { port, positiveInt, withJson, withThreads } from '../options.js';
import { modelOptions, withModelFlags, type ModelFlags } from './deploy.js';

interface ServeFlags extends CommonOptions, ModelFlags {
  port: number;
  host: string;
  threads?: number;
  maxBodyMb: number;
  queue: number;
  maxBatch: number;
  maxMegapixels: number;
  accessLog: boolean;
}

export function registerServe(program: Command): void {
  withJson(
    withThreads(
      withModelFlags(
        program
          .command('serve')
          .description('serve a model or bundle over HTTP: POST /v1/classify, GET /v1/model, GET /healthz, GET /metrics (the bundle server, locally)')
          .argument('<model|bundle>', 'an .onnx classifier or a folder written by slim deploy (a web bundle is served as a site too)')
          .option('--port <n>', 'port (0: any free port)', port('--port', 0), 8080)
          .option('--host <addr>', 'address to bind (0.0.0.0: every interface)', '127.0.0.1')
          .option('--max-body-mb <n>', 'largest upload in MiB', positiveInt('--max-body-mb'), 10)
          .option('--queue <n>', 'requests held at once; more get 503 with Retry-After', positiveInt('--queue'), 256)
          .option('--max-batch <n>', 'images per ONNX Runtime run', positiveInt('--max-batch'), 8)
          .option('--max-megapixels <n>', 'largest image decoded, in megapixels (an 8000×6000 photo is 48)', positiveInt('--max-megapixels'), 40)
          .option('--no-access-log', 'print no line per request (by default each answered request is one line on stderr)'),
      ),
    ),
  )
    .addHelpText('after', [
      '',
      'Examples:',
      '  slim serve int8.onnx --port 8080 &  curl --data-binary @cat.jpg localhost:8080/v1/classify',
      '  slim serve pi-bundle --host 0.0.0.0',
      '  slim serve site           # a web bundle: the page at /, the API beside it',
      'With --json, one JSON document {"url",…} is printed on stdout once listening. SIGTERM/SIGINT: graceful stop.',
      'Each request is one line on stderr: time, client, method, path, status, ms, then the top class and its',
      'score or the refusal\'s code (e.g. queue_full); --no-access-log turns them off.',
    ].join('\n'))
    .action(async (target: string, flags: ServeFlags, command: Command) => {
      const info = await stat(target).catch(() => undefined);
      // A bundle's slim.json decides its labels and preprocessing: a flag that would not apply is refused.
      const modelFlags = ['labels', 'imageSize', 'mean', 'std', 'resize', 'name'].filter((k) => command.getOptionValueSource(k) === 'cli');
      if (info?.isDirectory() && modelFlags.length > 0) {
        const shown = modelFlags.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ');
        throw usageError(`${shown} ${modelFlags.length > 1 ? 'apply' : 'applies'} to a model file, not to a bundle: ${target}/slim.json decides its labels and preprocessing`, `drop ${shown}, or deploy the model again with ${modelFlags.length > 1 ? 'them' : 'it'} (slim deploy MODEL ${shown} …)`);
      }
      let classifier: Classifier;
      let staticDir: string | undefined;
      /** The model file of a bundle, or a model file's bytes as prepared for serving. */
      let model: string | Uint8Array;
      const common = { maxBatch: flags.maxBatch, maxPixels: flags.maxMegapixels * 1e6, ...(flags.threads ? { threads: flags.threads } : {}) };
      if (info?.isDirectory()) {
        const bundle = await readBundle(target);
        if (bundle.config.target === 'web') staticDir = target;
        model = bundle.modelPath;
        classifier = await openClassifier({ config: bundle.config, model, ...common });
      } else {
        const prepared = await prepareModel(target, await modelOptions(flags));
        for (const w of prepared.warnings) log(`slim serve: warning: ${w}`);
        const config: BundleConfig = {
          ...prepared.config,
          target: arch() === 'arm64' ? 'linux-arm64' : 'linux-x64',
          createdBy: { slimkit: VERSION, onnxruntime: ortVersion().node, sharp: (await import('sharp')).default.versions.sharp },
        };
        model = prepared.bytes;
        classifier = await openClassifier({ config, model, ...common });
      }
      const name = classifier.config.name;
      // Its answers here are this CPU's: int8 sums that saturate can change a class (the model is read
      // once more for it only on such a CPU: a large model's decode is seconds of start-up).
      const saturation = int8KernelsSaturate() ? saturationNote(decodeModel(typeof model === 'string' ? await readFile(model) : model), name) : undefined;
      if (saturation) log(`slim serve: ${saturation}`);
      if (classifier.config.model.oneImagePerRun) {
        log(`slim serve: note: ${name}'s result for one image depends on the others run with it (dynamic quantization measures one range over the batch): one image per run${command.getOptionValueSource('maxBatch') === 'cli' ? `, not --max-batch ${flags.maxBatch}` : ''}`);
      }
      await runServer({
        classifier,
        port: flags.port,
        host: flags.host,
        maxBodyBytes: flags.maxBodyMb * 1024 * 1024,
        queueCapacity: flags.queue,
        ...(staticDir ? { staticDir } : {}),
        log,
        ...(flags.accessLog ? { accessLog: log } : {}),
        onListening: (url) => {
          log(`slim serve: ${name} (${classifier.config.labels.length} classes, ${classifier.threads} thread${classifier.threads === 1 ? '' : 's'}) listening on ${url}${staticDir ? ' — the web page is at /' : ''}; POST ${url}/v1/classify, GET /v1/model, /healthz, /metrics`);
          if (flags.json) {
            process.stdout.write(`${JSON.stringify({ url, model: name, sha256: classifier.config.model.sha256, classes: classifier.config.labels.length, threads: classifier.threads, pid: process.pid })}\n`);
          }
        },
      });
    });
}

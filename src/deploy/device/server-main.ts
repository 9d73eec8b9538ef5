/**
 * The bundle's HTTP server: slimkit's ClassifyServer (the same module `slim serve` runs) over the
 * bundle's model, configured by flags or environment variables (the systemd unit sets them). Loaded by
 * server.ts once the native modules are known to fit this machine.
 */
import { parseArgs } from 'node:util';
import { SlimError } from '../../errors.js';
import { openClassifier } from '../../serve/classifier.js';
import { runServer } from '../../serve/run.js';
import { readBundle } from '../open-bundle.js';
import { intSetting } from './common.js';
import { SERVER_HELP as HELP } from './help.js';

export async function main(dir: string): Promise<number> {
  let values;
  try {
    values = parseArgs({
      options: {
        port: { type: 'string' }, host: { type: 'string' }, threads: { type: 'string' }, 'max-body-mb': { type: 'string' },
        queue: { type: 'string' }, 'max-batch': { type: 'string' }, 'max-megapixels': { type: 'string' }, 'no-access-log': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw new SlimError({ problem: (e as Error).message, fix: 'run node server.js --help' }, 'usage');
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const env = process.env;
  const setting = (flag: string, envName: string, fallback: number, min = 1, max?: number): number =>
    intSetting(values[flag as keyof typeof values] !== undefined ? `--${flag}` : envName, (values[flag as keyof typeof values] as string | undefined) ?? env[envName], fallback, min, max);
  const port = setting('port', 'PORT', 8080, 0, 65535);
  const host = values.host ?? env.HOST ?? '0.0.0.0';
  const threads = setting('threads', 'SLIM_THREADS', 0, 0);
  const bundle = await readBundle(dir);
  const classifier = await openClassifier({
    config: bundle.config,
    model: bundle.modelPath,
    maxBatch: setting('max-batch', 'SLIM_MAX_BATCH', 8),
    maxPixels: setting('max-megapixels', 'SLIM_MAX_MEGAPIXELS', 40) * 1e6,
    ...(threads ? { threads } : {}),
  });
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const accessLog = !values['no-access-log'] && !['0', 'false', 'no', 'off'].includes((env.SLIM_ACCESS_LOG ?? '').toLowerCase());
  await runServer({
    classifier,
    port,
    host,
    maxBodyBytes: setting('max-body-mb', 'SLIM_MAX_BODY_MB', 10) * 1024 * 1024,
    queueCapacity: setting('queue', 'SLIM_QUEUE', 256),
    modelInfo: { target: bundle.config.target },
    log,
    ...(accessLog ? { accessLog: log } : {}),
    program: 'server',
    onListening: (url) => log(`server: ${bundle.config.name} (${bundle.config.labels.length} classes, ${classifier.threads} thread${classifier.threads === 1 ? '' : 's'}) listening on ${url}`),
  });
  return 0;
}

/**
 * Reading a bundle folder: slim.json, then the model it names, checked against the recorded size and
 * SHA-256 so a truncated copy to the device fails at start with a clear message, not with a wrong answer.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { inputError } from '../errors.js';
import { CONFIG_FILE, parseBundleConfig, type BundleConfig } from './config.js';

export interface OpenedBundle {
  dir: string;
  config: BundleConfig;
  modelPath: string;
}

/** A run folder's bundles (deploy/<stage>/), or its models, named where a bundle was wanted. */
async function bundleHint(dir: string): Promise<string> {
  const plain = 'pass a folder written by `slim deploy`, or an .onnx model';
  if (!existsSync(path.join(dir, 'manifest.json'))) return plain;
  const deployed = await readdir(path.join(dir, 'deploy')).catch(() => [] as string[]);
  const bundles = deployed.filter((d) => existsSync(path.join(dir, 'deploy', d, CONFIG_FILE))).map((d) => path.join(dir, 'deploy', d));
  if (bundles.length) return `it is a slim run folder: pass its bundle${bundles.length > 1 ? ' (one of them)' : ''}, ${bundles.join(' or ')}`;
  return `it is a slim run folder without a deploy stage: pass one of its models (${path.join(dir, 'models', '<id>.onnx')}), or add \`- deploy: {}\` to its recipe`;
}

export async function readBundle(dir: string, options: { verify?: boolean } = {}): Promise<OpenedBundle> {
  const configPath = path.join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw inputError({
      file: dir,
      problem: `is not a slimkit bundle (${missing ? `it has no ${CONFIG_FILE}` : `${CONFIG_FILE} cannot be read: ${(e as Error).message}`})`,
      fix: await bundleHint(dir),
    });
  }
  const config = parseBundleConfig(text, configPath);
  const modelPath = path.join(dir, config.model.file);
  const info = await stat(modelPath).catch(() => undefined);
  if (!info?.isFile()) {
    throw inputError({ file: modelPath, problem: 'is missing', fix: 'copy the whole bundle folder again' });
  }
  if (options.verify ?? true) {
    if (info.size !== config.model.bytes) {
      throw inputError({
        file: modelPath,
        problem: `has ${info.size} bytes but slim.json records ${config.model.bytes} (an incomplete copy?)`,
        fix: 'copy the bundle again (scp -r / rsync) and compare sha256sum with slim.json',
      });
    }
    const sha = await sha256File(modelPath);
    if (sha !== config.model.sha256) {
      throw inputError({
        file: modelPath,
        problem: `has SHA-256 ${sha.slice(0, 12)}… but slim.json records ${config.model.sha256.slice(0, 12)}… (damaged or replaced)`,
        fix: 'copy the bundle again, or rebuild it with `slim deploy` if the model was changed on purpose',
      });
    }
  }
  return { dir, config, modelPath };
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

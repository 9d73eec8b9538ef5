/**
 * `slim deploy`: writes a self-contained bundle folder for linux-arm64, linux-x64 or the web.
 *
 * Nothing half-written is ever left at --out: the bundle is assembled in a sibling staging folder and
 * renamed into place at the end; an existing --out is replaced only with --force and only when it is
 * empty or a previous bundle (has slim.json). Every file name is fixed by slimkit; each write is
 * checked to land inside the staging folder.
 */
import { checkOptionNames, type OptionNames } from '../util/option-names.js';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { SlimError, option, usageError } from '../errors.js';
import { fileError, HOST_TAG, removeAtExit, removeOrphanedTemps, tempPrefix } from '../onnx/io.js';
import { ortVersion } from '../runtime/ort.js';
import { ORT_WEB_FILES, ortWebDist, ortWebVersion } from '../runtime/ort-web.js';
import { VERSION } from '../version.js';
import { processAlive } from '../util/process.js';
import { linkTarget } from '../util/files.js';
import { CONFIG_FILE, TARGETS, type BundleConfig, type Target } from './config.js';
import { buildNodeDeviceCode, buildWebDeviceCode, type DeviceFile } from './device-code.js';
import { installDependencies } from './install.js';
import { prepareModel, type PrepareOptions } from './prepare-model.js';
import { installScript, nodeReadme, packageJson, systemdUnit, webIndexHtml, webReadme, type TemplateContext } from './templates.js';

export interface DeployOptions extends PrepareOptions {
  model: string;
  target: Target;
  out: string;
  /** Port in the systemd unit and README; default 8080. */
  port?: number;
  /** Vendor node_modules for the target (npm, registry or cache). */
  install?: boolean;
  /** Replace an existing bundle (or empty folder) at `out`. */
  force?: boolean;
  log?: (line: string) => void;
}

export interface DeployResult {
  out: string;
  target: Target;
  name: string;
  service: string;
  files: { path: string; bytes: number }[];
  totalBytes: number;
  model: { sha256: string; bytes: number; input: string; size: [number, number]; classes: number };
  installed: boolean;
  warnings: string[];
}

/** Writes a bundle folder for `target` at `out` from the .onnx file `model` (see the module comment). */
const DEPLOY_OPTIONS = {
  model: true, target: true, out: true, port: true, install: true, force: true, log: true,
  labels: true, imageSize: true, mean: true, std: true, resize: true, name: true,
} as const satisfies OptionNames<DeployOptions>;

export async function deploy(options: DeployOptions): Promise<DeployResult> {
  // From JavaScript, deploy(graph, {...}) got as far as "target must be one of …, got 'undefined'".
  if (typeof (options as Partial<DeployOptions> | undefined)?.model !== 'string') {
    throw usageError("deploy takes one options object whose model is a file path: deploy({ model: 'm.onnx', target: 'linux-x64', out: 'bundle/' })", 'write a Graph to a file first (writeModel)');
  }
  checkOptionNames('deploy', options, DEPLOY_OPTIONS);
  if (!(TARGETS as readonly string[]).includes(options.target)) {
    throw usageError(`${option('--target')} must be one of ${TARGETS.join(', ')}, got '${options.target}'`);
  }
  if (options.install && options.target === 'web') throw usageError(`${option('--install')} applies to linux targets only`, `drop ${option('--install')} for ${option('--target', 'web')}`);
  // A web bundle is static files: the port belongs to whatever serves them, not to the bundle.
  if (options.port !== undefined && options.target === 'web') {
    throw usageError(`${option('--port')} applies to linux targets only (their server and systemd unit)`, `drop ${option('--port')}; serve a web bundle with slim serve DIR --port ${options.port}`);
  }
  const log = options.log ?? (() => {});
  // Through a link to the folder it names: the link stays a link (renaming onto it replaced it).
  const out = linkTarget(path.resolve(options.out));
  await restoreSetAside(out, log);
  await checkOut(out, options.force ?? false, options.model);

  const prepared = await prepareModel(options.model, options);
  for (const w of prepared.warnings) log(`deploy: warning: ${w}`);
  for (const n of prepared.notes) log(`deploy: ${n}`);
  const config: BundleConfig = {
    ...prepared.config,
    target: options.target,
    // The runtime the bundle runs: the page loads onnxruntime-web's files, a device onnxruntime-node.
    createdBy: { slimkit: VERSION, onnxruntime: options.target === 'web' ? ortWebVersion() : ortVersion().node, sharp: sharp.versions.sharp },
  };
  const ctx: TemplateContext = {
    config, serviceName: serviceName(config.name), port: options.port ?? 8080, folder: path.basename(path.resolve(options.out)),
    ...(options.target === 'web' ? { webRuntime: await webRuntimeSize() } : {}),
  };

  // Staged beside the bundle and swapped in whole; a staging folder of a deploy killed midway is swept,
  // and so is an old bundle it had moved aside once the new one was in place.
  const prefix = tempPrefix(out);
  await removeOrphanedTemps(path.dirname(out), prefix);
  await removeOrphanedTemps(path.dirname(out), setAsidePrefix(out));
  const staging = path.join(path.dirname(out), `${prefix}${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  await mkdir(staging, { recursive: true }).catch((e: unknown) => {
    throw fileError(out, e, 'write');
  });
  const stagingDone = removeAtExit(staging);
  try {
    const files: DeviceFile[] = [
      { path: config.model.file, contents: prepared.bytes },
      { path: CONFIG_FILE, contents: text(`${JSON.stringify(config, null, 2)}\n`) },
    ];
    if (options.target === 'web') {
      files.push(
        { path: 'index.html', contents: text(webIndexHtml(ctx)) },
        { path: 'README.md', contents: text(webReadme(ctx)) },
        ...(await buildWebDeviceCode()),
      );
    } else {
      files.push(
        { path: 'package.json', contents: text(packageJson(ctx)) },
        { path: 'README.md', contents: text(nodeReadme(ctx)) },
        { path: 'install.sh', contents: text(installScript(ctx)), executable: true },
        { path: `${ctx.serviceName}.service`, contents: text(systemdUnit(ctx)) },
        ...(await buildNodeDeviceCode()),
      );
    }
    for (const f of files) await writeInside(staging, f);
    if (options.target === 'web') {
      const dist = ortWebDist();
      await mkdir(path.join(staging, 'ort'));
      for (const name of ORT_WEB_FILES) await copyFile(path.join(dist, name), path.join(staging, 'ort', name));
    }
    if (options.install && options.target !== 'web') await installDependencies(staging, options.target, log);
    await replace(out, staging);
    stagingDone();
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    stagingDone();
    // A full or read-only disk is bad input about --out (named, with what to do), not a slimkit bug.
    throw e instanceof SlimError || typeof (e as NodeJS.ErrnoException).code !== 'string' ? e : fileError(out, e, 'write');
  }
  const listed = await listFiles(out);
  return {
    out,
    target: options.target,
    name: config.name,
    service: ctx.serviceName,
    files: listed.filter((f) => !f.path.startsWith('node_modules/')),
    totalBytes: listed.reduce((a, f) => a + f.bytes, 0),
    model: { sha256: config.model.sha256, bytes: config.model.bytes, input: config.model.input, size: config.preprocess.size, classes: config.labels.length },
    installed: (options.install ?? false) && options.target !== 'web',
    warnings: prepared.warnings,
  };
}

const text = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** "CIFAR ResNet (int8)" → "slim-cifar-resnet-int8": safe as a file, package and unit name. */
export /** onnxruntime-web's files as the bundle copies them: bytes, and gzipped (what a compressing server sends). */
async function webRuntimeSize(): Promise<{ bytes: number; gzipBytes: number }> {
  const dist = ortWebDist();
  let bytes = 0;
  let gzipBytes = 0;
  for (const name of ORT_WEB_FILES) {
    const data = await readFile(path.join(dist, name));
    bytes += data.length;
    gzipBytes += gzipSync(data, { level: 6 }).length;
  }
  return { bytes, gzipBytes };
}

function serviceName(name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 48);
  return `slim-${slug || 'classifier'}`;
}

async function checkOut(out: string, force: boolean, model: string): Promise<void> {
  const info = await stat(out).catch(() => undefined);
  if (path.resolve(model).startsWith(out + path.sep)) {
    throw usageError(`${option('--out', out)} contains the model ${model}`, 'write the bundle to a new folder');
  }
  if (!info) return;
  if (!info.isDirectory()) throw usageError(`${option('--out', out)} exists and is not a folder`, 'choose a new folder name');
  const entries = await readdir(out);
  if (entries.length === 0) return;
  const isBundle = entries.includes(CONFIG_FILE);
  if (!force) {
    throw usageError(`${option('--out', out)} already exists${isBundle ? ' (a previous bundle)' : ' and is not empty'}`, isBundle ? `pass ${option('--force', true)} to replace it` : 'choose a new folder');
  }
  if (!isBundle) {
    throw usageError(`${option('--out', out)} is not empty and is not a slimkit bundle; ${option('--force')} replaces only bundles`, 'choose a new folder');
  }
}

/** Writes one file, refusing any path that would leave `root`. */
async function writeInside(root: string, file: DeviceFile): Promise<void> {
  const target = path.resolve(root, ...file.path.split('/'));
  if (!target.startsWith(root + path.sep)) {
    throw new SlimError({ where: file.path, problem: 'bundle file path leaves the bundle folder (slimkit bug)' });
  }
  await mkdir(path.dirname(target), { recursive: true });
  await writeFile(target, file.contents, { mode: file.executable ? 0o755 : 0o644 });
}

/** Where an old bundle waits while the new one moves in: `<prefix><pid>.tmp`, beside it. */
function setAsidePrefix(out: string): string {
  return `.${path.basename(out)}.${HOST_TAG}.old.`;
}

/**
 * A deploy killed between moving the old bundle aside and moving the new one in left no bundle at all:
 * the old one goes back (it sat in a hidden folder that nothing restored or removed).
 */
async function restoreSetAside(out: string, log: (line: string) => void): Promise<void> {
  if (await stat(out).catch(() => undefined)) return;
  const prefix = setAsidePrefix(out);
  for (const name of await readdir(path.dirname(out)).catch(() => [] as string[])) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const pid = Number(name.slice(prefix.length, -'.tmp'.length));
    if (!Number.isInteger(pid) || pid <= 0 || processAlive(pid)) continue;
    await rename(path.join(path.dirname(out), name), out);
    log(`deploy: note: put back the bundle in ${out} that a deploy killed midway had moved aside`);
    return;
  }
}

/** Swap the finished staging folder into place; an old bundle is moved aside first, then removed. */
async function replace(out: string, staging: string): Promise<void> {
  const exists = await stat(out).catch(() => undefined);
  if (!exists) {
    await rename(staging, out);
    return;
  }
  const old = path.join(path.dirname(out), `${setAsidePrefix(out)}${process.pid}.tmp`);
  await rename(out, old);
  try {
    await rename(staging, out);
  } catch (e) {
    await rename(old, out); // put the previous bundle back
    throw e;
  }
  await rm(old, { recursive: true, force: true });
}

async function listFiles(dir: string, prefix = ''): Promise<{ path: string; bytes: number }[]> {
  const out: { path: string; bytes: number }[] = [];
  for (const entry of (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    else if (entry.isFile()) out.push({ path: rel, bytes: (await stat(path.join(dir, entry.name))).size });
  }
  return out;
}


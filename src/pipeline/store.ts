/**
 * The run directory's content-addressed store: every model a stage makes is written once as
 * `artifacts/<sha256>.onnx` (its own hash is its name, so a rerun that makes the same bytes writes
 * nothing), and published under a readable name `models/<stage id>.onnx` (a hard link to the artifact).
 * Stage keys are hashes of canonical JSON, so equal inputs give equal keys on any machine.
 */
import { createHash } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { madeBySlimkit, type Graph } from '../onnx/graph.js';
import { decodeModel, encodeModel, fileError, HOST_TAG, removeOrphanedTemps, writeFileAtomic } from '../onnx/io.js';
import { sameFile } from '../util/files.js';

export interface ArtifactRef {
  sha256: string;
  /** Relative to the run directory. */
  path: string;
  bytes: number;
}

export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** JSON with sorted keys and no `undefined`: the same value always gives the same text (and hash). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}

export function hashOf(value: unknown): string {
  return sha256(canonicalJson(value));
}

export const ARTIFACTS = 'artifacts';
export const MODELS = 'models';

/** Encodes the graph (naming slimkit its producer) and stores its bytes under their hash (once). */
export async function putModel(runDir: string, graph: Graph): Promise<ArtifactRef> {
  return putBytes(runDir, encodeModel(madeBySlimkit(graph)).model, 'onnx');
}

export async function putBytes(runDir: string, bytes: Uint8Array, ext: string): Promise<ArtifactRef> {
  const hash = sha256(bytes);
  const rel = path.join(ARTIFACTS, `${hash}.${ext}`);
  const file = path.join(runDir, rel);
  // Same name, same bytes? A damaged copy (a flipped bit, an in-place edit through models/'s hard
  // link) must be replaced, or the stage that remade it would be rerun forever.
  const existing = await stat(file).catch(() => undefined);
  if (existing?.size !== bytes.byteLength || !(await verifyArtifact(runDir, { sha256: hash, path: rel, bytes: bytes.byteLength }))) {
    await mkdir(path.dirname(file), { recursive: true }).catch((e: unknown) => {
      throw fileError(path.dirname(file), e, 'write');
    });
    await writeFileAtomic(file, bytes);
  }
  return { sha256: hash, path: rel, bytes: bytes.byteLength };
}

/** The artifact is there and still has the bytes its name promises. */
export async function verifyArtifact(runDir: string, ref: ArtifactRef): Promise<boolean> {
  try {
    const bytes = await readFile(path.join(runDir, ref.path));
    return bytes.byteLength === ref.bytes && sha256(bytes) === ref.sha256;
  } catch {
    return false;
  }
}

export async function readArtifactGraph(runDir: string, ref: ArtifactRef): Promise<Graph> {
  const file = path.join(runDir, ref.path);
  return decodeModel(await readFile(file), { file, baseDir: path.dirname(file) });
}

/** `models/<name>.onnx` → the artifact, replaced atomically (a hard link; a copy where links fail). */
/** Takes `models/<name>.onnx` away (the store keeps the bytes). */
export async function unpublishModel(runDir: string, name: string): Promise<void> {
  await rm(path.join(runDir, MODELS, `${name}.onnx`), { force: true });
}

/** Takes away every `models/*.onnx` not named in `keep`; returns the names taken. */
export async function unpublishOthers(runDir: string, keep: ReadonlySet<string>): Promise<string[]> {
  const names = (await readdir(path.join(runDir, MODELS)).catch(() => [] as string[])).filter((f) => f.endsWith('.onnx')).map((f) => f.slice(0, -'.onnx'.length));
  const gone = names.filter((n) => !keep.has(n));
  for (const name of gone) await unpublishModel(runDir, name);
  return gone;
}

export async function publishModel(runDir: string, ref: ArtifactRef, name: string): Promise<string> {
  const rel = path.join(MODELS, `${name}.onnx`);
  const target = path.join(runDir, rel);
  await mkdir(path.dirname(target), { recursive: true });
  const source = path.join(runDir, ref.path);
  // Already published (a rerun): renaming a link onto another link of the same file does nothing
  // (POSIX), which left the temporary link behind on every rerun.
  if (sameFile(source, target)) return rel;
  const temp = `${target}.${HOST_TAG}.${process.pid}.tmp`;
  await rm(temp, { force: true });
  await removeOrphanedTemps(path.dirname(target), `${name}.onnx.${HOST_TAG}.`);
  try {
    await link(source, temp);
  } catch {
    await writeFileAtomic(temp, await readFile(source));
  }
  await rename(temp, target);
  await rm(temp, { force: true });
  return rel;
}

/**
 * Where onnxruntime-web's files are: the one module that knows its package layout. The web bundle copies
 * them; `slim bench --target web` serves them to the browser it measures in.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { inputError } from '../errors.js';

/** The build a page loads (the .bundle variant embeds the Emscripten glue) and its WebAssembly. */
export const ORT_WEB_MODULE = 'ort.wasm.bundle.min.mjs';
export const ORT_WEB_WASM = 'ort-wasm-simd-threaded.wasm';
export const ORT_WEB_FILES = [ORT_WEB_MODULE, ORT_WEB_WASM];

/** The folder holding ORT_WEB_FILES. */
export function ortWebDist(): string {
  try {
    return path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
  } catch {
    throw inputError({ problem: 'onnxruntime-web is not installed', fix: 'run `npm ci` in the slimkit folder' });
  }
}

export function ortWebVersion(): string {
  const manifest = path.join(ortWebDist(), '..', 'package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

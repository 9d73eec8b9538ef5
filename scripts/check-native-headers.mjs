#!/usr/bin/env node
// Compiles (syntax only) every native/src/*.cc against the headers of other LibTorch versions, with the
// CUDA and CUDA-graph branches switched on — the code a GPU host builds and this CPU machine otherwise
// never compiles. The headers come from Debian's libtorch-dev packages (by default trixie's 2.6 and
// forky's 2.14, which bracket the GPU host's PyTorch), the CUDA runtime headers from $CUDA_HOME or
// /usr/local/cuda. Downloads the packages once into the slimkit cache; a developer tool, not a test.
//   node scripts/check-native-headers.mjs [suite ...]        e.g. trixie forky sid
// Exit status 1 when any file fails to compile; the first errors of each are printed.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cxxStandard, includeDirsOf, readVersion } from './find-libtorch.mjs';

const MIRROR = process.env.DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// slimkit's cache folder, by src/data/cache.ts's rule (this plain script cannot import the TypeScript).
const slimCache = process.env.SLIM_CACHE_DIR || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'slimkit');
const cacheDir = join(resolve(slimCache), 'libtorch-headers');

function fail(message) {
  process.stderr.write(`check-native-headers: ${message}\n`);
  process.exit(2);
}

function download(url, file) {
  // curl rather than fetch: it follows the mirror's redirects and shows nothing unless it fails.
  execFileSync('curl', ['-fsSL', '--retry', '2', '-o', file, url], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
}

/** The libtorch-dev package of a Debian suite: its version and pool path, read from the suite's index. */
function packageOf(suite) {
  const index = join(cacheDir, `Packages-${suite}.xz`);
  if (!existsSync(index)) download(`${MIRROR}/dists/${suite}/main/binary-amd64/Packages.xz`, index);
  const text = execFileSync('xz', ['-dc', index], { encoding: 'utf8', maxBuffer: 512 << 20 });
  const stanza = text.split('\n\n').find((s) => s.startsWith('Package: libtorch-dev\n'));
  if (!stanza) fail(`Debian ${suite} has no libtorch-dev package`);
  const field = (name) => new RegExp(`^${name}: (.+)$`, 'm').exec(stanza)?.[1];
  return { version: field('Version'), filename: field('Filename') };
}

/** Unpacks libtorch-dev (headers only; nothing is installed) and returns its include folders. */
function headersOf(suite) {
  const { version, filename } = packageOf(suite);
  const dir = join(cacheDir, `${suite}-${version}`);
  if (!existsSync(join(dir, 'usr', 'include', 'ATen', 'ATen.h'))) {
    const deb = `${dir}.deb`;
    download(`${MIRROR}/${filename}`, deb);
    const partial = `${dir}.partial`;
    rmSync(partial, { recursive: true, force: true });
    execFileSync('dpkg-deb', ['-x', deb, partial]);
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
    rmSync(deb);
  }
  return { label: `libtorch ${version} (${suite})`, includeDirs: includeDirsOf(join(dir, 'usr')) };
}

/** CUDA runtime headers, plus the one generated c10 header a CPU-only libtorch-dev leaves out. */
function cudaIncludes() {
  const cuda = [process.env.CUDA_HOME, '/usr/local/cuda'].filter(Boolean).map((d) => join(d, 'include'));
  const found = cuda.find((d) => existsSync(join(d, 'cuda_runtime_api.h')));
  if (!found) fail('no CUDA runtime headers (cuda_runtime_api.h): set CUDA_HOME to a CUDA toolkit');
  const stub = join(cacheDir, 'cuda-macros');
  mkdirSync(join(stub, 'c10', 'cuda', 'impl'), { recursive: true });
  // What a CUDA build of libtorch generates (Debian's libtorch-cuda-dev 2.6 ships exactly this).
  writeFileSync(join(stub, 'c10', 'cuda', 'impl', 'cuda_cmake_macros.h'), '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n');
  return [stub, found];
}

function compile(file, args) {
  return new Promise((done) => {
    const child = spawn(process.env.CXX ?? 'g++', [...args, file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => done({ file, ok: code === 0, errors: stderr.split('\n').filter((l) => l.includes('error')) }));
  });
}

async function checkSuite(suite, sources, addonIncludes, cudaIncludeDirs) {
  const { label, includeDirs } = headersOf(suite);
  const std = cxxStandard(readVersion(includeDirs));
  const args = [
    `-std=${std}`, '-fsyntax-only', '-Wno-deprecated-declarations',
    '-DNAPI_VERSION=8', '-DNAPI_CPP_EXCEPTIONS', '-D_GLIBCXX_USE_CXX11_ABI=1', '-DSLIM_WITH_CUDA=1', '-DSLIM_CUDA_GRAPHS=1',
    ...[...addonIncludes, ...includeDirs, ...cudaIncludeDirs].map((d) => `-I${d}`),
  ];
  const started = Date.now();
  const queue = [...sources];
  const results = [];
  const workers = Array.from({ length: Math.max(1, availableParallelism()) }, async () => {
    for (let file = queue.shift(); file; file = queue.shift()) results.push(await compile(file, args));
  });
  await Promise.all(workers);
  const failed = results.filter((r) => !r.ok);
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  console.log(`${label}, ${std}, CUDA + CUDA graphs: ${sources.length - failed.length}/${sources.length} files compile (${seconds} s)`);
  for (const r of failed) {
    console.log(`  ${r.file.slice(root.length + 1)}`);
    for (const line of r.errors.slice(0, 6)) console.log(`    ${line}`);
  }
  return failed.length === 0;
}

async function main() {
  const suites = process.argv.slice(2);
  if (suites.length === 0) suites.push('trixie', 'forky');
  mkdirSync(cacheDir, { recursive: true });
  const nodeInclude = [process.env.NODE_API_INCLUDE, '/usr/include/node'].find((d) => d && existsSync(join(d, 'node_api.h')));
  if (!nodeInclude) fail('no node_api.h: set NODE_API_INCLUDE to a folder with Node\'s headers');
  const napi = join(root, 'node_modules', 'node-addon-api');
  if (!existsSync(join(napi, 'napi.h'))) fail('node-addon-api is not installed: run npm ci');
  const sources = readdirSync(join(root, 'native', 'src')).filter((f) => f.endsWith('.cc')).sort().map((f) => join(root, 'native', 'src', f));
  const cuda = cudaIncludes();
  let ok = true;
  for (const suite of suites) ok = (await checkSuite(suite, sources, [nodeInclude, napi], cuda)) && ok;
  process.exit(ok ? 0 : 1);
}

await main();

#!/usr/bin/env node
// Finds LibTorch for the native training addon, in this order:
//   1. $LIBTORCH           a libtorch folder (include/, lib/), e.g. the zip from pytorch.org
//   2. python3 on PATH     pip / conda PyTorch (the usual case on a cloud GPU host; links CUDA when present)
//   3. /usr/bin/python3    Debian's python3-torch, which shares Debian's libtorch-dev files
//   4. libtorch-dev        Debian's headers and libraries without Python
// Prints one JSON document (default), or with `--gyp FIELD` one field as words for binding.gyp's
// command expansions. build-native.sh runs discovery once and passes the JSON in $SLIM_LIBTORCH_JSON,
// so gyp's several expansions do not each start Python.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const HOW_TO =
  'install Debian\'s libtorch-dev (apt install libtorch-dev), or set LIBTORCH to a libtorch folder, ' +
  'or install PyTorch for python3 (pip install torch)';

/**
 * Version macros: in torch/csrc/api/include/torch/version.h up to 2.6 at least; by 2.14 that file only
 * includes torch/headeronly/version.h (under the top include folder), which holds them.
 */
export function readVersion(includeDirs) {
  const files = includeDirs.flatMap((dir) => [join(dir, 'torch', 'version.h'), join(dir, 'torch', 'headeronly', 'version.h')]);
  for (const file of files) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const num = (name) => new RegExp(`#define\\s+TORCH_VERSION_${name}\\s+(\\d+)`).exec(text)?.[1];
    if (num('MAJOR') === undefined) continue;
    return { major: Number(num('MAJOR')), minor: Number(num('MINOR') ?? 0), patch: Number(num('PATCH') ?? 0) };
  }
  return undefined;
}

/** C++ standard the torch headers need: 2.13 and later refuse anything below C++20. */
export function cxxStandard(version) {
  if (process.env.SLIM_CXX_STD) return process.env.SLIM_CXX_STD;
  if (!version) return 'c++17';
  return version.major > 2 || (version.major === 2 && version.minor >= 13) ? 'c++20' : 'c++17';
}

/** A prebuilt libtorch folder: ask its libc10 which std::string ABI it was built with. */
function abiOfLibrary(libDir) {
  if (process.env.LIBTORCH_CXX11_ABI) return Number(process.env.LIBTORCH_CXX11_ABI);
  try {
    const syms = execFileSync('nm', ['-D', '--defined-only', join(libDir, 'libc10.so')], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    return syms.includes('__cxx11') ? 1 : 0;
  } catch {
    return 1;
  }
}

/** Folders that may hold the CUDA runtime headers (cuda_runtime_api.h) a CUDA LibTorch's headers include. */
function cudaIncludeCandidates(root) {
  const env = [process.env.CUDA_HOME, process.env.CUDA_PATH].filter(Boolean).map((d) => join(d, 'include'));
  // pip wheels: nvidia-cuda-runtime puts them in site-packages/nvidia/cu13/include (CUDA 13) or
  // nvidia/cuda_runtime/include (CUDA 12), beside site-packages/torch.
  const site = root ? dirname(root) : undefined;
  const wheels = site ? ['cu13', 'cu12', 'cuda_runtime'].map((d) => join(site, 'nvidia', d, 'include')) : [];
  return [...env, ...wheels, '/usr/local/cuda/include'];
}

/**
 * Can step_graph.cc's CUDA headers be compiled here? Tried once, with g++ -fsyntax-only on the one
 * header capture needs, so a host without the CUDA runtime headers still builds the addon (without
 * CUDA graphs) instead of failing the whole build.
 */
export function probeCudaGraphs(includeDirs, defines, cxxStd, root) {
  const cudaInclude = cudaIncludeCandidates(root).find((d) => existsSync(join(d, 'cuda_runtime_api.h')));
  if (!cudaInclude) return { ok: false, why: 'no cuda_runtime_api.h found (set CUDA_HOME)' };
  const dir = mkdtempSync(join(tmpdir(), 'slim-cuda-probe-'));
  try {
    const file = join(dir, 'probe.cc');
    writeFileSync(file, '#include <ATen/cuda/CUDAGraph.h>\n#include <c10/cuda/CUDAGuard.h>\nint main() { return 0; }\n');
    const args = [`-std=${cxxStd}`, '-fsyntax-only', ...defines.map((d) => `-D${d}`), ...[...includeDirs, cudaInclude].map((d) => `-I${d}`), file];
    execFileSync(process.env.CXX || 'g++', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    return { ok: true, cudaInclude };
  } catch (e) {
    const first = String(e.stderr ?? e.message).split('\n').find((l) => l.includes('error')) ?? 'the compiler failed';
    return { ok: false, why: first.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** libcudart.so[.N] in the lib folder beside a CUDA include folder, if there is one. */
function findCudart(cudaInclude) {
  for (const dir of [join(cudaInclude, '..', 'lib64'), join(cudaInclude, '..', 'lib')]) {
    if (!existsSync(dir)) continue;
    const name = readdirSync(dir).filter((f) => /^libcudart\.so(\.\d+)*$/.test(f)).sort()[0];
    if (name) return resolve(dir, name);
  }
  return undefined;
}

function describe({ source, root, includeDirs, libDir, abi, version }) {
  const cuda = existsSync(join(libDir, 'libtorch_cuda.so')) && existsSync(join(libDir, 'libc10_cuda.so'));
  const libs = ['-ltorch', '-ltorch_cpu', '-lc10'];
  // Without --no-as-needed the linker drops libtorch_cuda (nothing references it by name) and CUDA
  // silently disappears at run time.
  if (cuda) libs.push('-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', '-Wl,--as-needed');
  const defines = [`_GLIBCXX_USE_CXX11_ABI=${abi}`];
  if (cuda) defines.push('SLIM_WITH_CUDA=1');
  const cxxStd = cxxStandard(version);
  let cudaGraphs = { ok: false, why: 'CPU-only LibTorch' };
  if (cuda && process.env.SLIM_CUDA_GRAPHS !== '0') {
    cudaGraphs = probeCudaGraphs(includeDirs, defines, cxxStd, root);
    if (cudaGraphs.ok) {
      defines.push('SLIM_CUDA_GRAPHS=1');
      includeDirs = [...includeDirs, cudaGraphs.cudaInclude];
      // The CUDA guard in those headers calls the runtime inline. libtorch_cuda already loads libcudart,
      // which resolves those calls; linking it by path (when it sits beside the headers) makes it explicit.
      const cudart = findCudart(cudaGraphs.cudaInclude);
      if (cudart) libs.push(cudart, `-Wl,-rpath,${dirname(cudart)}`);
    }
  }
  return {
    source,
    root,
    version: version ? `${version.major}.${version.minor}.${version.patch}` : 'unknown',
    includeDirs,
    libDir,
    libs,
    defines,
    cxxStd,
    cuda,
    cudaGraphs: cudaGraphs.ok ? true : `no: ${cudaGraphs.why}`,
  };
}

/** The include folders of a libtorch tree (`root/include` holds ATen/, c10/ and torch/). */
export function includeDirsOf(root) {
  return [join(root, 'include'), join(root, 'include', 'torch', 'csrc', 'api', 'include')];
}

function fromFolder(root, source) {
  const includeDirs = includeDirsOf(root);
  const libDir = join(root, 'lib');
  if (!existsSync(join(includeDirs[0], 'ATen', 'ATen.h')) || !existsSync(join(libDir, 'libtorch.so'))) return undefined;
  return describe({ source, root, includeDirs, libDir, abi: abiOfLibrary(libDir), version: readVersion(includeDirs) });
}

const PY_PROBE = [
  'import json, os, torch',
  'print(json.dumps({"dir": os.path.dirname(torch.__file__), "abi": int(torch._C._GLIBCXX_USE_CXX11_ABI)}))',
].join('\n');

function fromPython(python) {
  let probe;
  try {
    const out = execFileSync(python, ['-c', PY_PROBE], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 });
    probe = JSON.parse(out.trim().split('\n').pop());
  } catch {
    return undefined;
  }
  const found = fromFolder(probe.dir, `python:${python}`);
  if (!found) return undefined;
  return { ...describe({ ...found, abi: probe.abi, version: readVersion(found.includeDirs) }), source: `python:${python}`, root: probe.dir };
}

function fromDebian() {
  const includeRoot = '/usr/include';
  const api = join(includeRoot, 'torch', 'csrc', 'api', 'include');
  if (!existsSync(join(includeRoot, 'ATen', 'ATen.h')) || !existsSync(api)) return undefined;
  const candidates = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];
  const libDir = candidates.find((d) => existsSync(join(d, 'libtorch.so')));
  if (!libDir) return undefined;
  // /usr/include itself is on the default search path; listing it again would reorder system headers.
  return describe({ source: 'debian', root: '/usr', includeDirs: [api], libDir, abi: 1, version: readVersion([api, includeRoot]) });
}

export function findLibtorch() {
  if (process.env.LIBTORCH) {
    const root = resolve(process.env.LIBTORCH);
    const found = fromFolder(root, 'LIBTORCH');
    if (!found) {
      throw new Error(`LIBTORCH=${root} is not a libtorch folder (expected include/ATen/ATen.h and lib/libtorch.so) — fix the path or unset LIBTORCH`);
    }
    return found;
  }
  const pythons = ['python3', '/usr/bin/python3'];
  for (const python of pythons) {
    const found = fromPython(python);
    if (found) return found;
  }
  const debian = fromDebian();
  if (debian) return debian;
  throw new Error(`LibTorch was not found — ${HOW_TO}`);
}

function main() {
  const args = process.argv.slice(2);
  const info = process.env.SLIM_LIBTORCH_JSON ? JSON.parse(process.env.SLIM_LIBTORCH_JSON) : findLibtorch();
  if (args[0] === '--gyp') {
    const value = info[args[1]];
    if (value === undefined) throw new Error(`unknown field '${args[1]}'; fields: ${Object.keys(info).join(', ')}`);
    process.stdout.write(Array.isArray(value) ? value.join(' ') : String(value));
    return;
  }
  process.stdout.write(`${JSON.stringify(info)}\n`);
}

// Run as a script, not when imported.
if (import.meta.url === `file://${resolve(process.argv[1] ?? '')}`) {
  try {
    main();
  } catch (e) {
    process.stderr.write(`find-libtorch: ${e.message}\n`);
    process.exit(1);
  }
}

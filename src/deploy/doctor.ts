/**
 * `slim doctor` (and a bundle's doctor.js): what this machine offers an ONNX model — CPU model and the
 * instructions ORT's int8 kernels depend on, usable threads, versions — and advice that follows from
 * them. Parsing is pure (tested on recorded /proc/cpuinfo texts); collecting reads the live system.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { cgroupCpuQuota, threadsFor } from '../util/cpu-quota.js';

export interface CpuFeatures {
  /** Arm: SDOT/UDOT (asimddp) — the int8 dot-product instructions of Cortex-A76 / Pi 5 and later. */
  dotprod: boolean;
  /** Arm: SMMLA/UMMLA int8 matrix multiply (Armv8.6). */
  i8mm: boolean;
  sve: boolean;
  /** Arm half-precision arithmetic. */
  fp16: boolean;
  avx2: boolean;
  avx512f: boolean;
  /** AVX-512 VNNI (vpdpbusd, Cascade Lake and later). */
  avx512vnni: boolean;
  /** AVX-VNNI (the VEX-encoded form: Alder Lake, Zen 5). */
  avxvnni: boolean;
  /** AMX int8 tiles (Sapphire Rapids). */
  amx: boolean;
}

export interface CpuInfo {
  arch: string;
  /** 'Cortex-A72', 'Intel(R) Xeon(R) …', or a description of unknown ids. */
  model: string;
  vendor?: string;
  features: CpuFeatures;
  /** The raw feature flags of the first processor. */
  flags: string[];
  /** The kernel describes a different architecture than this process runs on (qemu user emulation). */
  emulated: boolean;
}

/** Arm Ltd. (implementer 0x41) core part numbers → names. */
const ARM_PARTS: Record<number, string> = {
  0xd03: 'Cortex-A53', 0xd04: 'Cortex-A35', 0xd05: 'Cortex-A55', 0xd07: 'Cortex-A57', 0xd08: 'Cortex-A72',
  0xd09: 'Cortex-A73', 0xd0a: 'Cortex-A75', 0xd0b: 'Cortex-A76', 0xd0c: 'Neoverse-N1', 0xd0d: 'Cortex-A77',
  0xd0e: 'Cortex-A76AE', 0xd40: 'Neoverse-V1', 0xd41: 'Cortex-A78', 0xd44: 'Cortex-X1', 0xd46: 'Cortex-A510',
  0xd47: 'Cortex-A710', 0xd48: 'Cortex-X2', 0xd49: 'Neoverse-N2', 0xd4b: 'Cortex-A78C', 0xd4d: 'Cortex-A715',
  0xd4e: 'Cortex-X3', 0xd4f: 'Neoverse-V2', 0xd80: 'Cortex-A520', 0xd81: 'Cortex-A720', 0xd82: 'Cortex-X4',
  0xd84: 'Neoverse-V3', 0xd85: 'Cortex-X925', 0xd87: 'Cortex-A725',
};
const IMPLEMENTERS: Record<number, string> = { 0x41: 'Arm', 0x42: 'Broadcom', 0x48: 'HiSilicon', 0x4e: 'NVIDIA', 0x51: 'Qualcomm', 0x61: 'Apple', 0xc0: 'Ampere' };

/** Parse /proc/cpuinfo text for a process of architecture `arch` (process.arch). */
export function parseCpuInfo(text: string, arch: string): CpuInfo {
  const blocks = text.split(/\n\s*\n/).map(parseBlock).filter((b) => Object.keys(b).length > 0);
  const first = blocks.find((b) => b['processor'] !== undefined) ?? blocks[0] ?? {};
  const flags = (first['flags'] ?? first['features'] ?? '').split(/\s+/).filter(Boolean);
  const has = (f: string): boolean => flags.includes(f);
  const x86Text = first['vendor_id'] !== undefined || first['flags'] !== undefined;
  const armText = first['cpu implementer'] !== undefined || first['features'] !== undefined;
  const emulated = (arch === 'arm64' && x86Text && !armText) || (arch === 'x64' && armText && !x86Text);
  let model = first['model name'] ?? first['hardware'] ?? 'unknown';
  let vendor = first['vendor_id'];
  if (armText) {
    // Big.LITTLE systems list several parts; name each distinct one (e.g. "Cortex-A76 + Cortex-A55").
    const parts = [...new Set(blocks.map((b) => `${b['cpu implementer'] ?? ''}/${b['cpu part'] ?? ''}`).filter((p) => p !== '/'))];
    const names = parts.map((p) => {
      const [imp, part] = p.split('/').map((v) => Number.parseInt(v ?? '', 16));
      return imp === 0x41 && part !== undefined && ARM_PARTS[part] ? ARM_PARTS[part]! : `implementer 0x${(imp ?? 0).toString(16)} part 0x${(part ?? 0).toString(16)}`;
    });
    if (names.length) model = names.join(' + ');
    const imp = Number.parseInt(first['cpu implementer'] ?? '', 16);
    vendor = IMPLEMENTERS[imp] ?? vendor;
  }
  return {
    arch,
    model,
    ...(vendor ? { vendor } : {}),
    flags,
    emulated,
    features: {
      dotprod: has('asimddp'),
      i8mm: has('i8mm'),
      sve: has('sve'),
      fp16: has('asimdhp') || has('fphp'),
      avx2: has('avx2'),
      avx512f: has('avx512f'),
      avx512vnni: has('avx512_vnni'),
      avxvnni: has('avx_vnni'),
      amx: has('amx_int8') || has('amx_tile'),
    },
  };
}

function parseBlock(block: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of block.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return out;
}

export interface DoctorReport {
  cpu: CpuInfo;
  /** /proc/device-tree/model, e.g. "Raspberry Pi 4 Model B Rev 1.4". */
  board?: string;
  threads: {
    /** Logical CPUs this process may run on. */
    available: number;
    /** CPUs' worth of time the cgroup allows, when limited (containers, systemd CPUQuota). */
    cgroupLimit?: number;
    /** What ORT should use: the smaller of the two. */
    recommended: number;
  };
  memory: { totalBytes: number; freeBytes: number };
  versions: { node: string; onnxruntime?: string; sharp?: string; libvips?: string; os: string };
  advice: Advice[];
}

/** The report as `--json` prints it (snake_case keys, as every slimkit JSON document). */
export function doctorJson(report: DoctorReport): Record<string, unknown> {
  const { cgroupLimit, ...threads } = report.threads;
  return {
    cpu: report.cpu,
    ...(report.board !== undefined ? { board: report.board } : {}),
    threads: { ...threads, ...(cgroupLimit !== undefined ? { cgroup_limit: cgroupLimit } : {}) },
    memory: { total_bytes: report.memory.totalBytes, free_bytes: report.memory.freeBytes },
    versions: report.versions,
    advice: report.advice,
  };
}

export interface Advice {
  level: 'good' | 'info' | 'warn';
  text: string;
}

export interface DoctorInputs {
  cpuinfo: string;
  arch: string;
  board?: string;
  available: number;
  cgroupLimit?: number;
  memory: { totalBytes: number; freeBytes: number };
  versions: DoctorReport['versions'];
}

/**
 * Where the doctor runs: slimkit itself (`slim doctor`), or a deployed bundle's doctor.js, where no
 * `slim` and only one model are at hand — its advice names what can be done there.
 */
export type DoctorPlace = 'slimkit' | 'bundle';

/** The report for given facts (pure; `collectDoctorInputs` reads them from this machine). */
export function doctorReport(inputs: DoctorInputs, place: DoctorPlace = 'slimkit'): DoctorReport {
  const cpu = parseCpuInfo(inputs.cpuinfo, inputs.arch);
  const limit = inputs.cgroupLimit;
  const recommended = threadsFor(inputs.available, limit);
  const report: DoctorReport = {
    cpu,
    ...(inputs.board ? { board: inputs.board } : {}),
    threads: { available: inputs.available, ...(limit !== undefined ? { cgroupLimit: limit } : {}), recommended },
    memory: inputs.memory,
    versions: inputs.versions,
    advice: [],
  };
  report.advice = advise(report, place);
  return report;
}

function advise(r: DoctorReport, place: DoctorPlace): Advice[] {
  const out: Advice[] = [];
  const benchBoth = place === 'bundle'
    ? 'time both here: deploy the fp32 model beside this one and compare the model_ms of `node predict.js --json` over a few dozen images (the first pays for start-up)'
    : 'benchmark both (slim bench fp32.onnx int8.onnx)';
  const f = r.cpu.features;
  const model = r.board ? `${r.cpu.model} (${r.board})` : r.cpu.model;
  if (r.cpu.emulated) {
    out.push({ level: 'warn', text: `the kernel describes a different CPU than this ${r.cpu.arch} process runs on — emulation (qemu-user?): timings here say nothing about the real device` });
  }
  if (r.cpu.arch === 'arm64') {
    if (f.dotprod) {
      out.push({ level: 'good', text: `${model} has the Arm dot-product instructions (asimddp): int8 convolutions run faster than fp32 here (ORT uses SDOT/UDOT kernels, typically 1.5–3×; a small model gains less — benchmark both)` });
      if (f.i8mm) out.push({ level: 'good', text: 'i8mm (SMMLA) is present too: ORT\'s fastest Arm int8 matrix kernels apply' });
    } else {
      out.push({ level: 'warn', text: `${model} has no dot-product instructions (asimddp), like the Cortex-A72 of a Raspberry Pi 4: int8 may be no faster than fp32 here — ${benchBoth} and pick by speed; int8 still stores its weights in a quarter of the bytes. A Cortex-A76 (Raspberry Pi 5) has them.` });
    }
  } else if (r.cpu.arch === 'x64') {
    if (f.amx) out.push({ level: 'good', text: 'AMX int8 tiles present: int8 GEMMs are much faster than fp32' });
    if (f.avx512vnni || f.avxvnni) {
      out.push({ level: 'good', text: `VNNI present (${[f.avx512vnni && 'avx512_vnni', f.avxvnni && 'avx_vnni'].filter(Boolean).join(', ')}): int8 convolutions run 2–4× faster than fp32 — a model's whole latency gains less, and a small one (a few M MACs) may gain nothing: ${benchBoth}; models for this CPU need no --reduce-range` });
    } else if (f.avx2) {
      out.push({ level: 'warn', text: 'AVX2 without VNNI: ORT\'s int8 kernels (vpmaddubsw) add pairs in 16 bits and can saturate — models for this CPU should be quantized with `slim quantize --cpu avx2` (uint8 weights, exact on ORT\'s slower u8×u8 kernels: 0.62× fp32 on ResNet18-CIFAR width 1, about fp32\'s time at width 0.25) or `--reduce-range` (7-bit weights on the fast kernels: 0.67× fp32 at width 0.25 with the same top-1 there; coarser weights can cost accuracy elsewhere) — compare both with `slim bench --data`' });
    } else {
      out.push({ level: 'warn', text: `no AVX2: int8 kernels fall back to SSE and may be slower than fp32 — prefer a smaller fp32 model; ${benchBoth}` });
    }
  } else {
    out.push({ level: 'info', text: `${r.cpu.arch}: slimkit bundles target linux-arm64, linux-x64 and the web` });
  }
  const t = r.threads;
  if (t.cgroupLimit !== undefined && t.cgroupLimit < t.available) {
    out.push({ level: 'warn', text: `a CPU quota allows ${t.cgroupLimit} CPUs but ${t.available} are visible: slimkit's commands default to ${t.recommended} thread(s); give the bundle's server and predict SLIM_THREADS=${t.recommended} (they start one per visible CPU, and ORT threads beyond the quota are throttled)` });
  } else {
    out.push({ level: 'info', text: `ORT uses ${t.available} threads by default (one per CPU); lower it with --threads (SLIM_THREADS for the bundle server) to leave CPUs for other work` });
  }
  if (r.memory.totalBytes < 1024 ** 3) {
    out.push({ level: 'warn', text: `only ${(r.memory.totalBytes / 1024 ** 2).toFixed(0)} MiB of memory: keep the server's --queue and --max-batch small` });
  }
  const [major = 0, minor = 0] = r.versions.node.replace(/^v/, '').split('.').map(Number);
  if (major < 20 || (major === 20 && minor < 9)) {
    out.push({ level: 'warn', text: `Node ${r.versions.node} is too old: sharp needs Node ≥ 20.9 (install Node 20 or 22 LTS from nodejs.org)` });
  }
  return out;
}

/** Reads this machine: /proc/cpuinfo, the device-tree model, the cgroup CPU quota (v1 or v2), memory, versions. */
export async function collectDoctorInputs(versions: Omit<DoctorReport['versions'], 'node' | 'os'> = {}): Promise<DoctorInputs> {
  const read = (file: string): Promise<string | undefined> => readFile(file, 'utf8').catch(() => undefined);
  const [cpuinfo, board] = await Promise.all([read('/proc/cpuinfo'), read('/proc/device-tree/model')]);
  const quota = cgroupCpuQuota();
  return {
    cpuinfo: cpuinfo ?? '',
    arch: process.arch,
    // eslint-disable-next-line no-control-regex
    ...(board ? { board: board.replace(/\u0000/g, '').trim() } : {}),
    available: os.availableParallelism(),
    ...(quota !== undefined ? { cgroupLimit: quota } : {}),
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    versions: { node: process.version, os: `${os.type()} ${os.release()} ${os.machine()}`, ...versions },
  };
}

export function formatDoctorReport(r: DoctorReport): string {
  const f = r.cpu.features;
  const yes = (v: boolean): string => (v ? 'yes' : 'no');
  const featureLine = r.cpu.arch === 'arm64'
    ? `dot-product (asimddp) ${yes(f.dotprod)}, i8mm ${yes(f.i8mm)}, fp16 ${yes(f.fp16)}, sve ${yes(f.sve)}`
    : `avx2 ${yes(f.avx2)}, avx512f ${yes(f.avx512f)}, avx512_vnni ${yes(f.avx512vnni)}, avx_vnni ${yes(f.avxvnni)}, amx ${yes(f.amx)}`;
  const marks = { good: '+', info: '-', warn: '!' } as const;
  return [
    `cpu       ${r.cpu.model}${r.cpu.vendor ? ` (${r.cpu.vendor})` : ''}, ${r.cpu.arch}${r.board ? ` — ${r.board}` : ''}`,
    `features  ${featureLine}`,
    `threads   ${r.threads.available} available${r.threads.cgroupLimit !== undefined ? `, cgroup quota ${r.threads.cgroupLimit}` : ''}; recommended --threads ${r.threads.recommended}`,
    `memory    ${(r.memory.totalBytes / 1024 ** 3).toFixed(1)} GiB total, ${(r.memory.freeBytes / 1024 ** 3).toFixed(1)} GiB free`,
    `versions  node ${r.versions.node}, onnxruntime ${r.versions.onnxruntime ?? 'not loadable'}, sharp ${r.versions.sharp ?? 'not loadable'}${r.versions.libvips ? ` (libvips ${r.versions.libvips})` : ''}, ${r.versions.os}`,
    '',
    'advice',
    ...r.advice.map((a) => `  ${marks[a.level]} ${a.text}`),
  ].join('\n');
}

/** Versions of the native parts, each loaded on its own so one that fails to load is reported, not fatal. */
export async function nativeVersions(): Promise<Omit<DoctorReport['versions'], 'node' | 'os'>> {
  const out: Omit<DoctorReport['versions'], 'node' | 'os'> = {};
  try {
    const { ortVersion } = await import('./ort-version.js');
    out.onnxruntime = ortVersion().node;
  } catch {
    // reported as "not loadable"
  }
  try {
    const sharp = (await import('sharp')).default;
    out.sharp = sharp.versions.sharp;
    out.libvips = sharp.versions.vips;
  } catch {
    // reported as "not loadable"
  }
  return out;
}

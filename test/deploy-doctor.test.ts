/**
 * `slim doctor`: CPU identification and int8 advice from recorded /proc/cpuinfo texts of the machines
 * users deploy to (Raspberry Pi 4 and 5, x86 with and without VNNI, a big.LITTLE phone SoC, qemu), and
 * the live command's JSON.
 */
import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import { nativeAvailable } from '../src/engine/native.js';
import { toolAdvice, toolLines, type SlimkitTools } from '../src/cli/commands/doctor-tools.js';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { doctorReport, parseCpuInfo, type DoctorInputs } from '../src/deploy/doctor.js';
import { cgroupCpuQuota, threadsFor } from '../src/util/cpu-quota.js';
import { REPO_ROOT } from './helpers/fixtures.js';
import { precisionHint, resolvedPrecision } from '../src/engine/precision.js';

const arm = (part: string, features: string, n = 4): string =>
  Array.from({ length: n }, (_, i) => `processor\t: ${i}\nBogoMIPS\t: 108.00\nFeatures\t: ${features}\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: ${part}\nCPU revision\t: 3\n`).join('\n');
const PI4 = `${arm('0xd08', 'fp asimd evtstrm crc32 cpuid')}\nHardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n`;
const PI5 = arm('0xd0b', 'fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp');
const X86 = (flags: string): string => `processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz\nflags\t\t: ${flags}\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nflags\t\t: ${flags}\n`;
const SKYLAKE = 'fpu vme sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma bmi2';
const ICELAKE = `${SKYLAKE} avx512f avx512bw avx512_vnni`;

const inputs = (cpuinfo: string, arch: string, extra: Partial<DoctorInputs> = {}): DoctorInputs => ({
  cpuinfo,
  arch,
  available: 4,
  memory: { totalBytes: 4 * 1024 ** 3, freeBytes: 3 * 1024 ** 3 },
  versions: { node: 'v20.20.2', os: 'Linux' },
  ...extra,
});

describe('parseCpuInfo', () => {
  it('names Arm cores and their int8 features', () => {
    expect(parseCpuInfo(PI4, 'arm64')).toMatchObject({ model: 'Cortex-A72', vendor: 'Arm', emulated: false, features: { dotprod: false, i8mm: false } });
    expect(parseCpuInfo(PI5, 'arm64')).toMatchObject({ model: 'Cortex-A76', features: { dotprod: true, fp16: true, i8mm: false } });
    const bigLittle = `${arm('0xd41', 'fp asimd asimddp i8mm', 2)}\n${arm('0xd05', 'fp asimd asimddp', 2)}`;
    expect(parseCpuInfo(bigLittle, 'arm64')).toMatchObject({ model: 'Cortex-A78 + Cortex-A55', features: { dotprod: true, i8mm: true } });
    expect(parseCpuInfo(arm('0xabc', 'fp asimd', 1), 'arm64').model).toBe('implementer 0x41 part 0xabc');
  });

  it('reads x86 VNNI / AMX flags and spots emulation', () => {
    expect(parseCpuInfo(X86(SKYLAKE), 'x64')).toMatchObject({ model: 'Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz', vendor: 'GenuineIntel', features: { avx2: true, avx512vnni: false, avxvnni: false, amx: false } });
    expect(parseCpuInfo(X86(`${ICELAKE} avx_vnni amx_tile amx_int8`), 'x64').features).toMatchObject({ avx512f: true, avx512vnni: true, avxvnni: true, amx: true });
    expect(parseCpuInfo(X86(SKYLAKE), 'arm64').emulated).toBe(true);
  });
});

describe('doctor advice', () => {
  const advice = (i: DoctorInputs): string => doctorReport(i).advice.map((a) => `${a.level}: ${a.text}`).join('\n');

  it('warns that int8 may not pay off on a Pi 4 and says it should on a Pi 5', () => {
    const pi4 = advice(inputs(PI4, 'arm64', { board: 'Raspberry Pi 4 Model B Rev 1.4' }));
    expect(pi4).toMatch(/^warn: Cortex-A72 \(Raspberry Pi 4 Model B Rev 1\.4\) has no dot-product .*int8 may be no faster than fp32/m);
    expect(advice(inputs(PI5, 'arm64'))).toMatch(/^good: Cortex-A76 has the Arm dot-product instructions \(asimddp\): int8 convolutions run faster than fp32/m);
    expect(pi4).toContain('benchmark both (slim bench fp32.onnx int8.onnx)');
  });

  it("a bundle's doctor.js names what can be done on the device, where there is no slim and one model", () => {
    const onDevice = (i: DoctorInputs): string => doctorReport(i, 'bundle').advice.map((a) => a.text).join('\n');
    for (const text of [onDevice(inputs(PI4, 'arm64')), onDevice(inputs(X86(ICELAKE), 'x64'))]) {
      expect(text).not.toMatch(/slim bench/);
      expect(text).toContain('deploy the fp32 model beside this one and compare the model_ms of `node predict.js --json` over a few dozen images');
    }
  });

  it('recommends --reduce-range on x86 without VNNI, not with it', () => {
    expect(advice(inputs(X86(SKYLAKE), 'x64'))).toMatch(/^warn: AVX2 without VNNI.*--reduce-range/m);
    const vnni = advice(inputs(X86(ICELAKE), 'x64'));
    expect(vnni).toMatch(/^good: VNNI present \(avx512_vnni\)/m);
    expect(vnni).not.toMatch(/warn: .*reduce-range/);
  });

  it('reads the CPU quota of cgroup v2 and v1, at the process\'s own cgroup and its ancestors, the tightest one', () => {
    const machine = (files: Record<string, string>) => (file: string): string | undefined => files[file];
    // v2 inside a cgroup namespace (a container): the path is / and cpu.max sits at the root.
    expect(cgroupCpuQuota(machine({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '150000 100000\n' }))).toBe(1.5);
    expect(cgroupCpuQuota(machine({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n' }))).toBeUndefined();
    // v2 from the host's view (systemd CPUQuota=250% on a service in a slice limited to 4 CPUs).
    expect(cgroupCpuQuota(machine({
      '/proc/self/cgroup': '0::/system.slice/slim.service\n',
      '/sys/fs/cgroup/system.slice/slim.service/cpu.max': '250000 100000',
      '/sys/fs/cgroup/system.slice/cpu.max': '400000 100000',
    }))).toBe(2.5);
    // v1 (this test machine's layout): the cpu controller's quota and period, −1 for none.
    const v1 = '9:name=systemd:/\n4:memory:/x\n2:cpuacct:/\n1:cpu:/docker/abc\n';
    expect(cgroupCpuQuota(machine({ '/proc/self/cgroup': v1, '/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us': '200000\n', '/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us': '100000\n' }))).toBe(2);
    expect(cgroupCpuQuota(machine({ '/proc/self/cgroup': v1, '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1', '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000' }))).toBeUndefined();
    // A combined controller folder (cpu,cpuacct), the limit set on the parent.
    expect(cgroupCpuQuota(machine({ '/proc/self/cgroup': '3:cpu,cpuacct:/kube/pod1\n', '/sys/fs/cgroup/cpu,cpuacct/kube/cpu.cfs_quota_us': '50000', '/sys/fs/cgroup/cpu,cpuacct/kube/cpu.cfs_period_us': '100000' }))).toBe(0.5);
    expect(cgroupCpuQuota(machine({}))).toBeUndefined();
  });

  it('derives the thread advice from the cgroup quota, and flags old Node and emulation', () => {
    const limited = doctorReport(inputs(PI5, 'arm64', { available: 4, cgroupLimit: 2 }));
    expect(limited.threads).toEqual({ available: 4, cgroupLimit: 2, recommended: 2 });
    expect(limited.advice.map((a) => a.text).join('\n')).toMatch(/quota allows 2 CPUs but 4 are visible: slimkit's commands default to 2 thread\(s\); give the bundle's server and predict SLIM_THREADS=2/);
    expect([threadsFor(16, undefined), threadsFor(16, 2), threadsFor(16, 1.5), threadsFor(16, 0.5), threadsFor(2, 8)]).toEqual([16, 2, 1, 1, 2]);
    expect(advice(inputs(PI4, 'arm64', { versions: { node: 'v18.19.0', os: 'Linux' } }))).toMatch(/Node v18\.19\.0 is too old/);
    expect(advice(inputs(X86(SKYLAKE), 'arm64'))).toMatch(/^warn: .*emulation \(qemu-user\?\)/m);
    expect(advice(inputs(PI4, 'arm64', { memory: { totalBytes: 512 * 1024 ** 2, freeBytes: 1 } }))).toMatch(/only 512 MiB/);
  });
});

describe('slim doctor', () => {
  it('--json prints one report for this machine', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'bin/slim.js'), 'doctor', '--json']);
    const report = JSON.parse(stdout);
    expect(report.cpu.arch).toBe(process.arch);
    expect(report.threads.available).toBeGreaterThanOrEqual(1);
    expect(report.versions).toMatchObject({ node: process.version });
    expect(report.versions.onnxruntime).toMatch(/^\d+\.\d+\.\d+$/);
    expect(report.versions.sharp).toMatch(/^\d+\.\d+\.\d+$/);
    expect(report.advice.length).toBeGreaterThanOrEqual(2);
    // What this slimkit can do here (a trial asked the doctor, and heard nothing of training, browser or arm64).
    expect(report.tools.training.ready).toBe(nativeAvailable());
    expect(report.tools.browser === null ? null : existsSync(report.tools.browser)).toBe(report.tools.browser === null ? null : true);
    expect(typeof report.tools.arm64_emulation).toBe('boolean');
    expect(report.tools.load.cpus).toBe(availableParallelism());
  });

  it('names what is missing and how to get it, and warns when the machine is busy', () => {
    const tools: SlimkitTools = { training: { ready: false, why: 'the LibTorch training addon is not built — to enable training: …' }, browser: null, arm64Emulation: false, load: { average: 1.9, cpus: 2 } };
    expect(toolLines(tools)).toEqual([
      'training  not available: the LibTorch training addon is not built — to enable training: …',
      'browser   none (slim bench --target web needs Chromium or Chrome: apt install chromium)',
      expect.stringMatching(/^arm64     (not set up here \(scripts\/setup-arm64\.sh: |native)/),
    ]);
    expect(toolAdvice(tools).map((a) => a.text)).toEqual([expect.stringMatching(/^the machine is busy now \(load average 1\.90 on 2 CPUs\): latencies measured now/)]);
    expect(toolAdvice({ ...tools, load: { average: 0.3, cpus: 2 } })).toEqual([]);
  });
});

describe('training precision hints', () => {
  it('says when bf16 would pay (AMX-BF16) and when it would not (none)', () => {
    expect(precisionHint('cpu', 'auto', true)).toMatch(/this CPU has AMX-BF16 — --precision bf16 trains about twice as fast/);
    expect(precisionHint('cpu', 'bf16', false)).toMatch(/this CPU has no AMX-BF16.*gains little or is slower than --precision fp32/);
    expect(precisionHint('cpu', 'bf16', true)).toBeUndefined();
    expect(precisionHint('cpu', 'fp32', false)).toBeUndefined();
    expect(precisionHint('cuda', 'bf16', false)).toBeUndefined();
    expect([resolvedPrecision('cpu', 'auto'), resolvedPrecision('cuda', 'auto'), resolvedPrecision('cpu', 'bf16')]).toEqual(['fp32', 'bf16', 'bf16']);
  });
});

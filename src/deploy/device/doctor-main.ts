/** The bundle's doctor: `slim doctor` on the device — CPU features, threads, versions and advice. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CONFIG_FILE } from '../config.js';
import { collectDoctorInputs, doctorJson, doctorReport, formatDoctorReport, nativeVersions, type Advice } from '../doctor.js';

export async function main(dir: string): Promise<number> {
  const report = doctorReport(await collectDoctorInputs(await nativeVersions()), 'bundle');
  const other = otherTarget(dir);
  if (other) report.advice.unshift(other);
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(doctorJson(report), null, 2)}\n` : `${formatDoctorReport(report)}\n`);
  return 0;
}

/**
 * The bundle was made for another machine (an arm64 bundle tried on an x64 box): the advice above is this
 * machine's, not the device's (a trial read x64 advice from a Raspberry Pi bundle, with no word of it).
 */
export function otherTarget(dir: string, arch: string = process.arch): Advice | undefined {
  let target: unknown;
  try {
    target = (JSON.parse(readFileSync(path.join(dir, CONFIG_FILE), 'utf8')) as { target?: unknown }).target;
  } catch {
    return undefined;
  }
  if (typeof target !== 'string' || target === `linux-${arch}`) return undefined;
  return { level: 'warn', text: `this bundle is for ${target} and this machine is linux-${arch}: the report is of this machine, not the device — run node doctor.js there` };
}

/** The bundle's doctor: `slim doctor` on the device — CPU features, threads, versions and advice. */
import { collectDoctorInputs, doctorJson, doctorReport, formatDoctorReport, nativeVersions } from '../doctor.js';

export async function main(): Promise<number> {
  const report = doctorReport(await collectDoctorInputs(await nativeVersions()), 'bundle');
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(doctorJson(report), null, 2)}\n` : `${formatDoctorReport(report)}\n`);
  return 0;
}

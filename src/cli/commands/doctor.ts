import type { Command } from 'commander';
import { collectDoctorInputs, doctorJson, doctorReport, formatDoctorReport, nativeVersions } from '../../deploy/doctor.js';
import { printResult, type CommonOptions } from '../output.js';
import { withJson } from '../options.js';

export function registerDoctor(program: Command): void {
  withJson(
    program
      .command('doctor')
      .description('what this machine offers a model: CPU model and int8 features (Arm dot-product, x86 VNNI), threads, versions, advice'),
  )
    .addHelpText('after', '\nExamples:\n  slim doctor\n  slim doctor --json\nOn a device, a bundle has the same check: node doctor.js')
    .action(async (options: CommonOptions) => {
      const report = doctorReport(await collectDoctorInputs(await nativeVersions()));
      printResult(options, doctorJson(report), () => formatDoctorReport(report));
    });
}

import type { Command } from 'commander';
import { collectDoctorInputs, doctorJson, doctorReport, formatDoctorReport, nativeVersions } from '../../deploy/doctor.js';
import { printResult, type CommonOptions } from '../output.js';
import { withJson } from '../options.js';
import { slimkitTools, toolAdvice, toolLines, toolsJson } from './doctor-tools.js';

export function registerDoctor(program: Command): void {
  withJson(
    program
      .command('doctor')
      .description('what this machine offers: CPU model and int8 features (Arm dot-product, x86 VNNI), threads, versions, whether it can train, time in a browser and run arm64 bundles, how busy it is; advice'),
  )
    .addHelpText('after', '\nExamples:\n  slim doctor\n  slim doctor --json\nOn a device, a bundle has the same check of the CPU: node doctor.js')
    .action(async (options: CommonOptions) => {
      const report = doctorReport(await collectDoctorInputs(await nativeVersions()));
      const tools = slimkitTools();
      report.advice.push(...toolAdvice(tools));
      printResult(options, { ...doctorJson(report), tools: toolsJson(tools) }, () => {
        // The tools go under the versions, before the advice.
        const [head, advice] = formatDoctorReport(report).split('\n\nadvice\n');
        return [head, ...toolLines(tools), '', 'advice', advice].join('\n');
      });
    });
}

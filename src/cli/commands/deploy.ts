import { shellWord } from '../../util/shell.js';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { inputError } from '../../errors.js';
import { deploy } from '../../deploy/bundle.js';
import { TARGETS, type Target } from '../../deploy/config.js';
import { formatBytes, table } from '../../report/format.js';
import { log } from '../../util/terminal.js';
import { printResult, type CommonOptions } from '../output.js';
import { checkOutputDir } from '../paths.js';
import { didYouMean } from '../../util/suggest.js';
import { CHANNEL_COUNTS, imageSizeArg, MEAN_HELP, meanList, port, RESIZE_HELP, resizeArg, STD_HELP, stdList, withJson } from '../options.js';
import type { ResizeMode } from '../../data/image-folder.js';

export interface ModelFlags {
  labels?: string;
  imageSize?: [number, number];
  mean?: number[];
  std?: number[];
  resize?: ResizeMode;
  name?: string;
}

interface DeployFlags extends CommonOptions, ModelFlags {
  target: Target;
  out: string;
  port?: number;
  install?: boolean;
  force?: boolean;
}

/** Flags shared by deploy and serve (for a bare .onnx model): labels and preprocessing overrides. */
export function withModelFlags(cmd: Command): Command {
  return cmd
    .option('--labels <file>', 'class names, one per line in output order (default: the model metadata)')
    .option('--image-size <h,w>', 'input height,width (default: the model metadata or input shape)', imageSizeArg)
    .option('--mean <r,g,b|v>', MEAN_HELP, meanList('--mean', CHANNEL_COUNTS))
    .option('--std <r,g,b|v>', STD_HELP, stdList('--std', CHANNEL_COUNTS))
    .option('--resize <mode>', RESIZE_HELP, resizeArg)
    .option('--name <name>', 'bundle / service name (default: the model file name)');
}

/** Reads --labels: one name per line; blank lines at the end are ignored, blank lines inside are an error. */
export async function readLabels(file: string): Promise<string[]> {
  let textValue: string;
  try {
    textValue = await readFile(file, 'utf8');
  } catch (e) {
    throw inputError({ file, problem: `cannot read labels (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, fix: 'pass a text file with one class name per line' });
  }
  const lines = textValue.replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const blank = lines.indexOf('');
  if (blank >= 0) throw inputError({ file, where: `line ${blank + 1}`, problem: 'is blank', fix: 'give every class a name, one per line' });
  if (lines.length === 0) throw inputError({ file, problem: 'holds no class names', fix: 'one class name per line, in output order' });
  return lines;
}

export async function modelOptions(flags: ModelFlags): Promise<Record<string, unknown>> {
  return {
    ...(flags.labels ? { labels: await readLabels(flags.labels) } : {}),
    ...(flags.imageSize ? { imageSize: flags.imageSize } : {}),
    ...(flags.mean ? { mean: flags.mean } : {}),
    ...(flags.std ? { std: flags.std } : {}),
    ...(flags.resize ? { resize: flags.resize } : {}),
    ...(flags.name ? { name: flags.name } : {}),
  };
}

/** A device named instead of a target (a trial's --target raspberrypi): which target it is. */
function deviceHint(given: string): string {
  const v = given.toLowerCase();
  if (/raspberry|rpi|^pi\d*$|jetson|arm|aarch/.test(v)) return '; a Raspberry Pi or Jetson on a 64-bit OS is linux-arm64';
  if (/x86|amd64|intel|pc|server|ubuntu|debian|^linux$/.test(v)) return '; a 64-bit Intel or AMD Linux machine is linux-x64';
  if (/browser|wasm|chrome|firefox|safari|html|js/.test(v)) return '; a browser is web';
  return '';
}

export function registerDeploy(program: Command): void {
  withJson(
    withModelFlags(
      program
        .command('deploy')
        .description('write a self-contained bundle (model, preprocessing, predict CLI, HTTP server, systemd unit, README) for a device or the web')
        .argument('<model>', 'an .onnx classifier')
        .requiredOption('--target <target>', `${TARGETS.join(' | ')}`, (given: string) => {
          // Debian's and the kernel's names for the same machines.
          const v = ({ 'linux-amd64': 'linux-x64', 'linux-x86_64': 'linux-x64', 'linux-aarch64': 'linux-arm64' } as Record<string, string>)[given] ?? given;
          if (!(TARGETS as readonly string[]).includes(v)) throw new InvalidArgumentError(`--target must be one of ${TARGETS.join(', ')}, got '${v}'${didYouMean(v, TARGETS).replace(/^did/, '; did').trimEnd()}${deviceHint(v)}`);
          return v;
        })
        .requiredOption('-o, --out <dir>', 'bundle folder to create')
        .option('--port <n>', 'linux targets: port of the server, its systemd unit and README (default 8080)', port('--port', 1))
        .option('--install', 'also put node_modules for the target into the bundle (npm; works offline on the device)')
        .option('--force', 'replace an existing bundle at --out'),
    ),
  )
    .addHelpText('after', [
      '',
      'Examples:',
      '  slim deploy int8.onnx --target linux-arm64 --out pi-bundle          # then: scp -r pi-bundle pi@raspberrypi.local:',
      '  slim deploy int8.onnx --target linux-arm64 --out pi-bundle --install  # node_modules for arm64 included',
      '  slim deploy model.onnx --target web --out site --labels classes.txt',
    ].join('\n'))
    .action(async (model: string, flags: DeployFlags) => {
      checkOutputDir(flags.out, '--out');
      const result = await deploy({
        model,
        target: flags.target,
        out: flags.out,
        ...(flags.port !== undefined ? { port: flags.port } : {}),
        ...(flags.install ? { install: true } : {}),
        ...(flags.force ? { force: true } : {}),
        ...(await modelOptions(flags)),
        log,
      });
      const { totalBytes, ...rest } = result;
      printResult(flags, { ...rest, total_bytes: totalBytes }, () => {
        const next = result.target === 'web'
          ? `next: serve the folder over HTTP (slim serve ${flags.out}) and open it in a browser`
          : `next: copy ${shellWord(flags.out)} to the device, ${result.installed ? '' : 'run sh install.sh there, '}then node predict.js IMAGE or node server.js (see ${path.join(flags.out, 'README.md')})`;
        return [
          `${result.out}: ${result.target} bundle of ${model} (${result.model.classes} classes, ${result.model.size.join('×')} input, ${formatBytes(result.totalBytes)}${result.installed ? ' with node_modules' : ''})`,
          '',
          table(['file', 'size'], result.files.map((f) => [f.path, formatBytes(f.bytes)])),
          '',
          next,
        ].join('\n');
      });
    });
}

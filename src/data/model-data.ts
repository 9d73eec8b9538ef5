/**
 * Data as a model takes it: the set --data names (CIFAR-10 or an image folder), brought to the model's
 * input size and channels, labelled by the class names the model records, normalized by its recorded
 * mean/std or the flags. The commands and the pipeline's stages share it.
 */
import { stat } from 'node:fs/promises';
import { inputError, mismatchError, SlimError, usageError } from '../errors.js';
import { isCifar10, loadCifar10, type LoadCifar10Options } from './cifar10.js';
import type { DownloadProgress } from './download.js';
import { decodeListing, folderLayout, MAX_CLASSES, listImageFolder, listNames, listSplitFolder, loadTrainTestFolders, outsideClassesNote, passedOverNote, SPLIT_NAMES, type DecodeOptions, type FolderListing, type ImageChannels, type ImageFolderSet, type LoadImageFolderOptions, type ResizeMode, type SplitName } from './image-folder.js';
import { CHUNK_BYTES, folderSource, sourceOfSet, type ImageSource } from './stream.js';
import { chosenResize, resizeSourceOf, type ModelResize } from './model-resize.js';
import { matchClasses } from './class-names.js';
import { pixelStatistics, type ImageSet, type Normalization } from './types.js';
import { dataInputs, type Graph } from '../onnx/graph.js';
import { checkGivenPair, checkNormalizationPair, defaultNormalization, METADATA_KEYS, modelChannels, normalizationMetadata, overriddenNormalizationNote, perChannel, readPreprocessing } from '../zoo/metadata.js';
import { checkImageSizeFits, fixedImageSize, hasFreeImageSize, imageAxes, rawPixelInput } from '../onnx/image-input.js';
import { lazyProgress, log, progress, type Progress } from '../util/terminal.js';

/** How many channels a model's images have: the commands load data by it (defined beside the metadata it reads). */
export { modelChannels };

export interface DataOptions {
  data?: string;
  dataDir?: string;
  split?: string;
  /** A split wish the caller makes itself (calibration prefers train/): a folder without splits just uses all of it. */
  splitOptional?: boolean;
  /** Images are read for themselves (calibration): a folder of images needs no class folders. */
  unlabelled?: boolean;
  limit?: number;
  /** With `limit` on an image folder: its images drawn at random with this seed, not each class's first (calibration). */
  sampleSeed?: number;
  mean?: number[];
  std?: number[];
  /** How a folder's images are brought to the model's input (--resize); CIFAR-10's are not resized. */
  resize?: ResizeMode;
  /** What the model records (slimkit.resize): a folder's images are brought to it unless --resize says otherwise. */
  recordedResize?: ModelResize | undefined;
  /** The command takes --split (eval, bench): a missing split's error offers the ones there are. */
  splitFlag?: boolean;
  /** The flag that named the data, for errors (default --data; calibration's is --calib). */
  flag?: string;
}

/**
 * A data set named on the command line that is not cifar10 must be a folder: a missing path is bad
 * input (exit 1), as a missing model file is; a file is named as one.
 */
export async function requireDataFolder(name: string, flag: string, fix: string): Promise<void> {
  const info = await stat(name).catch(() => undefined);
  if (info?.isDirectory()) return;
  throw inputError({ file: name, problem: info ? `is a file; ${flag} takes 'cifar10' or a folder` : `does not exist (${flag} takes 'cifar10' or a folder)`, fix });
}

/** The [H, W] a model's first image input expects: its fixed shape, else its slimkit.input_size metadata. */
export function modelInputSize(graph: Graph): [number, number] | undefined {
  const fixed = fixedImageSize(graph);
  if (fixed) return fixed;
  const meta = readPreprocessing(graph).inputShape;
  return meta ? [meta[1], meta[2]] : undefined;
}

/**
 * --image-size when given (refused if the model's input is fixed at another size, or too small for it),
 * else modelInputSize. `cifar`: the size is CIFAR-10's, taken for want of one (chosenImageSize).
 */
export function imageSizeFor(graph: Graph, file: string, flag: [number, number] | undefined, o: { cifar?: boolean } = {}): [number, number] | undefined {
  if (!flag) return modelInputSize(graph);
  const fixed = fixedImageSize(graph);
  if (fixed && (fixed[0] !== flag[0] || fixed[1] !== flag[1])) {
    throw usageError(`${file}: input '${dataInputs(graph)[0]!.name}' is fixed at ${fixed.join('×')} but --image-size says ${flag.join('×')}`, 'drop --image-size (it is for models whose height and width are free)');
  }
  checkImageSizeFits(graph, flag, file, o);
  return flag;
}

/**
 * The evaluation set named by --data: CIFAR-10 (a split) or an image folder resized to the model's input
 * (a split of train/ + test/ or val/, or a folder of class folders: folderLayout decides). `classes`: the
 * names the model records, which the set is labelled by (labelledForModel) — checked before any image
 * is decoded.
 */
export async function loadDataset(options: DataOptions, inputSize?: [number, number], channels: ImageChannels = 3, classes?: ModelClasses): Promise<ImageSet> {
  const found = await findSplit(options, inputSize, channels);
  if ('set' in found) return labelledForModel(found.set, classes);
  return decodeWithBar(labelledListing(found.listing, classes), found.decode);
}

/**
 * The same set as loadDataset, to be read in order (evaluation): a folder whose images do not fit in
 * one chunk decoded (stream.ts CHUNK_BYTES) is decoded a chunk at a time, so a split of any size is
 * scored in bounded memory — ImageNet's 50,000 validation images at 224×224 are 7.0 GiB decoded.
 * `wholeUpTo`: decoded whole up to this many bytes instead (default one chunk), for a caller that scores
 * the set many times (slim quantize) and would otherwise decode it each time.
 */
export async function openDataset(options: DataOptions, inputSize?: [number, number], channels: ImageChannels = 3, classes?: ModelClasses, o: { chunkBytes?: number; wholeUpTo?: number } = {}): Promise<ImageSource> {
  const found = await findSplit(options, inputSize, channels);
  if ('set' in found) return sourceOfSet(labelledForModel(found.set, classes));
  const listing = labelledListing(found.listing, classes);
  const [height, width] = found.decode.size;
  const chunkBytes = o.chunkBytes ?? CHUNK_BYTES;
  if (listing.files.length * channels * height * width <= Math.max(chunkBytes, o.wholeUpTo ?? 0)) return sourceOfSet(await decodeWithBar(listing, found.decode));
  return folderSource(listing, { ...found.decode, chunkBytes });
}

/** A source labelled as the model numbers its outputs (labelledForModel; its note or refusal come now). */
export function labelledSource(source: ImageSource, model: ModelClasses | undefined, o: { quiet?: boolean } = {}): ImageSource {
  const classes = labelledForModel(labelsOnly(source.name, source.classes), model, o).classes;
  if (classes === source.classes) return source;
  return {
    ...source,
    classes,
    async *chunks(o) {
      for await (const chunk of source.chunks(o)) yield labelledForModel(chunk, model, { quiet: true });
    },
  };
}

/** A set of labels without pixels: what labelledForModel reads to match or renumber classes before decoding. */
function labelsOnly(name: string, classes: string[], labels = new Uint16Array(0)): ImageSet {
  return { name, classes, imageShape: [0, 0, 0], pixels: new Uint8Array(0), labels };
}

/** A split found and listed: CIFAR-10's loaded, a folder's images listed with how to decode them. */
type FoundSplit = { set: ImageSet } | { listing: FolderListing; decode: { size: [number, number]; channels: ImageChannels; resize?: ResizeMode; resizeSource?: string } };

async function findSplit(options: DataOptions, inputSize: [number, number] | undefined, channels: ImageChannels): Promise<FoundSplit> {
  const name = options.data;
  if (!name) throw usageError('no data set given', "pass --data cifar10 or --data <folder>");
  const limit = options.limit !== undefined ? { limit: options.limit, ...(options.sampleSeed !== undefined ? { sampleSeed: options.sampleSeed } : {}) } : {};
  const split = (options.split ?? 'test') as SplitName;
  if (!SPLIT_NAMES.includes(split)) throw usageError(`--split must be 'test', 'train' or 'val', got '${split}'`, "pass --split test (a folder's test/, else val/), train or val");
  if (isCifar10(name)) {
    if (split === 'val') throw usageError('CIFAR-10 has a train and a test split, no val', 'pass --split test (its held-out images) or --split train');
    if (options.resize) throw resizeOnCifar();
    return { set: await withDownloadBar((cifar) => loadCifar10(split, { ...cifar, ...(options.dataDir ? { dataDir: options.dataDir } : {}), ...limit })) };
  }
  const flag = options.flag ?? '--data';
  await requireDataFolder(name, flag, options.unlabelled ? `pass ${flag} cifar10 or a folder of images` : `pass ${flag} cifar10 or a folder with one subfolder of images per class`);
  requireImageSize(inputSize, name);
  const listing = await listFolderSplit(name, split, options, { ...limit, ...(options.unlabelled ? { unlabelled: true } : {}) });
  const resize = chosenResize(options.resize, options.recordedResize);
  return { listing: noteFormats(listing), decode: { size: inputSize, channels, ...(resize ? { resize } : {}), ...resizeSourceOf(options.resize, options.recordedResize) } };
}


async function listFolderSplit(name: string, split: SplitName, options: DataOptions, listOptions: Pick<LoadImageFolderOptions, 'limit' | 'sampleSeed' | 'unlabelled'>): Promise<FolderListing> {
  const layout = await folderLayout(name);
  if (layout.kind === 'splits') {
    // Images without labels (calibration) come from any split: a folder of val/ alone (ImageNet's
    // validation images) serves when the train/ wished for is not there.
    const present = split === 'test' ? layout.splits.some((s) => s === 'test' || s === 'val') : layout.splits.includes(split);
    const taken = !present && options.unlabelled && options.splitOptional ? layout.splits[0]! : split;
    if (taken !== split) log(`note: ${name} has no ${split}/ folder: reading the images of its ${taken}/`);
    return listSplitFolder(name, taken, listOptions, layout, { otherSplitsHint: options.splitFlag ?? false });
  }
  if (options.split !== undefined && !options.splitOptional) {
    throw usageError(`--split ${options.split} needs a folder with train/ and test/ subfolders (or val/); '${name}' holds class folders`,
      'drop --split, or point --data at the folder that holds the splits');
  }
  return listImageFolder(name, listOptions);
}

/** A listing decoded whole, with a bar when it takes more than a second. */
async function decodeWithBar(listing: FolderListing, decode: DecodeOptions): Promise<ImageSet> {
  const bar = lazyProgress(`read ${listing.name}`, 'img');
  try {
    return await decodeListing(listing, { ...decode, onProgress: bar.update });
  } finally {
    bar.stop();
  }
}

/**
 * A listing labelled as the model numbers its outputs (labelledForModel: its note or its refusal come
 * now, before minutes of decoding).
 */
function labelledListing(listing: FolderListing, classes: ModelClasses | undefined): FolderListing {
  if (!classes) return listing;
  const labels = Uint16Array.from(listing.files, (f) => f.label);
  const labelled = labelledForModel(labelsOnly(listing.name, listing.classes, labels), classes);
  if (labelled.labels === labels) return listing;
  return { ...listing, classes: labelled.classes, files: listing.files.map((f, i) => ({ file: f.file, label: labelled.labels[i]! })) };
}

/** Says which files a folder load passed over for their format (passedOverNote). */
function noteFormats<T extends { passedOver?: readonly string[]; outsideClasses?: readonly string[] }>(set: T, ...more: T[]): T {
  for (const note of [passedOverNote([set, ...more]), outsideClassesNote([set, ...more])]) if (note) log(`note: ${note}`);
  return set;
}

/** The class names a model records (slimkit.classes): data is matched to its outputs by them. */
export interface ModelClasses {
  /** How messages name the model. */
  file: string;
  names: readonly string[];
  /**
   * The command trains the model on the data (slim train, a distillation student): data of other
   * classes teaches it those — noted, and the written model records them — instead of being refused.
   */
  learns?: boolean;
  /**
   * The command trains the model's weights on the data (train, QAT, prune --finetune): data of only some
   * of its classes teaches the others' outputs never to win — a warning with this way out, not a note (a
   * trial's 3-class folder took a 10-class model from 66.85 % to 40.30 % on CIFAR-10, silently).
   */
  trains?: (count: { data: number; model: number }) => string;
}

/** What `graph` records as its class names, if anything. */
export function recordedClasses(graph: Graph, file: string, o: { learns?: boolean; trains?: ModelClasses['trains'] } = {}): ModelClasses | undefined {
  const names = readPreprocessing(graph, file).classNames;
  // Labels are 16-bit: images matched to a class past that would wrap onto another.
  if (names && names.length > MAX_CLASSES) {
    throw inputError({ file, where: "metadata 'slimkit.classes'", problem: `names ${names.length} classes; slimkit labels at most ${MAX_CLASSES}`, fix: "remove the 'slimkit.classes' entry (images are then matched to outputs by position)" });
  }
  return names ? { file, names, ...(o.learns ? { learns: true } : {}), ...(o.trains ? { trains: o.trains } : {}) } : undefined;
}

/**
 * `set` labelled as the model numbers its outputs — the one place every command that scores or trains a
 * model on labelled data matches the two: unchanged when the model records no class names (positions
 * decide) or the data's list; relabelled by name, with one note, when the names are the same in another
 * order; refused, naming the classes that differ, otherwise (taken as the data's, with a note, when
 * `model.learns`). `quiet`: no note (a second set of the same data); `note`: where the note goes (stderr).
 */
export function labelledForModel<T extends ImageSet>(set: T, model: ModelClasses | undefined, o: { quiet?: boolean; note?: (line: string) => void } = {}): T {
  if (!model) return set;
  const note = o.quiet ? () => undefined : (o.note ?? log);
  const match = matchClasses(set, model.names);
  if (match.kind === 'same') return match.set;
  const data = dataName(set);
  if (match.kind === 'reordered') {
    note(`note: ${data} has the classes ${model.file} records (slimkit.classes) in another order: its images are matched to the model's outputs by class name`);
    return match.set;
  }
  if (match.kind === 'subset') {
    if (model.trains) {
      const missing = model.names.filter((n) => !set.classes.includes(n));
      note(`warning: ${data} has ${set.classes.length} of the ${model.names.length} classes ${model.file} records (slimkit.classes): training on it teaches the outputs of the other ${missing.length} (${listNames(missing)}) never to win, so the model forgets them — ${model.trains({ data: set.classes.length, model: model.names.length })}`);
    } else {
      note(`note: ${data} has ${set.classes.length} of the ${model.names.length} classes ${model.file} records (slimkit.classes): its images are matched to the model's outputs by class name`);
    }
    return match.set;
  }
  const differ = [
    match.onlyData.length ? `only the data has ${listNames(match.onlyData)}` : '',
    match.onlyModel.length ? `only the model has ${listNames(match.onlyModel)}` : '',
  ].filter(Boolean).join('; ') || `the model lists ${model.names.length} names for ${set.classes.length} classes`;
  if (model.learns) {
    // Only where its outputs can take the data's classes: with another count the command refuses it next
    // (a trial read this note, then the refusal to train without --new-head).
    if (model.names.length === set.classes.length) note(`note: ${model.file} records other classes than ${data} (${differ}): it is trained on the data's, in their order, and the model written records them`);
    return set;
  }
  // The pair does not fit, as a class count that differs: usage (exit 2) in every command.
  throw mismatchError({
    file: data,
    problem: `its classes are not the ones ${model.file} records (slimkit.classes): ${differ}`,
    fix: `${data !== 'cifar10' ? `rename the class folders to the model's names (${listNames(model.names)}), or ` : ''}use data of the classes the model was trained on`,
  });
}

/**
 * The note for models that record no class names scored on an image folder: their outputs are taken
 * as its class folders in order, which is right only if they were trained with that order (torchvision
 * ImageFolder's is the same). Undefined for CIFAR-10 (its class order is the convention) and when every
 * model records names.
 */
export function positionalScoringNote(files: readonly string[], set: Pick<ImageSet, 'name' | 'classes'>): string | undefined {
  if (files.length === 0 || isCifar10(set.name.split('/')[0]!)) return undefined;
  const order = set.classes.slice(0, 6).map((c, i) => `${i}=${c}`).join(', ') + (set.classes.length > 6 ? ', …' : '');
  return `note: ${files.join(', ')} record${files.length === 1 ? 's' : ''} no class names (slimkit.classes): output i is scored as the i-th class folder of ${dataName(set)} (${order}), as torchvision's ImageFolder numbers them`;
}

/** An image folder by its path, CIFAR-10 as 'cifar10' (its sets are named 'cifar10/test', …). */
/** The data set as the user named it: 'cifar10', or the folder. */
export function dataName(set: Pick<ImageSet, 'name'>): string {
  return isCifar10(set.name.split('/')[0]!) ? 'cifar10' : set.name;
}

/**
 * CIFAR-10's images are 32×32 RGB and are not resized. A fixed input of another size fails where the
 * images meet the model; a free one would run at 32×32 while MACs and latency are counted at `size`: refused.
 * A grayscale model is refused up front too (image folders are read as grayscale for it).
 */
export function checkCifarImageSize(graph: Graph, file: string, data: string | undefined, size: [number, number] | undefined): void {
  if (data && isCifar10(data) && modelChannels(graph) === 1) {
    throw new SlimError({ file, problem: "the model takes grayscale (1-channel) images but CIFAR-10's are RGB", fix: 'use an image folder: its images are read as grayscale for this model' }, 'usage');
  }
  if (data && isCifar10(data) && size && hasFreeImageSize(graph) && (size[0] !== 32 || size[1] !== 32)) {
    throw new SlimError({ file, problem: `the model is used at ${size.join('×')} (--image-size or its slimkit.input_size) but CIFAR-10's images are 32×32`,
      fix: 'use an image folder (its images are resized to the model), or pass --image-size 32' }, 'usage');
  }
}

/**
 * The images must be the model's input size: CIFAR-10 is not resized, and a model trained or measured
 * on images of another size would be written with an input it never saw. Image folders are resized.
 * `use`: what the images are for — evaluation feeds a model raw or channels-last pixels as it takes
 * them; calibration and training feed normalized float32 N×C×H×W batches only.
 */
export function checkImageSize(graph: Graph, set: Pick<ImageSet, 'name' | 'imageShape'>, file: string, flag: string, use: 'train' | 'eval' = 'train'): void {
  const input = dataInputs(graph)[0];
  const raw = rawPixelInput(graph);
  // A model that preprocesses raw pixels itself is measured as it is and compressed as the network it
  // wraps: the commands that feed batches cut that off first (forBatches), so this refuses only a
  // caller that forgot to.
  if (use === 'train' && raw) {
    throw usageError(`${file} takes ${raw.text} images (it does its own preprocessing), but ${flag} feeds it normalized float32 N×C×H×W images`,
      'quantize, prune or train the network without its preprocessing (export it with a float32 N×C×H×W input); slim eval and bench take this model as it is');
  }
  const size = modelInputSize(graph);
  const [c, h, w] = set.imageShape;
  const channels = input?.shape?.[imageAxes(graph).c];
  if ((size && (size[0] !== h || size[1] !== w)) || (typeof channels === 'number' && channels !== c)) {
    throw usageError(
      `${file} takes ${channels ?? '?'}×${size?.join('×') ?? '?'} images but ${flag} ${set.name} has ${c}×${h}×${w} images`,
      `pass ${flag} <image folder> (images are resized to the model's input), or use a model for ${h}×${w} input`,
    );
  }
}

/** A free-H×W model's MACs and latency depend on the image size: measuring them needs one. */
export function requireMeasurableSize(graph: Graph, file: string, size: [number, number] | undefined): void {
  if (!size && hasFreeImageSize(graph)) {
    throw usageError(`${file}: the input's height and width are free and the model records no slimkit.input_size, so its MACs and latency depend on the image size`,
      'pass --image-size H,W (the size the model is used at)');
  }
}

/** Folder images are resized to the model's input: a model with a free H×W and no recorded size cannot say to what. */
function requireImageSize(size: [number, number] | undefined, folder: string): asserts size is [number, number] {
  if (!size) {
    throw usageError(`the model's input height and width are free and it records no slimkit.input_size, so the images of '${folder}' have no size to be resized to`,
      'pass --image-size H,W (the size the model is used at)');
  }
}

/** A note when --image-size differs from the size a free-size model records (it wins, and should say so). */
export function replacedSizeNote(graph: Graph, file: string, flag: [number, number] | undefined): string | undefined {
  const recorded = readPreprocessing(graph, file).inputShape;
  if (!flag || !recorded || !hasFreeImageSize(graph) || (flag[0] === recorded[1] && flag[1] === recorded[2])) return undefined;
  return `note: ${file} records ${recorded[1]}×${recorded[2]} as its input size; --image-size ${flag.join('×')} replaces it here`;
}

/**
 * The size a command runs a model at: --image-size, else the model's own, else — for a free-size model
 * that records none and meets CIFAR-10 — CIFAR-10's 32×32, said in a note (`records`: and recorded in
 * the model the command writes). `given`: the size the flag or CIFAR-10 set, if either did.
 */
export function chosenImageSize(
  graph: Graph, file: string, flag: [number, number] | undefined, datasets: readonly (string | undefined)[], o: { quiet?: boolean; records?: boolean } = {},
): { size: [number, number] | undefined; given: [number, number] | undefined } {
  const say = (text: string | undefined): void => void (text && !o.quiet ? log(text) : undefined);
  const cifar = !flag && !modelInputSize(graph) && hasFreeImageSize(graph) && datasets.some((d) => d !== undefined && isCifar10(d));
  const given: [number, number] | undefined = cifar ? [32, 32] : flag;
  const size = imageSizeFor(graph, file, given, { cifar });
  for (const data of datasets) checkCifarImageSize(graph, file, data, size);
  // Said once the size stands: a refusal is then the only line.
  say(cifar ? `note: ${file} does not state its input size; using CIFAR-10's 32×32${o.records ? ', recorded in the model written (slimkit.input_size)' : ''}` : replacedSizeNote(graph, file, flag));
  return { size, given };
}

/**
 * The model with --image-size applied: for a free height and width the size goes into its
 * slimkit.input_size metadata, so every image the command loads — and the model it writes — uses it.
 * Without the flag, a free-size model that records no size and meets CIFAR-10 takes its 32×32
 * (chosenImageSize), recorded the same way: what eval, bench and deploy read next.
 */
export function withImageSizeFlag(graph: Graph, file: string, flag: [number, number] | undefined, datasets: readonly (string | undefined)[], o: { quiet?: boolean; writes?: boolean } = {}): Graph {
  const { given } = chosenImageSize(graph, file, flag, datasets, { ...(o.quiet ? { quiet: true } : {}), records: o.writes !== false });
  if (!given || !hasFreeImageSize(graph)) return graph;
  const channels = dataInputs(graph)[0]!.shape![imageAxes(graph).c] as number;
  return { ...graph, metadata: { ...graph.metadata, [METADATA_KEYS.inputSize]: JSON.stringify([channels, given[0], given[1]]) } };
}

/** --data-dir only says where CIFAR-10's files are: refuse it beside an image folder instead of ignoring it. */
export function checkDataDir(options: DataOptions): void {
  if (options.dataDir !== undefined && options.data !== undefined && !isCifar10(options.data)) {
    throw usageError(`--data-dir names the folder of CIFAR-10's files, but --data is the image folder '${options.data}'`,
      'drop --data-dir (the images come from the --data folder)');
  }
}

/** --resize without --data: nothing is read for it to resize. */
export function resizeWithoutData(): SlimError {
  return usageError('--resize says how the images of --data are brought to the model, and no --data is given', 'add --data <image folder>, or drop --resize');
}

/** --resize given where only CIFAR-10 is read: its images are not resized (`fix`: where a folder would go). */
export function resizeOnCifar(fix = 'drop --resize, or pass --data <image folder>'): SlimError {
  return usageError("--resize applies to image folders: CIFAR-10's images are fed at 32×32 as they are", fix);
}

/**
 * Training and test images: CIFAR-10's two splits, or the train/ and test/ (else val/) subfolders of a
 * folder, resized to the model's input. Test labels use train/'s class numbering, so a class
 * folder missing from test/ cannot shift the others; a class only test/ has is an error. `testLimit`
 * keeps N test images: CIFAR-10's first N (its test set comes shuffled), an image folder's N taken
 * across the classes (it lists them class by class, so its first N would score only the first classes).
 * `trainLimit` likewise keeps an image folder's N training images across the classes (--train-limit;
 * CIFAR-10's training set comes shuffled, and training takes its first N). `classes`: the names the
 * model records, which both sets are labelled by (labelledForModel).
 */
export async function loadTrainTest(
  data: string,
  options: TrainTestOptions & { classes?: ModelClasses | undefined; quiet?: boolean },
): Promise<{ train: ImageSet; test: ImageSet }> {
  const sets = await loadTrainTestSets(data, options);
  return {
    train: labelledForModel(sets.train, options.classes, { quiet: options.quiet ?? false }),
    test: labelledForModel(sets.test, options.classes, { quiet: true }),
  };
}

interface TrainTestOptions {
  dataDir?: string;
  size?: [number, number] | undefined;
  channels?: ImageChannels;
  trainLimit?: number | undefined;
  testLimit?: number | undefined;
  /** What the model records (slimkit.resize): a folder's images are brought to the model so. */
  recordedResize?: ModelResize | undefined;
  /** --resize: replaces the record (noted when they differ); refused for CIFAR-10, which is not resized. */
  resize?: ResizeMode | undefined;
}

async function loadTrainTestSets(data: string, options: TrainTestOptions): Promise<{ train: ImageSet; test: ImageSet }> {
  const testLimit = options.testLimit !== undefined ? { limit: options.testLimit } : {};
  if (isCifar10(data)) {
    if (options.resize) throw resizeOnCifar();
    const dir = options.dataDir ? { dataDir: options.dataDir } : {};
    return withDownloadBar(async (cifar) => {
      const train = await loadCifar10('train', { ...cifar, ...dir });
      return { train, test: await loadCifar10('test', { ...cifar, ...dir, ...testLimit }) };
    });
  }
  await requireDataFolder(data, '--data', 'pass --data cifar10, or a folder with train/ and test/ subfolders of class folders');
  requireImageSize(options.size, data);
  const limits = { ...(options.trainLimit !== undefined ? { trainLimit: options.trainLimit } : {}), ...(options.testLimit !== undefined ? { testLimit: options.testLimit } : {}) };
  const bars = { train: lazyProgress(`read ${data} train`, 'img'), test: lazyProgress(`read ${data} test`, 'img') };
  const mode = chosenResize(options.resize, options.recordedResize);
  const resize = mode ? { resize: mode, ...resizeSourceOf(options.resize, options.recordedResize) } : {};
  const sets = await loadTrainTestFolders(data, { size: options.size, channels: options.channels ?? 3, ...resize, ...limits, onProgress: (split, done, total) => bars[split].update(done, total) }).finally(() => {
    bars.train.stop();
    bars.test.stop();
  });
  noteFormats<ImageFolderSet>(sets.train, sets.test);
  const classes = sets.train.classes.length;
  // Trained on one class, a classifier answers it for every image (a trial's scored 100 % and deployed).
  if (classes < 2) {
    throw inputError({
      file: `${data}/train`,
      problem: `has one class folder (${sets.train.classes[0] ?? ''}): a classifier needs two classes or more — trained on one, it gives that answer for every image and scores 100 % on its test images`,
      fix: `add a folder of images for each other class beside it (${data}/train/<class>/ and ${data}/test/<class>/)`,
    });
  }
  // A class the test split has no images of trains silently and shows "0 of 0" in every score.
  const tested = new Set(sets.test.labels);
  const untested = sets.train.classes.filter((_, c) => !tested.has(c));
  if (untested.length > 0 && options.testLimit === undefined) {
    log(`note: ${data}'s test images include none of ${untested.length > 1 ? 'classes' : 'class'} ${listNames(untested)}: ${untested.length > 1 ? 'they train' : 'it trains'}, but no accuracy is measured on ${untested.length > 1 ? 'them' : 'it'} — add test images of ${untested.length > 1 ? 'them' : 'it'}`);
  }
  if (options.trainLimit !== undefined && options.trainLimit < classes) {
    log(`note: --train-limit ${options.trainLimit} is fewer images than the ${classes} classes: ${classes - options.trainLimit} of them get none to train on`);
  }
  return sets;
}

/** A CIFAR-10 load with a download bar when the archive has to be fetched first (170 MB). */
async function withDownloadBar<T>(load: (options: Pick<LoadCifar10Options, 'onDownloadProgress'>) => Promise<T>): Promise<T> {
  let bar: Progress | undefined;
  const onDownloadProgress = ({ received, total }: DownloadProgress): void => {
    bar ??= progress('download cifar-10-binary.tar.gz', total !== undefined ? Math.ceil(total / 2 ** 20) : 0, 'MiB');
    bar.update(Math.floor(received / 2 ** 20));
  };
  try {
    return await load({ onDownloadProgress });
  } finally {
    bar?.stop();
  }
}

function metadataNumbers(graph: Graph, key: string): number[] | undefined {
  const raw = graph.metadata[key];
  if (!raw) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    return Array.isArray(value) && value.every((v) => typeof v === 'number') ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `graph` recording --mean/--std as its statistics (slimkit.mean, slimkit.std): every step that feeds
 * it images then uses them, and the model it writes records them. Unchanged without the flags.
 */
export function withGivenNormalization(graph: Graph, options: Pick<DataOptions, 'mean' | 'std'>): Graph {
  // A model that takes raw pixels normalizes them itself (data/model-batches.ts reads the flags for it).
  if ((!options.mean && !options.std) || rawPixelInput(graph)) return graph;
  const given = normalizationFor(graph, { ...(options.mean ? { mean: options.mean } : {}), ...(options.std ? { std: options.std } : {}) });
  return { ...graph, metadata: { ...graph.metadata, ...normalizationMetadata(given) } };
}

/**
 * What a model that records no mean and std is normalized with, as a note naming `file`; undefined
 * for one that records them or normalizes raw pixels itself.
 */
export function defaultNormalizationNote(graph: Graph, file: string): string | undefined {
  const used = defaultStatistics(graph);
  return used ? defaultsNote([file], used) : undefined;
}

/** The statistics a model that records none is fed, in words; undefined when it records them or normalizes raw pixels itself. */
function defaultStatistics(graph: Graph): string | undefined {
  if (rawPixelInput(graph)?.dtype === 'uint8' || metadataNumbers(graph, 'slimkit.mean') || metadataNumbers(graph, 'slimkit.std')) return undefined;
  const fallback = defaultNormalization(graph);
  return modelChannels(graph) === 1 ? 'mean 0.5, std 0.5 (grayscale)' : `CIFAR-10's (mean ${fallback.mean.join(',')}, std ${fallback.std.join(',')})`;
}

/**
 * A zoo model trained on an image folder without --mean/--std records CIFAR-10's statistics (grayscale:
 * 0.5): said once before training, with the folder's own to pass instead (a trial saw them only in slim info).
 */
export function zooStatisticsNote(model: string, train: ImageSet): string {
  const own = pixelStatistics(train);
  const numbers = (values: number[]): string => values.map((v) => v.toFixed(3)).join(',');
  const used = train.imageShape[0] === 1 ? 'mean 0.5, std 0.5' : "CIFAR-10's mean and std";
  const said = `note: ${model} normalizes its images with ${used} (recorded in the model written)`;
  // A channel of one value has no spread to divide by (--std takes numbers > 0).
  return own.std.some((v) => v < 0.001) ? said : `${said}; to use ${train.name}'s own, pass --mean ${numbers(own.mean)} --std ${numbers(own.std)}`;
}

/** The note for models that record no mean/std and are fed `used`. */
function defaultsNote(files: readonly string[], used: string): string {
  const one = files.length === 1;
  return `note: ${files.join(', ')} record${one ? 's' : ''} no mean/std (slimkit.mean, slimkit.std): ${one ? 'its' : 'their'} images are normalized with ${used} — if ${one ? 'it was' : 'they were'} trained with others, pass --mean and --std (in a recipe: model.mean and model.std; torchvision's ImageNet models: 0.485,0.456,0.406 and 0.229,0.224,0.225)`;
}

/** Notes already printed: a command that scores several models (or a run's stages) says each once. */
const notedDefaults = new Set<string>();

/**
 * Holds back the notes of models that record no mean/std, to say them as one line per default
 * (slim bench of several plain torch.onnx exports printed the same sentence once per model):
 * `hold` before normalizationFor meets the model (the model's own note then counts as said), `lines`
 * after the last. Models given --mean/--std are left to normalizationFor.
 */
export function heldDefaultNotes(options: Pick<DataOptions, 'mean' | 'std'>): { hold(graph: Graph, file: string): void; lines(): string[] } {
  const byDefault = new Map<string, string[]>();
  return {
    hold(graph, file) {
      const used = options.mean || options.std ? undefined : defaultStatistics(graph);
      if (!used || notedDefaults.has(defaultsNote([file], used))) return;
      notedDefaults.add(defaultsNote([file], used));
      byDefault.set(used, [...(byDefault.get(used) ?? []), file]);
    },
    lines: () => [...byDefault].map(([used, files]) => defaultsNote(files, used)),
  };
}

/**
 * Preprocessing: flags first, then what the model's metadata records, then the CIFAR-10 statistics
 * (GRAYSCALE_NORMALIZATION for a model that takes one channel) — said in a note once per `file` named,
 * since a plain torch.onnx export records none and an ImageNet-pretrained model fed CIFAR-10's
 * scores worse silently.
 * --mean and --std come as a pair: half of one would mix the user's numbers with another source's.
 */
export function normalizationFor(graph: Graph, options: DataOptions = {}, file?: string): Normalization {
  const channels = modelChannels(graph);
  const kind = channels === 1 ? 'grayscale (1-channel)' : 'RGB (3-channel)';
  const count = (n: number): string => `${n} number${n === 1 ? '' : 's'}`;
  // A model fed raw uint8 pixels uses neither flags nor metadata statistics.
  const checked = rawPixelInput(graph)?.dtype === 'uint8' ? [] : ([['--mean', 'slimkit.mean', options.mean], ['--std', 'slimkit.std', options.std]] as const);
  for (const [flag, key, given] of checked) {
    const recorded = metadataNumbers(graph, key);
    // One number serves every channel (torchvision's Normalize broadcasts it); three cannot serve one.
    const fits = (n: number): boolean => n === channels || n === 1;
    if (given && !fits(given.length)) throw usageError(`${flag} has ${count(given.length)} but the model takes ${kind} images`, `pass ${channels === 1 ? 'one number' : 'three numbers, r,g,b'}`);
    if (!given && recorded && !fits(recorded.length)) {
      throw usageError(`the model's ${key} metadata has ${count(recorded.length)} but the model takes ${kind} images`, `pass ${flag} with ${channels === 1 ? 'one number' : 'three numbers'}, or fix the metadata`);
    }
  }
  if (checked.length) checkGivenPair(options.mean, options.std);
  if (checked.length && !options.mean) checkNormalizationPair(graph, file);
  const fallback = defaultNormalization(graph);
  const note = file ? (options.mean ? overriddenNormalizationNote(graph, options, file) : defaultNormalizationNote(graph, file)) : undefined;
  if (note && !notedDefaults.has(note)) log(note);
  if (note) notedDefaults.add(note);
  return perChannel({
    scale: fallback.scale,
    mean: options.mean ?? metadataNumbers(graph, 'slimkit.mean') ?? fallback.mean,
    std: options.std ?? metadataNumbers(graph, 'slimkit.std') ?? fallback.std,
  }, channels);
}

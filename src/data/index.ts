// The data layer's public surface: loaders, transforms, batching and subsets.
export * from './types.js';
export { loadCifar10, resolveCifar10Dir, verifyCifar10Files, type Cifar10Split, type LoadCifar10Options } from './cifar10.js';
export { CIFAR10_CLASSES, CIFAR10_IMAGE_SHAPE, CIFAR10_SHA256, CIFAR10_URL } from './cifar10-files.js';
export { downloadCifar10, extractCifar10Archive, type DownloadCifar10Options, type DownloadProgress } from './download.js';
export {
  coverBox,
  loadImageFile,
  decodeListing,
  listImageFolder,
  loadImageFolder,
  type DecodeOptions,
  type FolderListing,
  type ImageFolderSet,
  type ImageSizeOptions,
  type LoadedImage,
  type LoadImageFolderOptions,
  type ResizeMode,
  type SkippedImage,
} from './image-folder.js';
export { CHUNK_BYTES, folderSource, openImageFolder, sourceOfSet, type FolderSourceOptions, type ImageSource } from './stream.js';
export { batchCount, batches, epochOrder, type AugmentOptions, type BatchOptions } from './batches.js';
export {
  cropWithPadding,
  flipHorizontal,
  normalizeInto,
  randomCropWithPadding,
  randomHorizontalFlip,
  randomPlacement,
  type CropPlacement,
} from './transforms.js';
export { stratifiedSubset, subset, take } from './subsets.js';
export { slimCacheDir } from './cache.js';
export { hashFile } from './checksum.js';

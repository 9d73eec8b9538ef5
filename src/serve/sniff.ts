/**
 * Content sniffing for uploaded images: the first bytes decide, never the Content-Type header (clients
 * send `application/x-www-form-urlencoded` from curl -d, or lie). Only raster formats the bundled sharp
 * decodes are accepted; SVG is refused on purpose (it is XML that can reference other files).
 */

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

export const ACCEPTED_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'];

const ascii = (bytes: Uint8Array, from: number, to: number): string =>
  String.fromCharCode(...bytes.subarray(from, Math.min(to, bytes.length)));

const startsWith = (bytes: Uint8Array, prefix: readonly number[]): boolean =>
  bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);

/** The format in words, as messages name a file: 'a PNG image', 'a WebP image'. */
export function imageKindText(format: ImageFormat): string {
  return `a ${format === 'webp' ? 'WebP' : format.toUpperCase()} image`;
}

/** The image format the magic bytes announce, or undefined. */
export function sniffImage(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return 'webp';
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return 'gif';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  // ISO-BMFF: [size]['ftyp'][major brand][minor version][compatible brands…]; AVIF only (the prebuilt sharp
  // has no HEVC decoder). Some encoders write the major brand 'mif1' and list 'avif' among the compatible ones.
  if (ascii(bytes, 4, 8) === 'ftyp' && ftypBrands(bytes).some((b) => b === 'avif' || b === 'avis')) return 'avif';
  return undefined;
}

/** The major and compatible brands of an ISO-BMFF 'ftyp' box that starts the file. */
function ftypBrands(bytes: Uint8Array): string[] {
  const size = bytes.length >= 4 ? ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0 : 0;
  const end = Math.min(bytes.length, Math.max(16, Math.min(size, 256)));
  const brands = [ascii(bytes, 8, 12)];
  for (let at = 16; at + 4 <= end; at += 4) brands.push(ascii(bytes, at, at + 4));
  return brands;
}

/** A short guess at what a non-image body is, so a 415 can say what was received. */
export function describeContent(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'an empty body';
  const head = ascii(bytes, 0, 64).trimStart();
  if (head.startsWith('--')) return 'a multipart form (send the raw image bytes instead, e.g. curl --data-binary @photo.jpg)';
  if (/^<svg|^<\?xml/i.test(head)) return 'SVG/XML (vector images are not accepted; convert to PNG)';
  if (/^<(!doctype|html)/i.test(head)) return 'HTML';
  if (head.startsWith('{') || head.startsWith('[')) return 'JSON (send the raw image bytes, not JSON)';
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04])) return 'a ZIP archive';
  if (ascii(bytes, 0, 5) === '%PDF-') return 'a PDF document';
  if (startsWith(bytes, [0x42, 0x4d])) return 'a BMP image (not supported; convert to PNG)';
  if (ascii(bytes, 4, 8) === 'ftyp') return `an ISO media file ('${ascii(bytes, 8, 12)}'; only AVIF is accepted)`;
  const printable = bytes.subarray(0, 64).every((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127));
  return printable ? 'text' : 'unrecognised binary data';
}

/**
 * The server decides an upload's format by its first bytes (sniffImage), not by its Content-Type.
 * Oracle: files sharp writes, and what sharp then decodes.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { describeContent, sniffImage } from '../src/serve/sniff.js';

const pixels = Buffer.alloc(8 * 8 * 3, 90);
const image = (): ReturnType<typeof sharp> => sharp(pixels, { raw: { width: 8, height: 8, channels: 3 } });

/** The 'ftyp' box's brands: the major one, then the compatible ones. */
function brands(bytes: Buffer): string[] {
  const size = bytes.readUInt32BE(0);
  const out = [bytes.toString('latin1', 8, 12)];
  for (let at = 16; at + 4 <= size; at += 4) out.push(bytes.toString('latin1', at, at + 4));
  return out;
}

describe('sniffImage', () => {
  it('names every format the server accepts, written by sharp', async () => {
    expect(sniffImage(await image().jpeg().toBuffer())).toBe('jpeg');
    expect(sniffImage(await image().png().toBuffer())).toBe('png');
    expect(sniffImage(await image().webp().toBuffer())).toBe('webp');
    expect(sniffImage(await image().gif().toBuffer())).toBe('gif');
    expect(sniffImage(await image().tiff().toBuffer())).toBe('tiff');
    expect(sniffImage(await image().avif().toBuffer())).toBe('avif');
  });

  it("takes an AVIF whose major brand is 'mif1', with 'avif' among its compatible brands (it was a 415)", async () => {
    const avif = await image().avif().toBuffer();
    expect(brands(avif)).toContain('avif');
    const mif1 = Buffer.from(avif);
    mif1.write('mif1', 8, 'latin1');
    // The major brand alone no longer says AVIF; a compatible one still does, and sharp decodes it.
    expect(brands(mif1)[0]).toBe('mif1');
    expect(brands(mif1).slice(1)).toContain('avif');
    expect(sniffImage(mif1)).toBe('avif');
    expect((await sharp(mif1).raw().toBuffer({ resolveWithObject: true })).info.width).toBe(8);
    // An HEIF file of another codec is still refused, named for what it is.
    const heic = Buffer.from(mif1);
    for (let at = 8; at + 4 <= heic.readUInt32BE(0); at += 4) if (at !== 12) heic.write(at === 8 ? 'heic' : 'mif1', at, 'latin1');
    expect(sniffImage(heic)).toBeUndefined();
    expect(describeContent(heic)).toBe("an ISO media file ('heic'; only AVIF is accepted)");
  });
});

/**
 * Image resizing for the web page, where sharp is not available: an antialiased triangle ("linear")
 * filter, separable, aligned as libvips aligns it — the filter family sharp's `kernel: 'linear'` uses — computed
 * only for the rows and columns the centre crop keeps. Same geometry as slimkit (coverBox), so a
 * same-size image passes through unchanged and resized ones differ from sharp by rounding only.
 */

export interface Box {
  resizedW: number;
  resizedH: number;
  left: number;
  top: number;
}

interface Taps {
  first: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  width: number;
}

/** Filter taps for output positions [from, from + n) of a src → dst resize. */
function taps(src: number, dst: number, from: number, n: number): Taps {
  const scale = src / dst;
  const radius = Math.max(scale, 1);
  const width = Math.ceil(radius) * 2 + 2;
  const first = new Int32Array(n);
  const count = new Int32Array(n);
  const weights = new Float64Array(n * width);
  for (let k = 0; k < n; k++) {
    // Shrinking samples at pixel centres; enlarging maps output x to source x·scale (libvips' affine
    // upsizing, which sharp uses), else the page's pixels sit half a source pixel off the server's.
    const centre = scale < 1 ? (from + k) * scale : (from + k + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - radius));
    const hi = Math.min(src, Math.ceil(centre + radius));
    let sum = 0;
    let c = 0;
    for (let j = lo; j < hi && c < width; j++, c++) {
      const w = Math.max(0, 1 - Math.abs(j + 0.5 - centre) / radius);
      weights[k * width + c] = w;
      sum += w;
    }
    if (sum === 0) {
      // Degenerate (a 1-pixel source): take the nearest pixel.
      weights[k * width] = 1;
      sum = 1;
      c = Math.max(c, 1);
    }
    for (let i = 0; i < c; i++) weights[k * width + i]! /= sum;
    first[k] = lo;
    count[k] = c;
  }
  return { first, count, weights, width };
}

/**
 * RGBA pixels (srcW × srcH, row-major, as canvas getImageData gives them) → planar RGB bytes of
 * outW × outH: resized to box.resizedW × box.resizedH, then cropped at (box.left, box.top).
 */
export function resizeCropToPlanar(rgba: ArrayLike<number>, srcW: number, srcH: number, box: Box, outW: number, outH: number): Uint8Array {
  const h = taps(srcW, box.resizedW, box.left, outW);
  const v = taps(srcH, box.resizedH, box.top, outH);
  // Horizontal pass over every source row, kept columns only: srcH × outW × 3 floats.
  const mid = new Float64Array(srcH * outW * 3);
  for (let y = 0; y < srcH; y++) {
    const row = y * srcW * 4;
    for (let x = 0; x < outW; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      const base = x * h.width;
      for (let t = 0; t < h.count[x]!; t++) {
        const w = h.weights[base + t]!;
        const p = row + (h.first[x]! + t) * 4;
        r += rgba[p]! * w;
        g += rgba[p + 1]! * w;
        b += rgba[p + 2]! * w;
      }
      const o = (y * outW + x) * 3;
      mid[o] = r;
      mid[o + 1] = g;
      mid[o + 2] = b;
    }
  }
  const plane = outW * outH;
  const out = new Uint8Array(3 * plane);
  for (let y = 0; y < outH; y++) {
    const base = y * v.width;
    for (let x = 0; x < outW; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let t = 0; t < v.count[y]!; t++) s += mid[((v.first[y]! + t) * outW + x) * 3 + c]! * v.weights[base + t]!;
        out[c * plane + y * outW + x] = Math.min(255, Math.max(0, Math.round(s)));
      }
    }
  }
  return out;
}

// Quantization-aware training kernels (registered in kernels.cc's table; the TS side lowers to them in
// src/engine/qat-lowering.ts).
#pragma once

#include "kernels.h"

namespace slim {

/**
 * fake_quant_lsq: QuantizeLinear → DequantizeLinear with a learnable scale (LSQ, Esser et al. 2020).
 *   in [x, scale, zeroPoint]; ints [perChannel, axis, qmin, qmax]; floats [gradFactor]
 * y = (clamp(round(x / s) + z, qmin, qmax) − z) · s, round half to even (ATen's fused kernels, which
 * multiply by 1/s: ONNX Runtime divides, so a value exactly between two levels may land one level
 * apart). Gradients: straight-through for x inside the range (0 outside); LSQ's for s,
 * ∂y/∂s = q − z − x/s inside the range and qmin − z / qmax − z when clipped, times gradFactor. The zero
 * point stays fixed (ONNX stores it as an integer). The scale used is max(|s|, 1e-8): an update that
 * overshoots zero still leaves a valid scale, and export (src/compress/qat/export.ts) maps it the same way.
 */
void fakeQuantLearnable(const Instr& i, RunState& s);

}  // namespace slim

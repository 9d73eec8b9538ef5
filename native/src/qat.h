// Quantization-aware training kernels (registered in kernels.cc's table; the TS side lowers to them in
// src/engine/qat-lowering.ts).
#pragma once

#include "kernels.h"

namespace slim {

/**
 * fake_quant_lsq: QuantizeLinear → DequantizeLinear with a learnable scale (LSQ, Esser et al. 2020).
 *   in [x, scale, zeroPoint]; ints [perChannel, axis, qmin, qmax]; floats [gradFactor]
 * y = (clamp(round(x / s) + z, qmin, qmax) − z) · s with round half to even and x / s (ONNX Runtime's
 * arithmetic). Gradients: straight-through for x inside the range (0 outside); LSQ's for s,
 * ∂y/∂s = q − z − x/s inside the range and qmin − z / qmax − z when clipped, times gradFactor. The zero
 * point stays fixed (ONNX stores it as an integer). A scale is floored at 1e-8 so it stays positive.
 */
void fakeQuantLearnable(const Instr& i, RunState& s);

}  // namespace slim

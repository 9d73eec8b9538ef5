#include "qat.h"

#include <stdexcept>

namespace slim {
namespace {

const at::Tensor& input(const Instr& i, RunState& s, size_t k) {
  if (k >= i.in.size() || i.in[k] < 0) throw std::runtime_error("node '" + i.node + "': input " + std::to_string(k) + " is missing");
  const at::Tensor& t = s.slots[i.in[k]];
  if (!t.defined()) throw std::runtime_error("node '" + i.node + "': input " + std::to_string(k) + " has not been computed");
  return t;
}

/** Smallest scale a learnable scale may take (also applied when the trained model is exported). */
constexpr double kMinScale = 1e-8;

}  // namespace

void fakeQuantLearnable(const Instr& i, RunState& s) {
  if (i.ints.size() != 4 || i.floats.size() != 1) throw std::runtime_error("node '" + i.node + "': fake_quant_lsq takes ints [perChannel, axis, qmin, qmax] and floats [gradFactor]");
  // Autocast may hand over bf16/fp16; quantization arithmetic runs in float32 as in ONNX Runtime.
  at::Tensor x = input(i, s, 0).to(at::kFloat);
  // |s|, floored: an optimizer step past zero leaves a valid scale (export applies the same map).
  at::Tensor scale = input(i, s, 1).to(at::kFloat).reshape({-1}).abs().clamp_min(kMinScale);
  at::Tensor zero = input(i, s, 2).to(at::kFloat).reshape({-1}).detach();
  bool perChannel = i.ints[0] != 0;
  int64_t qmin = i.ints[2], qmax = i.ints[3];
  double g = i.floats[0];
  // ATen's fused LSQ kernels: straight-through gradient for x, LSQ's (times g) for the scale; the zero
  // point is detached, so it gets none.
  if (perChannel) {
    int64_t axis = i.ints[1] < 0 ? i.ints[1] + x.dim() : i.ints[1];
    if (axis < 0 || axis >= x.dim() || scale.numel() != x.size(axis) || zero.numel() != scale.numel()) {
      throw std::runtime_error("node '" + i.node + "': " + std::to_string(scale.numel()) + " scales for axis " + std::to_string(i.ints[1]) + " of a tensor of shape " + c10::str(x.sizes()));
    }
    s.slots[i.out.at(0)] = at::_fake_quantize_learnable_per_channel_affine(x, scale, zero, axis, qmin, qmax, g);
    return;
  }
  if (scale.numel() != 1 || zero.numel() != 1) throw std::runtime_error("node '" + i.node + "': a per-tensor scale and zero point hold one value each");
  s.slots[i.out.at(0)] = at::_fake_quantize_learnable_per_tensor_affine(x, scale, zero, qmin, qmax, g);
}

}  // namespace slim

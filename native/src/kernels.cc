// Kernel implementations: each maps one lowered ONNX op onto ATen calls that autograd differentiates.
// Parameter layouts (ints / floats) are written next to each kernel and mirrored by the op modules'
// `lower` functions in src/ops/*.ts.
#include "kernels.h"
#include "dist.h"
#include "qat.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace slim {
namespace {

const at::Tensor& in(const Instr& i, RunState& s, size_t k) {
  if (k >= i.in.size() || i.in[k] < 0) throw std::runtime_error("node '" + i.node + "': input " + std::to_string(k) + " is missing");
  const at::Tensor& t = s.slots[i.in[k]];
  if (!t.defined()) throw std::runtime_error("node '" + i.node + "': input " + std::to_string(k) + " has not been computed");
  return t;
}

/** An optional input: undefined when omitted. */
at::Tensor opt(const Instr& i, RunState& s, size_t k) {
  if (k >= i.in.size() || i.in[k] < 0) return at::Tensor();
  return s.slots[i.in[k]];
}

void out(const Instr& i, RunState& s, size_t k, at::Tensor t) {
  if (k < i.out.size() && i.out[k] >= 0) s.slots[i.out[k]] = std::move(t);
}

std::vector<int64_t> take(const Instr& i, size_t& pos, size_t n) {
  if (pos + n > i.ints.size()) throw std::runtime_error("node '" + i.node + "': the plan passes too few integer parameters");
  std::vector<int64_t> v(i.ints.begin() + pos, i.ints.begin() + pos + n);
  pos += n;
  return v;
}

int64_t takeOne(const Instr& i, size_t& pos) { return take(i, pos, 1)[0]; }

double f(const Instr& i, size_t k) {
  if (k >= i.floats.size()) throw std::runtime_error("node '" + i.node + "': the plan passes too few float parameters");
  return i.floats[k];
}

int64_t normAxis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

/** Pads `x` explicitly with `value`; constant_pad_nd lists pads from the last dim backwards. */
at::Tensor padExplicit(const at::Tensor& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& end, double value) {
  std::vector<int64_t> pad;
  for (size_t d = begin.size(); d-- > 0;) {
    pad.push_back(begin[d]);
    pad.push_back(end[d]);
  }
  return at::constant_pad_nd(x, pad, value);
}

/**
 * ONNX pads are [begin..., end...]; ATen pools and convs take one symmetric pad per dim. Returns the
 * symmetric pads, padding `x` explicitly (with `value`) first when begin != end.
 */
std::vector<int64_t> symmetricPads(at::Tensor& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& end, double value) {
  if (begin == end) return begin;
  x = padExplicit(x, begin, end, value);
  return std::vector<int64_t>(begin.size(), 0);
}

/**
 * A pool over explicitly padded input treats the end padding as input, so with ceil_mode ATen keeps a
 * last window that starts inside it; ONNX (and ATen for its own pads) drops that window. Cuts `y` back
 * to ONNX's length (windowOutputDim in src/ops/shared/window.ts). `spatial` are the unpadded input sizes.
 */
at::Tensor onnxPoolLength(at::Tensor y, const std::vector<int64_t>& spatial, const std::vector<int64_t>& k, const std::vector<int64_t>& st,
                          const std::vector<int64_t>& pb, const std::vector<int64_t>& pe, const std::vector<int64_t>& dil, bool ceil) {
  if (!ceil) return y;
  for (size_t d = 0; d < spatial.size(); d++) {
    int64_t span = dil[d] * (k[d] - 1) + 1;
    int64_t room = spatial[d] + pb[d] + pe[d] - span;
    int64_t n = (room + st[d] - 1) / st[d] + 1;
    if ((n - 1) * st[d] >= spatial[d] + pb[d]) n--;
    int64_t axis = static_cast<int64_t>(d) + 2;
    if (y.size(axis) > n) y = y.narrow(axis, 0, n);
  }
  return y;
}

std::vector<int64_t> spatialSizes(const at::Tensor& x) { return std::vector<int64_t>(x.sizes().begin() + 2, x.sizes().end()); }

// conv: in [x, w, b?]; ints [nsp, strides(nsp), padsBegin(nsp), padsEnd(nsp), dilations(nsp), groups]
void conv(const Instr& i, RunState& s) {
  size_t p = 0;
  int64_t nsp = takeOne(i, p);
  auto strides = take(i, p, nsp), pb = take(i, p, nsp), pe = take(i, p, nsp), dil = take(i, p, nsp);
  int64_t groups = takeOne(i, p);
  at::Tensor x = in(i, s, 0);
  auto pads = symmetricPads(x, pb, pe, 0.0);
  // The convNd entry points, not at::convolution: CPU autocast (bf16 on AMX) only casts these.
  at::Tensor w = in(i, s, 1);
  auto b = opt(i, s, 2);
  at::Tensor y;
  if (nsp == 1) y = at::conv1d(x, w, b, strides, pads, dil, groups);
  else if (nsp == 2) y = at::conv2d(x, w, b, strides, pads, dil, groups);
  else if (nsp == 3) y = at::conv3d(x, w, b, strides, pads, dil, groups);
  else y = at::convolution(x, w, b, strides, pads, dil, false, std::vector<int64_t>(nsp, 0), groups);
  out(i, s, 0, y);
}

// batch_norm: in [x, scale, bias, runningMean, runningVar]; floats [eps, momentum (PyTorch sense: 1 - ONNX momentum)]
// In training the running statistics update in place (unbiased variance, as PyTorch does).
void batchNorm(const Instr& i, RunState& s) {
  out(i, s, 0,
      at::batch_norm(in(i, s, 0), opt(i, s, 1), opt(i, s, 2), in(i, s, 3), in(i, s, 4), s.training, f(i, 1), f(i, 0),
                     /*cudnn_enabled=*/true));
}

void relu(const Instr& i, RunState& s) { out(i, s, 0, at::relu(in(i, s, 0))); }
void sigmoid(const Instr& i, RunState& s) { out(i, s, 0, at::sigmoid(in(i, s, 0))); }
void hardSwish(const Instr& i, RunState& s) { out(i, s, 0, at::hardswish(in(i, s, 0))); }
void identity(const Instr& i, RunState& s) { out(i, s, 0, in(i, s, 0)); }
void erfKernel(const Instr& i, RunState& s) { out(i, s, 0, at::erf(in(i, s, 0))); }
void tanhKernel(const Instr& i, RunState& s) { out(i, s, 0, at::tanh(in(i, s, 0))); }
// ONNX's softplus has no threshold; PyTorch's switches to x above 20, where they differ by < 3e-9.
void softplus(const Instr& i, RunState& s) { out(i, s, 0, at::softplus(in(i, s, 0), 1, 20)); }
void expKernel(const Instr& i, RunState& s) { out(i, s, 0, at::exp(in(i, s, 0))); }
void logKernel(const Instr& i, RunState& s) { out(i, s, 0, at::log(in(i, s, 0))); }
void sqrtKernel(const Instr& i, RunState& s) { out(i, s, 0, at::sqrt(in(i, s, 0))); }
void reciprocal(const Instr& i, RunState& s) { out(i, s, 0, at::reciprocal(in(i, s, 0))); }
void negKernel(const Instr& i, RunState& s) { out(i, s, 0, at::neg(in(i, s, 0))); }
void absKernel(const Instr& i, RunState& s) { out(i, s, 0, at::abs(in(i, s, 0))); }
void softsign(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  out(i, s, 0, x / (1 + at::abs(x)));
}
// elu: floats [alpha]; selu: floats [alpha, gamma] (ATen's elu with scale gamma); celu: floats [alpha]
void elu(const Instr& i, RunState& s) { out(i, s, 0, at::elu(in(i, s, 0), f(i, 0))); }
void selu(const Instr& i, RunState& s) { out(i, s, 0, at::elu(in(i, s, 0), f(i, 0), f(i, 1), 1)); }
void celu(const Instr& i, RunState& s) { out(i, s, 0, at::celu(in(i, s, 0), f(i, 0))); }
// prelu: in [x, slope]; ints [perChannel]. The slope broadcasts to x (ONNX's [C, 1, 1] is not
// at::prelu's [C]); perChannel (opsets < 7): a 1-D slope of C values along axis 1.
void prelu(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  at::Tensor slope = in(i, s, 1);
  if (i.ints.at(0) != 0) {
    std::vector<int64_t> shape(x.dim() - 1, 1);
    shape[0] = slope.numel();
    slope = slope.reshape(shape);
  }
  out(i, s, 0, at::where(x >= 0, x, x * slope));
}
// pow: in [x, y]; an integer exponent is taken in x's type
void powKernel(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  out(i, s, 0, at::pow(x, in(i, s, 1).to(x.scalar_type())));
}

// variadic: in [x...]; ints [fn]: 0 max, 1 min, 2 sum, 3 mean (VARIADIC_FUNCTIONS, src/ops/shared/variadic.ts)
void variadic(const Instr& i, RunState& s) {
  int64_t fn = i.ints.at(0);
  at::Tensor y = in(i, s, 0);
  for (size_t k = 1; k < i.in.size(); k++) {
    const at::Tensor& x = in(i, s, k);
    y = fn == 0 ? at::maximum(y, x) : fn == 1 ? at::minimum(y, x) : y + x;
  }
  out(i, s, 0, fn == 3 ? y / static_cast<double>(i.in.size()) : y);
}

// expand: ints target shape (1 keeps an input dim); numpy broadcasting in both directions, as ONNX's Expand
void expand(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  int64_t n = static_cast<int64_t>(i.ints.size());
  int64_t rank = std::max<int64_t>(x.dim(), n);
  std::vector<int64_t> shape(rank);
  for (int64_t d = 0; d < rank; d++) {
    int64_t ax = d - (rank - x.dim()), at = d - (rank - n);
    int64_t a = ax >= 0 ? x.size(ax) : 1;
    int64_t b = at >= 0 ? i.ints[at] : 1;
    if (a != 1 && b != 1 && a != b) throw std::runtime_error("node '" + i.node + "': cannot expand a dim of " + std::to_string(a) + " to " + std::to_string(b));
    shape[d] = a == 1 ? b : a;
  }
  out(i, s, 0, x.expand(shape));
}

// instance_norm: in [x, scale, bias]; floats [eps]. Batch statistics always (no running statistics).
void instanceNorm(const Instr& i, RunState& s) {
  out(i, s, 0,
      at::instance_norm(in(i, s, 0), in(i, s, 1), in(i, s, 2), at::Tensor(), at::Tensor(), /*use_input_stats=*/true, 0.0,
                        f(i, 0), /*cudnn_enabled=*/true));
}

// layer_norm: in [x, scale, bias?]; out [y, mean?, invStdDev?]; ints [axis]; floats [eps]
void layerNorm(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  at::Tensor scale = in(i, s, 1), bias = opt(i, s, 2);
  int64_t axis = normAxis(i.ints.at(0), x.dim());
  std::vector<int64_t> normalized(x.sizes().begin() + axis, x.sizes().end());
  bool stats = (i.out.size() > 1 && i.out[1] >= 0) || (i.out.size() > 2 && i.out[2] >= 0);
  bool affine = scale.sizes().vec() == normalized && (!bias.defined() || bias.sizes().vec() == normalized);
  if (!stats && affine) {
    out(i, s, 0, at::layer_norm(x, normalized, scale, bias, f(i, 0)));  // PyTorch's nn.LayerNorm path
    return;
  }
  // Statistics requested, or Scale / B that broadcast: the spec's formula, step by step.
  std::vector<int64_t> dims;
  for (int64_t d = axis; d < x.dim(); d++) dims.push_back(d);
  at::Tensor mean = x.mean(dims, true);
  at::Tensor centered = x - mean;
  at::Tensor invStd = at::rsqrt(centered.pow(2).mean(dims, true) + f(i, 0));
  at::Tensor y = centered * invStd * scale;
  out(i, s, 0, bias.defined() ? y + bias : y);
  out(i, s, 1, mean);
  out(i, s, 2, invStd);
}

// clip: floats [min, max] (±inf where ONNX omits a bound)
void clip(const Instr& i, RunState& s) {
  double lo = f(i, 0), hi = f(i, 1);
  c10::optional<at::Scalar> mn, mx;
  if (lo > -std::numeric_limits<double>::infinity()) mn = lo;
  if (hi < std::numeric_limits<double>::infinity()) mx = hi;
  // A Clip with neither bound is the identity (at::clamp refuses it).
  out(i, s, 0, mn || mx ? at::clamp(in(i, s, 0), mn, mx) : in(i, s, 0));
}

// leaky_relu: floats [alpha]
void leakyRelu(const Instr& i, RunState& s) { out(i, s, 0, at::leaky_relu(in(i, s, 0), f(i, 0))); }

// hard_sigmoid: floats [alpha, beta]: max(0, min(1, alpha * x + beta)); PyTorch's own op when it matches
void hardSigmoid(const Instr& i, RunState& s) {
  double alpha = f(i, 0), beta = f(i, 1);
  const at::Tensor& x = in(i, s, 0);
  if (std::abs(alpha - 1.0 / 6.0) < 1e-7 && beta == 0.5) out(i, s, 0, at::hardsigmoid(x));
  else out(i, s, 0, at::clamp(x * alpha + beta, 0.0, 1.0));
}

void add(const Instr& i, RunState& s) { out(i, s, 0, at::add(in(i, s, 0), in(i, s, 1))); }
void sub(const Instr& i, RunState& s) { out(i, s, 0, at::sub(in(i, s, 0), in(i, s, 1))); }
void mul(const Instr& i, RunState& s) { out(i, s, 0, at::mul(in(i, s, 0), in(i, s, 1))); }
void div(const Instr& i, RunState& s) { out(i, s, 0, at::div(in(i, s, 0), in(i, s, 1))); }

// max_pool: ints [nsp, kernel(nsp), strides(nsp), padsBegin(nsp), padsEnd(nsp), dilations(nsp), ceil]
void maxPool(const Instr& i, RunState& s) {
  size_t p = 0;
  int64_t nsp = takeOne(i, p);
  auto k = take(i, p, nsp), st = take(i, p, nsp), pb = take(i, p, nsp), pe = take(i, p, nsp), dil = take(i, p, nsp);
  bool ceil = takeOne(i, p) != 0;
  at::Tensor x = in(i, s, 0);
  auto spatial = spatialSizes(x);
  // ATen limits pads to half the kernel; larger (or asymmetric) pads are applied explicitly with -inf.
  bool small = true;
  for (int64_t d = 0; d < nsp; d++) small = small && pb[d] * 2 <= k[d];
  std::vector<int64_t> pads(nsp, 0);
  if (small) pads = symmetricPads(x, pb, pe, -std::numeric_limits<double>::infinity());
  else x = padExplicit(x, pb, pe, -std::numeric_limits<double>::infinity());
  at::Tensor y;
  if (nsp == 1) y = at::max_pool1d(x, k, st, pads, dil, ceil);
  else if (nsp == 2) y = at::max_pool2d(x, k, st, pads, dil, ceil);
  else y = at::max_pool3d(x, k, st, pads, dil, ceil);
  out(i, s, 0, onnxPoolLength(y, spatial, k, st, pb, pe, dil, ceil));
}

// avg_pool: ints [nsp, kernel(nsp), strides(nsp), padsBegin(nsp), padsEnd(nsp), ceil, countIncludePad]
void avgPool(const Instr& i, RunState& s) {
  size_t p = 0;
  int64_t nsp = takeOne(i, p);
  auto k = take(i, p, nsp), st = take(i, p, nsp), pb = take(i, p, nsp), pe = take(i, p, nsp);
  bool ceil = takeOne(i, p) != 0, includePad = takeOne(i, p) != 0;
  at::Tensor x = in(i, s, 0);
  auto spatial = spatialSizes(x);
  auto cut = [&](const at::Tensor& y) { return onnxPoolLength(y, spatial, k, st, pb, pe, std::vector<int64_t>(nsp, 1), ceil); };
  auto pool = [&](const at::Tensor& t, const std::vector<int64_t>& pads, bool include) {
    if (nsp == 1) return at::avg_pool1d(t, k, st, pads, ceil, include);
    if (nsp == 2) return at::avg_pool2d(t, k, st, pads, ceil, include);
    return at::avg_pool3d(t, k, st, pads, ceil, include);
  };
  // ATen takes symmetric pads of at most half the kernel; others are applied explicitly.
  bool small = true;
  for (int64_t d = 0; d < nsp; d++) small = small && pb[d] * 2 <= k[d] && pe[d] * 2 <= k[d];
  if (small && (pb == pe || includePad)) {
    auto pads = symmetricPads(x, pb, pe, 0.0);
    out(i, s, 0, cut(pool(x, pads, includePad)));
    return;
  }
  auto zero = std::vector<int64_t>(nsp, 0);
  if (includePad) {
    out(i, s, 0, cut(pool(padExplicit(x, pb, pe, 0.0), zero, true)));
    return;
  }
  // Pads that must not be counted: sum / count, both pooled over the explicitly padded input.
  std::vector<int64_t> plane(x.sizes().begin(), x.sizes().end());
  plane[0] = plane[1] = 1;
  at::Tensor ones = at::ones(plane, x.options());
  at::Tensor sum = pool(padExplicit(x, pb, pe, 0.0), zero, true);
  at::Tensor count = pool(padExplicit(ones, pb, pe, 0.0), zero, true);
  out(i, s, 0, cut(sum / count));
}

void globalAvgPool(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < x.dim(); d++) dims.push_back(d);
  out(i, s, 0, x.mean(dims, /*keepdim=*/true));
}

void globalMaxPool(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < x.dim(); d++) dims.push_back(d);
  out(i, s, 0, at::amax(x, dims, /*keepdim=*/true));
}

// flatten: ints [axis]
void flatten(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  int64_t axis = normAxis(i.ints.at(0), x.dim());
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; d++) outer *= x.size(d);
  out(i, s, 0, x.reshape({outer, -1}));
}

// reshape: ints [allowzero, shape...] with ONNX semantics (0 copies the input dim unless allowzero, -1 is inferred)
void reshape(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  bool allowZero = i.ints.at(0) != 0;
  std::vector<int64_t> shape(i.ints.begin() + 1, i.ints.end());
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] == 0 && !allowZero) {
      if (static_cast<int64_t>(d) >= x.dim()) throw std::runtime_error("node '" + i.node + "': reshape copies dim " + std::to_string(d) + " the input lacks");
      shape[d] = x.size(d);
    }
  }
  out(i, s, 0, x.reshape(shape));
}

// transpose: ints perm
void transpose(const Instr& i, RunState& s) { out(i, s, 0, in(i, s, 0).permute(i.ints)); }

// squeeze: ints axes (empty: every size-1 dim)
void squeeze(const Instr& i, RunState& s) {
  at::Tensor x = in(i, s, 0);
  if (i.ints.empty()) {
    out(i, s, 0, x.squeeze());
    return;
  }
  std::vector<int64_t> axes;
  for (int64_t a : i.ints) axes.push_back(normAxis(a, x.dim()));
  std::sort(axes.rbegin(), axes.rend());
  for (int64_t a : axes) x = x.squeeze(a);
  out(i, s, 0, x);
}

// unsqueeze: ints axes (in output coordinates)
void unsqueeze(const Instr& i, RunState& s) {
  at::Tensor x = in(i, s, 0);
  int64_t rank = x.dim() + static_cast<int64_t>(i.ints.size());
  std::vector<int64_t> axes;
  for (int64_t a : i.ints) axes.push_back(normAxis(a, rank));
  std::sort(axes.begin(), axes.end());
  for (int64_t a : axes) x = x.unsqueeze(a);
  out(i, s, 0, x);
}

// gemm: in [A, B, C?]; ints [transA, transB]; floats [alpha, beta]
void gemm(const Instr& i, RunState& s) {
  bool ta = i.ints.at(0) != 0, tb = i.ints.at(1) != 0;
  double alpha = f(i, 0), beta = f(i, 1);
  at::Tensor a = in(i, s, 0), b = in(i, s, 1), c = opt(i, s, 2);
  if (!ta && tb && alpha == 1.0 && (beta == 1.0 || !c.defined())) {
    out(i, s, 0, at::linear(a, b, c));  // PyTorch's nn.Linear path
    return;
  }
  at::Tensor y = at::matmul(ta ? a.t() : a, tb ? b.t() : b);
  if (alpha != 1.0) y = y * alpha;
  if (c.defined()) y = beta == 1.0 ? y + c : y + c * beta;
  out(i, s, 0, y);
}

void matmul(const Instr& i, RunState& s) { out(i, s, 0, at::matmul(in(i, s, 0), in(i, s, 1))); }

// concat: ints [axis]
void concat(const Instr& i, RunState& s) {
  std::vector<at::Tensor> parts;
  for (size_t k = 0; k < i.in.size(); k++) parts.push_back(in(i, s, k));
  out(i, s, 0, at::cat(parts, normAxis(i.ints.at(0), parts.at(0).dim())));
}

// split: ints [axis, sizes...]
void split(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  std::vector<int64_t> sizes(i.ints.begin() + 1, i.ints.end());
  auto parts = at::split_with_sizes(x, sizes, normAxis(i.ints.at(0), x.dim()));
  for (size_t k = 0; k < parts.size(); k++) out(i, s, k, parts[k]);
}

// reduce: ints [fn, keepdims, axes...] (axes non-empty: the lowering lists every axis for "all"); fn
// indexes REDUCE_FUNCTIONS of src/ops/shared/reduce.ts: mean, sum, max, min, l1, l2, sum_square, prod,
// log_sum_exp, log_sum.
void reduce(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  int64_t fn = i.ints.at(0);
  bool keep = i.ints.at(1) != 0;
  std::vector<int64_t> axes;
  for (size_t k = 2; k < i.ints.size(); k++) axes.push_back(normAxis(i.ints[k], x.dim()));
  at::Tensor y;
  switch (fn) {
    case 0: y = at::mean(x, axes, keep); break;
    case 1: y = at::sum(x, axes, keep); break;
    case 2: y = at::amax(x, axes, keep); break;
    case 3: y = at::amin(x, axes, keep); break;
    case 4: y = at::sum(at::abs(x), axes, keep); break;
    case 5: y = at::norm(x, 2, axes, keep); break;  // its gradient at 0 is 0, not sqrt's NaN
    case 6: y = at::sum(x * x, axes, keep); break;
    case 7: {
      // at::prod takes one axis at a time: the highest first, so the lower ones keep their index.
      std::vector<int64_t> sorted = axes;
      std::sort(sorted.rbegin(), sorted.rend());
      y = x;
      for (int64_t a : sorted) y = at::prod(y, a, keep);
      break;
    }
    case 8: y = at::logsumexp(x, axes, keep); break;
    case 9: y = at::log(at::sum(x, axes, keep)); break;
    default: throw std::runtime_error("node '" + i.node + "': unknown reduction " + std::to_string(fn));
  }
  out(i, s, 0, y);
}

// slice: ints [(axis, start, end, step)...] as ONNX gives them (ends past the axis clamped by the lowering
// to int32); ATen's slice takes positive steps only, so a negative step slices the flipped axis.
void slice(const Instr& i, RunState& s) {
  at::Tensor x = in(i, s, 0);
  if (i.ints.size() % 4 != 0) throw std::runtime_error("node '" + i.node + "': slice takes (axis, start, end, step) quadruples");
  for (size_t k = 0; k < i.ints.size(); k += 4) {
    int64_t axis = normAxis(i.ints[k], x.dim()), start = i.ints[k + 1], end = i.ints[k + 2], step = i.ints[k + 3];
    int64_t dim = x.size(axis);
    if (step > 0 || dim == 0) {
      x = step > 0 ? x.slice(axis, start, end, step) : x;
      continue;
    }
    // ONNX clamps a negative step's start to [0, dim - 1] and its end to [-1, dim - 1].
    int64_t first = std::clamp<int64_t>(start < 0 ? start + dim : start, 0, dim - 1);
    int64_t stop = std::clamp<int64_t>(end < 0 ? end + dim : end, -1, dim - 1);
    int64_t count = first > stop ? (first - stop - 1) / -step + 1 : 0;
    int64_t from = dim - 1 - first;  // the first index, counted on the flipped axis
    x = count > 0 ? x.flip(axis).slice(axis, from, from + (count - 1) * -step + 1, -step) : x.slice(axis, 0, 0);
  }
  out(i, s, 0, x);
}

// softmax: ints [axis, legacy, log]; legacy (opset < 13) coerces to 2-D at axis first
void softmax(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  int64_t axis = normAxis(i.ints.at(0), x.dim());
  bool legacy = i.ints.at(1) != 0, log = i.ints.at(2) != 0;
  auto fn = [&](const at::Tensor& t, int64_t dim) { return log ? at::log_softmax(t, dim) : at::softmax(t, dim); };
  if (!legacy) {
    out(i, s, 0, fn(x, axis));
    return;
  }
  int64_t outer = 1;
  for (int64_t d = 0; d < axis; d++) outer *= x.size(d);
  out(i, s, 0, fn(x.reshape({outer, -1}), 1).reshape(x.sizes()));
}

// dropout: floats [ratio]; identity outside training
void dropout(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  out(i, s, 0, s.training && f(i, 0) > 0 ? at::dropout(x, f(i, 0), true) : x);
}

// fake_quant (QuantizeLinear → DequantizeLinear as one op, straight-through gradients):
//   per tensor:  in [x];                 ints [0, axis, qmin, qmax, zeroPoint]; floats [scale]
//   per channel: in [x, scale, zp(int)]; ints [1, axis, qmin, qmax, 0]
void fakeQuant(const Instr& i, RunState& s) {
  const at::Tensor& x = in(i, s, 0);
  bool perChannel = i.ints.at(0) != 0;
  int64_t qmin = i.ints.at(2), qmax = i.ints.at(3);
  if (!perChannel) {
    out(i, s, 0, at::fake_quantize_per_tensor_affine(x, f(i, 0), i.ints.at(4), qmin, qmax));
    return;
  }
  int64_t axis = normAxis(i.ints.at(1), x.dim());
  // ATen wants float scales and int32 zero points; ONNX stores the zero point as int8/uint8.
  out(i, s, 0, at::fake_quantize_per_channel_affine(x, in(i, s, 1).to(at::kFloat), in(i, s, 2).to(at::kInt), axis, qmin, qmax));
}

// pad: ints [mode (0 constant, 1 reflect, 2 edge, 3 wrap), pads in ATen order: last dim's (begin, end) first];
// floats [value]. Negative pads crop.
void pad(const Instr& i, RunState& s) {
  static const char* modes[] = {"constant", "reflect", "replicate", "circular"};
  int64_t mode = i.ints.at(0);
  if (mode < 0 || mode > 3) throw std::runtime_error("node '" + i.node + "': unknown pad mode " + std::to_string(mode));
  std::vector<int64_t> pads(i.ints.begin() + 1, i.ints.end());
  const at::Tensor& x = in(i, s, 0);
  if (mode == 0) out(i, s, 0, at::constant_pad_nd(x, pads, f(i, 0)));
  else out(i, s, 0, at::pad(x, pads, modes[mode]));
}

// dequantize (a DequantizeLinear on stored integers): in [q, scale, zp?]; ints [axis]
void dequantize(const Instr& i, RunState& s) {
  const at::Tensor& q = in(i, s, 0);
  at::Tensor scale = in(i, s, 1), zp = opt(i, s, 2);
  at::Tensor x = q.to(at::kFloat);
  if (scale.numel() > 1) {
    // Per-axis: shape scale and zero point to broadcast along `axis`.
    std::vector<int64_t> shape(q.dim(), 1);
    shape[normAxis(i.ints.at(0), q.dim())] = scale.numel();
    scale = scale.reshape(shape);
    if (zp.defined()) zp = zp.reshape(shape);
  }
  if (zp.defined()) x = x - zp.to(at::kFloat);
  out(i, s, 0, x * scale);
}

// resample (Resize): ints [axes, then per axis: axis, outLen, taps, source index × outLen·taps];
// floats: per axis in turn, the weights × outLen·taps. Each axis is a weighted gather (src/ops/shared/resample.ts
// computes ONNX's indices and weights), which autograd differentiates as index_select and a sum.
void resample(const Instr& i, RunState& s) {
  size_t p = 0, w = 0;
  at::Tensor x = in(i, s, 0);
  int64_t axes = takeOne(i, p);
  for (int64_t a = 0; a < axes; a++) {
    int64_t axis = normAxis(takeOne(i, p), x.dim()), len = takeOne(i, p), taps = takeOne(i, p);
    std::vector<int64_t> idx = take(i, p, static_cast<size_t>(len * taps));
    if (w + static_cast<size_t>(len * taps) > i.floats.size()) throw std::runtime_error("node '" + i.node + "': the plan passes too few resample weights");
    at::Tensor index = at::tensor(idx, at::TensorOptions().dtype(at::kLong)).to(x.device());
    at::Tensor gathered = x.index_select(axis, index);
    if (taps > 1) {
      std::vector<double> wv(i.floats.begin() + static_cast<std::ptrdiff_t>(w), i.floats.begin() + static_cast<std::ptrdiff_t>(w + len * taps));
      std::vector<int64_t> split(x.sizes().begin(), x.sizes().end());
      split[axis] = len;
      split.insert(split.begin() + axis + 1, taps);
      std::vector<int64_t> wshape(split.size(), 1);
      wshape[axis] = len;
      wshape[axis + 1] = taps;
      at::Tensor weights = at::tensor(wv, at::TensorOptions().dtype(at::kDouble)).to(x.options()).reshape(wshape);
      gathered = (gathered.reshape(split) * weights).sum(axis + 1);
    }
    w += static_cast<size_t>(len * taps);
    x = gathered;
  }
  out(i, s, 0, x);
}

}  // namespace

const std::vector<KernelDef>& kernelTable() {
  static const std::vector<KernelDef> table = {
      {"conv", conv, "ints [nsp, strides, padsBegin, padsEnd, dilations, groups]"},
      {"batch_norm", batchNorm, "floats [eps, momentum]"},
      {"relu", relu, ""},
      {"sigmoid", sigmoid, ""},
      {"hard_swish", hardSwish, ""},
      {"hard_sigmoid", hardSigmoid, "floats [alpha, beta]"},
      {"leaky_relu", leakyRelu, "floats [alpha]"},
      {"clip", clip, "floats [min, max]"},
      {"identity", identity, ""},
      {"add", add, ""},
      {"sub", sub, ""},
      {"mul", mul, ""},
      {"div", div, ""},
      {"max_pool", maxPool, "ints [nsp, kernel, strides, padsBegin, padsEnd, dilations, ceil]"},
      {"avg_pool", avgPool, "ints [nsp, kernel, strides, padsBegin, padsEnd, ceil, countIncludePad]"},
      {"global_avg_pool", globalAvgPool, ""},
      {"global_max_pool", globalMaxPool, ""},
      {"flatten", flatten, "ints [axis]"},
      {"reshape", reshape, "ints [allowzero, shape...]"},
      {"transpose", transpose, "ints perm"},
      {"squeeze", squeeze, "ints axes"},
      {"unsqueeze", unsqueeze, "ints axes"},
      {"gemm", gemm, "ints [transA, transB]; floats [alpha, beta]"},
      {"matmul", matmul, ""},
      {"concat", concat, "ints [axis]"},
      {"split", split, "ints [axis, sizes...]"},
      {"softmax", softmax, "ints [axis, legacy, log]"},
      {"dropout", dropout, "floats [ratio]"},
      {"fake_quant", fakeQuant, "ints [perChannel, axis, qmin, qmax, zeroPoint]; floats [scale]"},
      {"dequantize", dequantize, "ints [axis]"},
      {"pad", pad, "ints [mode, pads (ATen order)...]; floats [value]"},
      {"sync_batch_norm", syncBatchNorm, "floats [eps, momentum] (batch_norm with statistics over all ranks; dist_bn.cc)"},
      {"fake_quant_lsq", fakeQuantLearnable, "ints [perChannel, axis, qmin, qmax]; floats [gradFactor]"},
      {"reduce", reduce, "ints [fn, keepdims, axes...]"},
      {"slice", slice, "ints [(axis, start, end, step)...]"},
      {"layer_norm", layerNorm, "ints [axis]; floats [eps]"},
      {"instance_norm", instanceNorm, "floats [eps]"},
      {"variadic", variadic, "ints [fn]"},
      {"expand", expand, "ints shape"},
      {"erf", erfKernel, ""},
      {"tanh", tanhKernel, ""},
      {"softplus", softplus, ""},
      {"exp", expKernel, ""},
      {"log", logKernel, ""},
      {"sqrt", sqrtKernel, ""},
      {"reciprocal", reciprocal, ""},
      {"neg", negKernel, ""},
      {"abs", absKernel, ""},
      {"softsign", softsign, ""},
      {"elu", elu, "floats [alpha]"},
      {"selu", selu, "floats [alpha, gamma]"},
      {"celu", celu, "floats [alpha]"},
      {"prelu", prelu, ""},
      {"pow", powKernel, ""},
      {"resample", resample, "ints [axes, (axis, outLen, taps, index...)...]; floats [weights...] (Resize)"},
  };
  return table;
}

}  // namespace slim

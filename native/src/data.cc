#include "data.h"

#include <stdexcept>

namespace slim {

DataSet::DataSet(const at::Tensor& pixels, const at::Tensor& labels, DataSetConfig config) : config_(std::move(config)) {
  if (pixels.dim() != 4) throw std::runtime_error("a data set needs N×C×H×W pixels");
  if (labels.dim() != 1 || labels.size(0) != pixels.size(0)) throw std::runtime_error("a data set needs one label per image");
  int64_t c = pixels.size(1);
  if (static_cast<int64_t>(config_.mean.size()) != c || static_cast<int64_t>(config_.std.size()) != c) {
    throw std::runtime_error("normalization needs one mean and one std per channel (" + std::to_string(c) + ")");
  }
  pixels_ = pixels.to(config_.device, at::kByte).contiguous();
  labels_ = labels.to(config_.device, at::kLong);
  std::vector<float> mul(c), add(c);
  for (int64_t i = 0; i < c; i++) {
    mul[i] = static_cast<float>(config_.scale / config_.std[i]);
    add[i] = static_cast<float>(-config_.mean[i] / config_.std[i]);
  }
  auto opts = at::TensorOptions().dtype(at::kFloat);
  mul_ = at::tensor(mul, opts).reshape({1, c, 1, 1}).to(config_.device);
  add_ = at::tensor(add, opts).reshape({1, c, 1, 1}).to(config_.device);
}

namespace {

/**
 * Each image's box (top, left, height, width) scaled to the image's own size, bilinear, then mirrored
 * where flip is set: what torch.nn.functional.interpolate(crop, size, mode='bilinear',
 * align_corners=False) gives for the crop (torchvision's RandomResizedCrop on a tensor, no antialias).
 * Separable, for the whole batch: rows are gathered and blended, then columns — the indices and
 * weights are per row or column, never per pixel. `x`: B×C×H×W uint8; returns float.
 */
at::Tensor resizedCrop(const at::Tensor& x, const at::Tensor& aug) {
  int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto doubles = at::TensorOptions().dtype(at::kDouble).device(x.device());
  at::Tensor box = aug.to(at::kDouble);
  at::Tensor flip = aug.select(1, 4).unsqueeze(1).to(at::kBool);
  // Source index pair and weight per output position along one axis ([B, out]).
  auto axis = [&](int64_t out, int64_t startCol, int64_t lengthCol, bool mirrored) {
    at::Tensor start = box.select(1, startCol).unsqueeze(1), length = box.select(1, lengthCol).unsqueeze(1);
    at::Tensor pos = at::arange(out, doubles).unsqueeze(0).expand({b, out});
    if (mirrored) pos = at::where(flip, (out - 1) - pos, pos);
    at::Tensor src = ((pos + 0.5) * (length / out) - 0.5).clamp_min(0);
    at::Tensor first = at::minimum(src.floor(), length - 1);
    at::Tensor second = at::minimum(first + 1, length - 1);
    at::Tensor weight = (src - first).clamp(0, 1).to(at::kFloat);
    return std::make_tuple((start + first).to(at::kLong), (start + second).to(at::kLong), weight);
  };
  auto [r0, r1, wy] = axis(h, 0, 2, false);
  auto [c0, c1, wx] = axis(w, 1, 3, true);
  // Rows: [B, C, H_out, W_in], gathered as bytes and blended in float.
  auto rows = [&](const at::Tensor& index) { return x.gather(2, index.view({b, 1, h, 1}).expand({b, c, h, w})).to(at::kFloat); };
  at::Tensor fy = wy.view({b, 1, h, 1});
  at::Tensor blended = rows(r0).mul_(1 - fy).add_(rows(r1).mul_(fy));
  // Then columns: [B, C, H_out, W_out].
  auto cols = [&](const at::Tensor& index) { return blended.gather(3, index.view({b, 1, 1, w}).expand({b, c, h, w})); };
  at::Tensor fx = wx.view({b, 1, 1, w});
  return cols(c0).mul_(1 - fx).add_(cols(c1).mul_(fx));
}

}  // namespace

void DataSet::checkAugmentation(const at::Tensor& aug) const {
  if (!aug.defined()) return;
  int64_t h = pixels_.size(2), w = pixels_.size(3);
  auto inRange = [](const at::Tensor& v, int64_t low, const at::Tensor& high) { return (v >= low).all().item<bool>() && (v <= high).all().item<bool>(); };
  at::Tensor a = aug.to(at::kCPU);
  bool ok;
  if (a.size(1) == 5) {
    at::Tensor top = a.select(1, 0), left = a.select(1, 1), height = a.select(1, 2), width = a.select(1, 3);
    ok = inRange(height, 1, at::full({}, h, a.options())) && inRange(width, 1, at::full({}, w, a.options())) &&
         inRange(top, 0, h - height) && inRange(left, 0, w - width) && inRange(a.select(1, 4), 0, at::full({}, 1, a.options()));
    if (!ok) throw std::runtime_error("a resized crop's box (top, left, height, width, flip) lies outside the " + std::to_string(h) + "×" + std::to_string(w) + " images");
  } else {
    at::Tensor bound = at::full({}, 2 * config_.pad, a.options());
    ok = inRange(a.select(1, 0), 0, bound) && inRange(a.select(1, 1), 0, bound) && inRange(a.select(1, 2), 0, at::full({}, 1, a.options()));
    if (!ok) throw std::runtime_error("a crop placement (top, left, flip) lies outside 0.." + std::to_string(2 * config_.pad) + " (the padding is " + std::to_string(config_.pad) + ")");
  }
}

std::pair<at::Tensor, at::Tensor> DataSet::batch(const at::Tensor& indices, const at::Tensor& aug) const {
  at::Tensor x = pixels_.index_select(0, indices);
  if (aug.defined() && aug.size(1) == 5) {
    x = resizedCrop(x, aug);
  } else if (aug.defined()) {
    // One gather does crop and flip for the whole batch: output pixel (b, y, x) reads padded pixel
    // (dy_b + y, dx_b + (flip_b ? W-1-x : x)).
    int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), p = config_.pad;
    int64_t pw = w + 2 * p;
    at::Tensor padded = at::constant_pad_nd(x, {p, p, p, p}, 0).reshape({b, c, -1});
    auto longs = at::TensorOptions().dtype(at::kLong).device(x.device());
    at::Tensor ys = at::arange(h, longs), xs = at::arange(w, longs);
    at::Tensor dy = aug.select(1, 0).unsqueeze(1), dx = aug.select(1, 1).unsqueeze(1);
    at::Tensor flip = aug.select(1, 2).unsqueeze(1).to(at::kBool);
    at::Tensor rows = dy + ys.unsqueeze(0);                                              // [B, H]
    at::Tensor cols = dx + at::where(flip, (w - 1) - xs.unsqueeze(0), xs.unsqueeze(0));  // [B, W]
    at::Tensor flat = (rows.unsqueeze(2) * pw + cols.unsqueeze(1)).reshape({b, 1, h * w}).expand({b, c, h * w});
    x = padded.gather(2, flat).reshape({b, c, h, w});
  }
  at::Tensor images = at::addcmul(add_, x.to(at::kFloat), mul_);
  return {images, labels_.index_select(0, indices)};
}

}  // namespace slim

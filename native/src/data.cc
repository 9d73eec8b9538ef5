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

std::pair<at::Tensor, at::Tensor> DataSet::batch(const at::Tensor& indices, const at::Tensor& aug) const {
  at::Tensor x = pixels_.index_select(0, indices);
  if (aug.defined()) {
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

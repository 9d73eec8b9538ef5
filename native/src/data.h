// An image set uploaded once to the training device as raw uint8 (CIFAR-10 train is 150 MB), with
// batch assembly, augmentation (random crop with zero padding, or a random resized crop; horizontal
// flip) and normalization done as tensor ops there, so no per-step pixel traffic crosses from JS.
#pragma once

#include "common.h"

namespace slim {

struct DataSetConfig {
  at::Device device = at::kCPU;
  double scale = 1.0 / 255;
  std::vector<double> mean;
  std::vector<double> std;
  /** Zero padding for random crops, in pixels. */
  int64_t pad = 4;
};

class DataSet {
 public:
  /** pixels: N×C×H×W uint8 (CPU), labels: N (CPU, any integer type). */
  DataSet(const at::Tensor& pixels, const at::Tensor& labels, DataSetConfig config);

  int64_t size() const { return pixels_.size(0); }
  const DataSetConfig& config() const { return config_; }

  /**
   * Normalized float images and int64 labels for `indices` (int64, on the device). `aug` is undefined
   * for none, B×3 int64 (crop offset y, crop offset x in [0, 2·pad], flip 0/1), or B×5 int64 for a
   * resized crop (top, left, height, width of the box, flip 0/1): the box scaled back to the image size.
   */
  std::pair<at::Tensor, at::Tensor> batch(const at::Tensor& indices, const at::Tensor& aug) const;

  /** Throws unless every placement or box of `aug` (as batch() takes it; on the host) lies inside the images. */
  void checkAugmentation(const at::Tensor& aug) const;

 private:
  at::Tensor pixels_;
  at::Tensor labels_;
  /** Per channel, [1, C, 1, 1]: x = pixel · mul + add  ==  (pixel · scale − mean) / std. */
  at::Tensor mul_;
  at::Tensor add_;
  DataSetConfig config_;
};

}  // namespace slim

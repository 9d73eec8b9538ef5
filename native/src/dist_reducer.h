// Gradient all-reduce for data parallelism, overlapped with backward the way PyTorch's DDP does it:
// parameters are packed (in reverse order, as their gradients tend to arrive) into buckets of about
// `bucketBytes`; a hook on each parameter copies its gradient into its bucket as autograd produces it,
// and a full bucket is all-reduced asynchronously while backward goes on. Buckets are launched strictly
// in index order, so every rank issues the same collectives in the same order. A final autograd
// callback launches what is left, waits, and writes the summed gradients back before backward returns,
// i.e. before the optimizer step reads them.
#pragma once

#include <memory>
#include <mutex>

#include "dist.h"
#include "plan.h"

namespace slim {
namespace dist {

struct ReducerOptions {
  /** Bucket size cap (DDP's default is 25 MiB). */
  int64_t bucketBytes = 25 << 20;
};

class GradReducer {
 public:
  GradReducer(Plan& plan, const ReducerOptions& options);

  /**
   * Arms the hooks for one step. Each rank's loss is a mean over its own shard; `scale` (its share of
   * the global batch, n_rank / B) turns the summed gradients into the gradient of the mean over all B.
   */
  void begin(double scale);
  /** Disarms the hooks; with `check`, throws if a backward pass ran but its reduction did not finish. */
  void end(bool check);
  bool owns(const at::Tensor& param) const {
    return !params_.empty() && params_[0].unsafeGetTensorImpl() == param.unsafeGetTensorImpl();
  }

  size_t bucketCount() const { return buckets_.size(); }
  /** Buckets whose all-reduce started while gradients were still being computed (the overlap), last step. */
  size_t launchedEarly() const { return launchedEarly_; }

 private:
  struct Bucket {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;
    at::Tensor flat;
    size_t pending = 0;
    std::unique_ptr<Pending> work;
  };

  void onGrad(size_t param, const at::Tensor& grad);
  void launchInOrder();
  void launch(Bucket& bucket);
  /** The final callback: launch the rest (zeros for parameters without gradients), wait, write back. */
  void finish();

  std::vector<at::Tensor> params_;
  /** Per parameter: bucket index and element offset in it. */
  std::vector<std::pair<size_t, int64_t>> slot_;
  std::vector<bool> seen_;
  size_t seenCount_ = 0;
  std::vector<Bucket> buckets_;
  size_t nextLaunch_ = 0;
  size_t launchedEarly_ = 0;
  bool active_ = false;
  bool callbackQueued_ = false;
  bool finished_ = false;
  double scale_ = 1;
  /** Hooks run on autograd's device threads on CUDA; one backward at a time, but be safe. */
  std::mutex mutex_;
};

/** The reducer attached to `plan` (created on first use), or null when none was attached. */
GradReducer* reducerFor(Plan* plan);
GradReducer& attachReducer(Plan* plan, const ReducerOptions& options);

}  // namespace dist
}  // namespace slim

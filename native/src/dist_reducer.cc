#include "dist_reducer.h"

#include <torch/csrc/autograd/engine.h>

#include <map>

namespace slim {
namespace dist {

GradReducer::GradReducer(Plan& plan, const ReducerOptions& options) {
  params_ = plan.params();
  slot_.resize(params_.size());
  seen_.assign(params_.size(), false);
  // Reverse order: backward produces the last layers' gradients first, so early buckets fill early.
  int64_t capElems = std::max<int64_t>(1, options.bucketBytes / static_cast<int64_t>(sizeof(float)));
  std::vector<int64_t> sizes;
  for (size_t k = params_.size(); k-- > 0;) {
    const at::Tensor& p = params_[k];
    if (p.scalar_type() != at::kFloat) throw std::runtime_error("data-parallel training needs float32 parameters");
    bool full = !buckets_.empty() && sizes.back() > 0 && sizes.back() + p.numel() > capElems;
    if (buckets_.empty() || full) {
      buckets_.emplace_back();
      sizes.push_back(0);
    }
    Bucket& b = buckets_.back();
    b.params.push_back(k);
    b.offsets.push_back(sizes.back());
    slot_[k] = {buckets_.size() - 1, sizes.back()};
    sizes.back() += p.numel();
  }
  for (size_t bi = 0; bi < buckets_.size(); bi++) buckets_[bi].flat = at::empty({sizes[bi]}, params_[buckets_[bi].params[0]].options());
  for (size_t k = 0; k < params_.size(); k++) {
    params_[k].register_hook([this, k](const at::Tensor& grad) { onGrad(k, grad); });
  }
}

void GradReducer::begin(double scale) {
  std::lock_guard<std::mutex> lock(mutex_);
  scale_ = scale;
  std::fill(seen_.begin(), seen_.end(), false);
  seenCount_ = 0;
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.work.reset();
  }
  nextLaunch_ = 0;
  launchedEarly_ = 0;
  callbackQueued_ = false;
  finished_ = false;
  active_ = true;
}

void GradReducer::end(bool check) {
  std::lock_guard<std::mutex> lock(mutex_);
  bool incomplete = callbackQueued_ && !finished_;
  active_ = false;
  for (auto& b : buckets_) b.work.reset();
  if (check && incomplete) throw std::runtime_error("the gradient all-reduce of this step did not finish");
}

void GradReducer::onGrad(size_t k, const at::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_ || seen_[k]) return;
  if (!callbackQueued_) {
    // Runs after backward has accumulated every gradient, still inside backward().
    torch::autograd::Engine::get_default_engine().queue_callback([this] { finish(); });
    callbackQueued_ = true;
  }
  auto [bi, offset] = slot_[k];
  Bucket& b = buckets_[bi];
  {
    at::NoGradGuard noGrad;
    const at::Tensor& p = params_[k];
    b.flat.narrow(0, offset, p.numel()).view(p.sizes()).copy_(grad);
  }
  seen_[k] = true;
  seenCount_++;
  if (--b.pending == 0) launchInOrder();
}

void GradReducer::launch(Bucket& b) {
  at::NoGradGuard noGrad;
  if (scale_ != 1) b.flat.mul_(scale_);
  b.work = allreduceSumAsync(b.flat);
}

void GradReducer::launchInOrder() {
  while (nextLaunch_ < buckets_.size() && buckets_[nextLaunch_].pending == 0) {
    launch(buckets_[nextLaunch_++]);
    if (seenCount_ < params_.size()) launchedEarly_++;
  }
}

void GradReducer::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  at::NoGradGuard noGrad;
  // Parameters that got no gradient this step (unused by the loss) contribute zeros, as DDP's
  // find_unused_parameters does, so every rank still issues every bucket's collective.
  while (nextLaunch_ < buckets_.size()) {
    Bucket& b = buckets_[nextLaunch_++];
    for (size_t j = 0; j < b.params.size(); j++) {
      size_t k = b.params[j];
      if (!seen_[k]) b.flat.narrow(0, b.offsets[j], params_[k].numel()).zero_();
    }
    b.pending = 0;
    launch(b);
  }
  for (auto& b : buckets_) {
    b.work->wait();
    b.work.reset();
  }
  for (auto& b : buckets_) {
    for (size_t j = 0; j < b.params.size(); j++) {
      at::Tensor& p = params_[b.params[j]];
      at::Tensor summed = b.flat.narrow(0, b.offsets[j], p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(summed);
      else p.mutable_grad() = at::empty_like(p).copy_(summed);
    }
  }
  finished_ = true;
}

namespace {
std::map<Plan*, std::unique_ptr<GradReducer>>& reducers() {
  static auto* map = new std::map<Plan*, std::unique_ptr<GradReducer>>();
  return *map;
}
}  // namespace

GradReducer* reducerFor(Plan* plan) {
  auto it = reducers().find(plan);
  if (it == reducers().end() || plan->params().empty() || !it->second->owns(plan->params()[0])) return nullptr;
  return it->second.get();
}

GradReducer& attachReducer(Plan* plan, const ReducerOptions& options) {
  auto& slot = reducers()[plan];
  // A reducer left by a freed plan at the same address holds other tensors; one on these would double the hooks.
  if (slot && !plan->params().empty() && slot->owns(plan->params()[0])) throw std::runtime_error("this plan already has a gradient reducer");
  slot = std::make_unique<GradReducer>(*plan, options);
  return *slot;
}

}  // namespace dist
}  // namespace slim

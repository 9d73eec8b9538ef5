#include "step_graph.h"

#include <stdexcept>

// Capture needs CUDA LibTorch and the CUDA runtime headers its CUDA headers include. find-libtorch.mjs
// defines SLIM_CUDA_GRAPHS after compiling those headers once; otherwise this file builds the refusals only.
#if defined(SLIM_WITH_CUDA) && defined(SLIM_CUDA_GRAPHS)
#define SLIM_HAS_CUDA_GRAPHS 1
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace slim {

bool cudaGraphsAvailable() {
#ifdef SLIM_HAS_CUDA_GRAPHS
  return true;
#else
  return false;
#endif
}

std::string cudaGraphBlocker(const Plan& plan) {
  if (!cudaGraphsAvailable()) {
    return "this build of the training addon has no CUDA graph support (it needs CUDA LibTorch and the CUDA runtime "
           "headers: set CUDA_HOME and rebuild with `npm run build:native`)";
  }
  if (!plan.config().device.is_cuda()) return "CUDA graphs need --device cuda";
  return "";
}

#ifdef SLIM_HAS_CUDA_GRAPHS

/** Everything a captured step baked in; a step that differs in any of it recaptures. */
struct CaptureKey {
  std::vector<int64_t> imageSizes;
  at::ScalarType imageType = at::kFloat;
  int64_t batch = 0;
  // The teacher's id, not its address: a freed teacher's address can come back as another plan's.
  uint64_t teacher = 0;
  double labelSmoothing = 0, temperature = 1, alpha = 1;

  bool operator==(const CaptureKey& o) const {
    return imageSizes == o.imageSizes && imageType == o.imageType && batch == o.batch && teacher == o.teacher &&
           labelSmoothing == o.labelSmoothing && temperature == o.temperature && alpha == o.alpha;
  }
};

class StepGraph {
 public:
  /** Eager steps on the side stream before the first capture (PyTorch's documented recipe uses 3). */
  static constexpr int kWarmupSteps = 3;

  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  int warmupDone = 0;
  bool captured = false;
  CaptureKey key;
  at::cuda::CUDAGraph graph;
  // Static inputs the replays copy into, and outputs they leave behind.
  at::Tensor images, labels, negLr, loss, correct;
};

void StepGraphDeleter::operator()(StepGraph* g) const { delete g; }

namespace {

CaptureKey keyOf(const at::Tensor& images, const at::Tensor& labels, const StepOptions& o, const Plan* teacher) {
  return {images.sizes().vec(), images.scalar_type(), labels.size(0), teacher ? teacher->id : 0, o.labelSmoothing, o.temperature, o.alpha};
}

/** Autocast's cast cache off while capturing, as PyTorch requires for graphed autocast regions. */
class NoAutocastCache {
 public:
  NoAutocastCache() : was_(at::autocast::is_autocast_cache_enabled()) { at::autocast::set_autocast_cache_enabled(false); }
  ~NoAutocastCache() { at::autocast::set_autocast_cache_enabled(was_); }
  NoAutocastCache(const NoAutocastCache&) = delete;
  NoAutocastCache& operator=(const NoAutocastCache&) = delete;

 private:
  bool was_;
};

/** The captured body: stepLoss, backward, the SGD update with a tensor learning rate, masks. */
void captureStep(Plan& plan, StepGraph& g, Plan* teacher, const StepOptions& o) {
  NoAutocastCache noCache;
  at::Tensor correct;
  at::Tensor loss = stepLoss(plan, g.images, g.labels, o, teacher, correct);
  loss.backward();
  auto params = plan.params();
  plan.optimizer().stepCapturable(params, plan.decayFlags(), g.negLr);
  plan.applyMasks();
  // Gradients stay: the replays overwrite them in place (they were unset when capture began, so the
  // captured backward writes rather than accumulates).
  g.loss = loss.detach();
  g.correct = correct;
}

}  // namespace

StepResult graphedTrainStep(Plan& plan, const at::Tensor& images, const at::Tensor& labels, const StepOptions& o, Plan* teacher) {
  std::string blocker = cudaGraphBlocker(plan);
  if (!blocker.empty()) throw std::runtime_error(blocker);
  if (o.targets.defined()) {
    throw std::runtime_error("CUDA graphs do not take cached teacher targets (they change every batch outside the graph); "
                             "distill with the teacher plan, or train without CUDA graphs");
  }
  if (plan.optimizer().config().kind != OptimKind::Sgd) {
    throw std::runtime_error("CUDA graphs support the SGD optimizer only (AdamW's bias correction changes every step); "
                             "use --optimizer sgd or train without CUDA graphs");
  }
  if (o.seed >= 0) at::manual_seed(static_cast<uint64_t>(o.seed));  // replays draw from the generator's state

  CaptureKey key = keyOf(images, labels, o, teacher);
  if (plan.stepGraph && plan.stepGraph->captured && !(plan.stepGraph->key == key)) {
    plan.dropStepGraph();
    plan.stepGraph.reset(new StepGraph());
    // LibTorch is initialised by now, but cuDNN's benchmark mode has not yet timed the new shape (or
    // teacher): its algorithm search syncs with the host, which a capture forbids. One eager step first.
    plan.stepGraph->warmupDone = StepGraph::kWarmupSteps - 1;
  }
  if (!plan.stepGraph) plan.stepGraph.reset(new StepGraph());
  StepGraph& g = *plan.stepGraph;

  if (!g.captured) {
    // Work queued on the default stream (the batch, weight copies) must finish before the side stream reads
    // it. (device_synchronize lives in c10_cuda; the inline stream calls would need libcudart linked.)
    c10::cuda::device_synchronize();
    c10::cuda::CUDAStreamGuard onSide(g.side);
    if (g.warmupDone < StepGraph::kWarmupSteps) {
      g.warmupDone++;
      return eagerTrainStep(plan, images, labels, o, teacher);
    }
    g.key = key;
    g.images = images.clone();
    g.labels = labels.clone();
    g.negLr = at::full({}, -o.lr, at::TensorOptions().dtype(at::kFloat).device(images.device()));
    plan.clearGrads();
    c10::cuda::device_synchronize();
    g.graph.capture_begin();
    std::string failure;
    if (!catchInto(failure, [&] {
          captureStep(plan, g, teacher, o);
          g.graph.capture_end();
        })) {
      // End the capture whatever happened, or every later CUDA call on this stream fails. An op that
      // reads a value back to the host (a sync) is the usual cause.
      std::string ignored;
      catchInto(ignored, [&] { g.graph.capture_end(); });
      plan.dropStepGraph();
      plan.clearGrads();
      throw std::runtime_error("capturing the training step as a CUDA graph failed (" + failure +
                               "); some op in this model syncs with the host — train without --cuda-graphs");
    }
    g.captured = true;
    // The capture recorded the step without running it; the replay below runs it.
  } else {
    g.images.copy_(images);
    g.labels.copy_(labels);
    g.negLr.fill_(-o.lr);
    plan.optimizer().steps++;  // counted on the host; the capture counted its own step
  }
  g.graph.replay();
  return {g.loss.item<double>(), g.correct.item<int64_t>(), images.size(0)};
}

#else

void StepGraphDeleter::operator()(StepGraph*) const {}

StepResult graphedTrainStep(Plan& plan, const at::Tensor&, const at::Tensor&, const StepOptions&, Plan*) {
  throw std::runtime_error(cudaGraphBlocker(plan));
}

#endif

}  // namespace slim

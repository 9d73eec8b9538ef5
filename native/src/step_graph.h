// Whole-step CUDA graphs: a training step (forward, loss, backward, SGD update, masks) captured once and
// replayed, so a step costs one launch instead of hundreds — the way past eager PyTorch's per-kernel
// launch overhead that issue 3 names. Opt-in per plan (`cudaGraphs`); everything CUDA-specific lives
// in step_graph.cc, which compiles to "not available" without CUDA LibTorch and the CUDA runtime headers.
#pragma once

#include "train.h"

namespace slim {

/** Whether this build can capture CUDA graphs. */
bool cudaGraphsAvailable();

/** Why `plan` cannot train through a captured step ("" when it can): device, optimizer, kernels. */
std::string cudaGraphBlocker(const Plan& plan);

/**
 * trainStep through the plan's captured graph: the first steps run eagerly on a side stream (LibTorch's
 * lazy initialisation must not happen during capture), the next one is captured and every later one
 * replays it after copying the batch and learning rate into the graph's static inputs. A step whose
 * batch shape, teacher or loss settings differ from the captured one recaptures.
 */
StepResult graphedTrainStep(Plan& plan, const at::Tensor& images, const at::Tensor& labels, const StepOptions& options, Plan* teacher);

}  // namespace slim

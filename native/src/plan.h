// A compiled model: a flat instruction list over tensor slots, plus the tables of parameters, state
// buffers and constants it reads. Built once from the TS plan compiler's typed arrays; owns every tensor.
#pragma once

#include <atomic>
#include <memory>
#include <unordered_map>

#include "kernels.h"
#include "optim.h"

namespace slim {

enum class Role : int32_t { Param = 0, State = 1, Constant = 2 };

struct PlanTensor {
  std::string name;
  int32_t slot;
  Role role;
  /** Weight decay applies (SGD/AdamW); the compiler clears it for BN and biases when asked. */
  bool decay;
  /** Optional 0/1 mask applied after every update (pruning). */
  at::Tensor mask;
};

enum class Autocast { None, BFloat16, Float16 };

struct PlanConfig {
  at::Device device = at::kCPU;
  bool channelsLast = false;
  Autocast autocast = Autocast::None;
  /** Train through a captured CUDA graph (step_graph.h). */
  bool cudaGraphs = false;
};

/** A plan's captured training step (step_graph.cc); dropped when anything it baked in changes. */
class StepGraph;
struct StepGraphDeleter {
  void operator()(StepGraph* graph) const;
};
using StepGraphPtr = std::unique_ptr<StepGraph, StepGraphDeleter>;

class Plan {
 public:
  Plan(std::vector<Instr> instrs, int32_t numSlots, int32_t inputSlot, std::vector<int32_t> outputSlots,
       int32_t logitsSlot, PlanConfig config);

  /** Adds a parameter, state buffer or constant (copied to the plan's device). */
  void addTensor(const std::string& name, int32_t slot, Role role, bool decay, at::Tensor value);
  /** Checks that every instruction input is a tensor slot or produced earlier; computes slot lifetimes. */
  void finalize();

  /**
   * Runs the instructions on `x`. Slots that are neither persistent nor outputs are released as soon as
   * their last reader has run, so eval memory stays flat. Returns the graph outputs and the logits.
   */
  struct Result {
    std::vector<at::Tensor> outputs;
    at::Tensor logits;
  };
  Result run(const at::Tensor& x, bool training);

  /** The input moved to the plan's device and memory format. */
  at::Tensor prepareInput(const at::Tensor& x) const;

  PlanTensor& tensor(const std::string& name);
  const std::vector<PlanTensor>& tensors() const { return tensors_; }
  at::Tensor& value(const PlanTensor& t) { return slots_[t.slot]; }

  /** Trainable parameters in table order (the optimizer's order). */
  std::vector<at::Tensor> params();
  std::vector<bool> decayFlags() const;
  void applyMasks();
  void clearGrads();

  const PlanConfig& config() const { return config_; }
  Optimizer& optimizer() { return optimizer_; }

  /** Set while a queued job uses the plan; synchronous calls refuse to run meanwhile. */
  bool busy = false;

  /** Unique for the process's life (an address can be reused by a later plan; this cannot). */
  const uint64_t id = nextId();

  /**
   * The captured training step, if any. Whoever replaces a tensor the graph read (optimizer state,
   * masks) calls dropStepGraph(), so the next step recaptures instead of replaying on stale memory.
   */
  StepGraphPtr stepGraph;
  /** Drops the captured step and the gradients it left on the parameters (eager steps start without). */
  void dropStepGraph() {
    if (!stepGraph) return;
    stepGraph.reset();
    clearGrads();
  }

 private:
  std::vector<Instr> instrs_;
  std::vector<at::Tensor> slots_;
  std::vector<bool> persistent_;
  /** For each instruction, the transient slots it reads for the last time. */
  std::vector<std::vector<int32_t>> releaseAfter_;
  int32_t inputSlot_;
  std::vector<int32_t> outputSlots_;
  int32_t logitsSlot_;
  PlanConfig config_;
  std::vector<PlanTensor> tensors_;
  std::unordered_map<std::string, size_t> byName_;
  Optimizer optimizer_;

  static uint64_t nextId() {
    static std::atomic<uint64_t> counter{0};
    return ++counter;
  }
};


}  // namespace slim

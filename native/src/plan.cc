#include "plan.h"

#include <stdexcept>

namespace slim {

Plan::Plan(std::vector<Instr> instrs, int32_t numSlots, int32_t inputSlot, std::vector<int32_t> outputSlots,
           int32_t logitsSlot, PlanConfig config)
    : instrs_(std::move(instrs)),
      slots_(numSlots),
      persistent_(numSlots, false),
      inputSlot_(inputSlot),
      outputSlots_(std::move(outputSlots)),
      logitsSlot_(logitsSlot),
      config_(config) {
  auto check = [&](int32_t slot, const char* what) {
    if (slot < 0 || slot >= numSlots) throw std::runtime_error(std::string("plan: ") + what + " slot " + std::to_string(slot) + " is out of range");
  };
  check(inputSlot_, "input");
  check(logitsSlot_, "logits");
  for (int32_t s : outputSlots_) check(s, "output");
  const auto& table = kernelTable();
  for (const auto& ins : instrs_) {
    if (ins.kernel < 0 || ins.kernel >= static_cast<int32_t>(table.size())) {
      throw std::runtime_error("plan: node '" + ins.node + "' uses unknown kernel code " + std::to_string(ins.kernel));
    }
    for (int32_t s : ins.in) if (s != -1) check(s, "instruction input");
    for (int32_t s : ins.out) if (s != -1) check(s, "instruction output");
  }
}

void Plan::addTensor(const std::string& name, int32_t slot, Role role, bool decay, at::Tensor value) {
  if (slot < 0 || slot >= static_cast<int32_t>(slots_.size())) throw std::runtime_error("plan: tensor '" + name + "' has an out-of-range slot");
  if (byName_.count(name)) throw std::runtime_error("plan: tensor '" + name + "' is listed twice");
  at::Tensor t = value.to(config_.device);
  // Conv weights follow the activations' layout, as PyTorch's model.to(memory_format=channels_last) does.
  if (config_.channelsLast && t.dim() == 4 && role == Role::Param) t = t.contiguous(at::MemoryFormat::ChannelsLast);
  if (role == Role::Param) t.set_requires_grad(true);
  slots_[slot] = t;
  persistent_[slot] = true;
  byName_[name] = tensors_.size();
  tensors_.push_back({name, slot, role, decay, at::Tensor()});
}

void Plan::finalize() {
  std::vector<bool> ready = persistent_;
  ready[inputSlot_] = true;
  std::vector<int32_t> lastRead(slots_.size(), -1);
  for (size_t k = 0; k < instrs_.size(); k++) {
    const auto& ins = instrs_[k];
    for (int32_t s : ins.in) {
      if (s == -1) continue;
      if (!ready[s]) throw std::runtime_error("plan: node '" + ins.node + "' reads slot " + std::to_string(s) + " before it is produced");
      lastRead[s] = static_cast<int32_t>(k);
    }
    for (int32_t s : ins.out) if (s != -1) ready[s] = true;
  }
  std::vector<bool> keep = persistent_;
  for (int32_t s : outputSlots_) keep[s] = true;
  keep[logitsSlot_] = true;
  releaseAfter_.assign(instrs_.size(), {});
  for (size_t s = 0; s < slots_.size(); s++) {
    if (!keep[s] && lastRead[s] >= 0) releaseAfter_[lastRead[s]].push_back(static_cast<int32_t>(s));
  }
}

at::Tensor Plan::prepareInput(const at::Tensor& x) const {
  at::Tensor t = x.to(config_.device, at::kFloat);
  if (config_.channelsLast && t.dim() == 4) t = t.contiguous(at::MemoryFormat::ChannelsLast);
  return t;
}

Plan::Result Plan::run(const at::Tensor& x, bool training) {
  RunState state{slots_, training};
  slots_[inputSlot_] = x;
  const auto& table = kernelTable();
  for (size_t k = 0; k < instrs_.size(); k++) {
    const Instr& ins = instrs_[k];
    try {
      table[ins.kernel].fn(ins, state);
    } catch (const c10::Error& e) {
      throw std::runtime_error("node '" + ins.node + "' (" + table[ins.kernel].name + "): " + torchMessage(e));
    }
    for (int32_t s : releaseAfter_[k]) slots_[s].reset();
  }
  Result result;
  for (int32_t s : outputSlots_) result.outputs.push_back(slots_[s]);
  result.logits = slots_[logitsSlot_];
  // Nothing transient outlives the call: the caller holds what it needs, autograd holds the rest.
  for (size_t s = 0; s < slots_.size(); s++) if (!persistent_[s]) slots_[s].reset();
  return result;
}

PlanTensor& Plan::tensor(const std::string& name) {
  auto it = byName_.find(name);
  if (it == byName_.end()) throw std::runtime_error("the plan has no tensor named '" + name + "'");
  return tensors_[it->second];
}

std::vector<at::Tensor> Plan::params() {
  std::vector<at::Tensor> out;
  for (const auto& t : tensors_) if (t.role == Role::Param) out.push_back(slots_[t.slot]);
  return out;
}

std::vector<bool> Plan::decayFlags() const {
  std::vector<bool> out;
  for (const auto& t : tensors_) if (t.role == Role::Param) out.push_back(t.decay);
  return out;
}

void Plan::applyMasks() {
  at::NoGradGuard noGrad;
  for (const auto& t : tensors_) if (t.mask.defined()) slots_[t.slot].mul_(t.mask);
}

void Plan::clearGrads() {
  // set_to_none, as PyTorch's zero_grad does by default: the next backward allocates fresh gradients.
  for (const auto& t : tensors_) if (t.role == Role::Param) slots_[t.slot].mutable_grad().reset();
}

}  // namespace slim

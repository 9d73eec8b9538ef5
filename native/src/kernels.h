// The plan's instruction set: one kernel per lowered ONNX op (or op pattern). The TS plan compiler asks
// the addon for the kernel names (kernelNames()) and maps its lowerings to codes, so the two sides
// never depend on a shared numbering.
#pragma once

#include "common.h"

namespace slim {

struct Instr {
  int32_t kernel = 0;
  /** Slot of each input; -1 marks an omitted optional input. */
  std::vector<int32_t> in;
  std::vector<int32_t> out;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  /** For error messages: the ONNX node this came from. */
  std::string node;
};

/** What a kernel reads and writes while a plan runs. */
struct RunState {
  std::vector<at::Tensor>& slots;
  bool training;
};

using KernelFn = void (*)(const Instr&, RunState&);

struct KernelDef {
  const char* name;
  KernelFn fn;
  /** Layout of ints/floats, for the error raised when a plan passes the wrong count. */
  const char* params;
};

const std::vector<KernelDef>& kernelTable();

}  // namespace slim

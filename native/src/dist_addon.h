// The JS surface of data-parallel training: `addon.dist` (see src/engine/distributed-native.ts).
#pragma once

#include <functional>

#include "data.h"
#include "train.h"

namespace slim {

/** What addon.cc lends the distributed bindings: its wrapped objects and option parsing. */
struct DistAccess {
  std::function<Plan*(const Napi::Object&)> plan;
  std::function<DataSet*(const Napi::Object&)> dataSet;
  std::function<StepOptions(const Napi::Object&)> stepOptions;
};

Napi::Object distExports(Napi::Env env, DistAccess access);

}  // namespace slim

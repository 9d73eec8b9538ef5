// The JS surface of the addon. src/engine/native.ts is the only module that loads it; these bindings
// convert arguments, queue long work on the torch thread, and never hand a tensor to JS (only copies).
#include <atomic>
#include <memory>
#include <thread>

#include "alloc.h"
#include "dist_addon.h"
#include "executor.h"
#include "step_graph.h"
#include "train.h"

namespace slim {

// ---- helpers shared with the other files (declared in common.h) ----

namespace {
std::atomic<int> wantedThreads{0};
thread_local int appliedThreads = 0;
}  // namespace

void setThreads(int n) {
  if (n < 1) throw std::runtime_error("threads must be at least 1, got " + std::to_string(n));
  wantedThreads = n;  // the torch thread applies it before its next task
}

void applyThreads() {
  int n = wantedThreads.load();
  if (n > 0 && n != appliedThreads) {
    at::set_num_threads(n);
    appliedThreads = n;
  }
}

at::Tensor tensorFromTyped(const Napi::TypedArray& array, const std::vector<int64_t>& dims, at::ScalarType type) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  if (static_cast<int64_t>(array.ElementLength()) != n) {
    throw std::runtime_error("array has " + std::to_string(array.ElementLength()) + " elements but its dims need " + std::to_string(n));
  }
  if (array.ElementSize() != at::elementSize(type)) {
    throw std::runtime_error("array elements are " + std::to_string(array.ElementSize()) + " bytes, but " + std::string(c10::toString(type)) + " needs " + std::to_string(at::elementSize(type)));
  }
  auto* data = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  return at::from_blob(data, dims, at::TensorOptions().dtype(type)).clone();
}

at::Tensor augFrom(const Napi::Value& v, int64_t batch) {
  if (v.IsNull() || v.IsUndefined()) return at::Tensor();
  auto array = v.As<Napi::TypedArray>();
  int64_t columns = batch > 0 ? static_cast<int64_t>(array.ElementLength()) / batch : 3;
  if (columns != 3 && columns != 5) throw std::runtime_error("augmentation needs 3 (crop) or 5 (resized crop) numbers per image, got " + std::to_string(array.ElementLength()) + " for " + std::to_string(batch));
  return tensorFromTyped(array, {batch, columns}, at::kInt).to(at::kLong);
}

Napi::Float32Array toFloat32Array(Napi::Env env, const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
  auto out = Napi::Float32Array::New(env, c.numel());
  std::memcpy(out.Data(), c.data_ptr<float>(), c.numel() * sizeof(float));
  return out;
}

std::vector<int64_t> intsFrom(const Napi::Value& value) {
  std::vector<int64_t> out;
  if (value.IsTypedArray()) {
    auto a = value.As<Napi::Int32Array>();
    for (size_t i = 0; i < a.ElementLength(); i++) out.push_back(a[i]);
    return out;
  }
  auto arr = value.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(arr.Get(i).As<Napi::Number>().Int64Value());
  return out;
}

double numberOr(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

bool boolOr(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : fallback;
}

namespace {
Executor* executor = nullptr;
}  // namespace

Executor& torchThread() { return *executor; }

namespace {

at::Device parseDevice(const std::string& name) {
  if (name == "cpu") return at::kCPU;
  if (name == "cuda") {
    if (!at::hasCUDA()) throw std::runtime_error("device 'cuda' was asked for, but this LibTorch has no CUDA or sees no GPU");
    return at::Device(at::kCUDA, 0);
  }
  throw std::runtime_error("unknown device '" + name + "' (expected 'cpu' or 'cuda')");
}

at::ScalarType scalarType(const std::string& dtype) {
  if (dtype == "float32") return at::kFloat;
  if (dtype == "int64") return at::kLong;
  if (dtype == "int32") return at::kInt;
  if (dtype == "uint8") return at::kByte;
  if (dtype == "int8") return at::kChar;
  throw std::runtime_error("the engine cannot hold tensors of type " + dtype);
}

Napi::Object stepResult(Napi::Env env, const StepResult& r) {
  auto o = Napi::Object::New(env);
  o.Set("loss", r.loss);
  o.Set("correct", Napi::Number::New(env, static_cast<double>(r.correct)));
  o.Set("count", Napi::Number::New(env, static_cast<double>(r.count)));
  return o;
}

StepOptions stepOptions(const Napi::Object& o) {
  StepOptions s;
  s.lr = numberOr(o, "lr", s.lr);
  s.labelSmoothing = numberOr(o, "labelSmoothing", 0);
  s.seed = static_cast<int64_t>(numberOr(o, "seed", -1));
  s.temperature = numberOr(o, "temperature", 1);
  s.alpha = numberOr(o, "alpha", 1);
  // Cached teacher logits for the batch (distillation without a teacher plan); copied now, on the JS thread.
  Napi::Value targets = o.Get("targets");
  if (targets.IsTypedArray()) s.targets = tensorFromTyped(targets.As<Napi::TypedArray>(), {static_cast<int64_t>(targets.As<Napi::TypedArray>().ElementLength())}, at::kFloat);
  return s;
}

/** Int32Array → int64 CPU tensor (copied now, while JS memory is valid). */
at::Tensor longsFrom(const Napi::Value& v, std::vector<int64_t> dims) {
  return tensorFromTyped(v.As<Napi::TypedArray>(), dims, at::kInt).to(at::kLong);
}

// ---------------------------------------------------------------------------------------------

class DataSetWrap : public Napi::ObjectWrap<DataSetWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "DataSet", {
        InstanceAccessor<&DataSetWrap::Size>("size"),
        InstanceMethod<&DataSetWrap::Batch>("batch"),
    });
  }

  explicit DataSetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataSetWrap>(info) {
    guarded(info.Env(), [&] {
      auto o = info[0].As<Napi::Object>();
      auto dims = intsFrom(o.Get("dims"));
      if (dims.size() != 4) throw std::runtime_error("data set dims must be [N, C, H, W]");
      DataSetConfig config;
      config.device = parseDevice(o.Get("device").As<Napi::String>().Utf8Value());
      config.scale = numberOr(o, "scale", 1.0 / 255);
      config.pad = static_cast<int64_t>(numberOr(o, "pad", 4));
      for (auto key : {"mean", "std"}) {
        auto arr = o.Get(key).As<Napi::Array>();
        auto& dst = std::string(key) == "mean" ? config.mean : config.std;
        for (uint32_t i = 0; i < arr.Length(); i++) dst.push_back(arr.Get(i).As<Napi::Number>().DoubleValue());
      }
      at::Tensor pixels = tensorFromTyped(o.Get("pixels").As<Napi::TypedArray>(), dims, at::kByte);
      at::Tensor labels = tensorFromTyped(o.Get("labels").As<Napi::TypedArray>(), {dims[0]}, at::kInt);
      data = std::make_unique<DataSet>(pixels, labels, config);
      return 0;
    });
  }

  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(data->size())); }

  // batch(indices: Int32Array, aug: Int32Array | null) → {images: Float32Array, labels: Float32Array}: the batch a
  // training step would see, for checking the on-device augmentation against the CPU pipeline.
  Napi::Value Batch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto indexArray = info[0].As<Napi::TypedArray>();
      int64_t b = static_cast<int64_t>(indexArray.ElementLength());
      auto device = data->config().device;
      at::Tensor indices = longsFrom(indexArray, {b}).to(device);
      at::Tensor aug = augFrom(info[1], b);
      data->checkAugmentation(aug);
      if (aug.defined()) aug = aug.to(device);
      auto [images, labels] = data->batch(indices, aug);
      auto o = Napi::Object::New(env);
      o.Set("images", toFloat32Array(env, images));
      o.Set("labels", toFloat32Array(env, labels));
      return o;
    });
  }

  std::unique_ptr<DataSet> data;
};

// ---------------------------------------------------------------------------------------------

class PlanWrap : public Napi::ObjectWrap<PlanWrap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Plan", {
        InstanceMethod<&PlanWrap::Forward>("forward"),
        InstanceMethod<&PlanWrap::Probe>("probe"),
        InstanceMethod<&PlanWrap::Grad>("grad"),
        InstanceMethod<&PlanWrap::Read>("read"),
        InstanceMethod<&PlanWrap::Write>("write"),
        InstanceMethod<&PlanWrap::Tensors>("tensors"),
        InstanceMethod<&PlanWrap::SetOptimizer>("setOptimizer"),
        InstanceMethod<&PlanWrap::OptimizerState>("optimizerState"),
        InstanceMethod<&PlanWrap::SetOptimizerState>("setOptimizerState"),
        InstanceMethod<&PlanWrap::SetMask>("setMask"),
        InstanceMethod<&PlanWrap::TrainStep>("trainStep"),
        InstanceMethod<&PlanWrap::TrainStepOn>("trainStepOn"),
        InstanceMethod<&PlanWrap::Evaluate>("evaluate"),
    });
  }

  explicit PlanWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PlanWrap>(info) {
    guarded(info.Env(), [&] {
      build(info[0].As<Napi::Object>());
      return 0;
    });
  }

  std::unique_ptr<Plan> plan;

 private:
  void build(const Napi::Object& spec) {
    PlanConfig config;
    config.device = parseDevice(spec.Get("device").As<Napi::String>().Utf8Value());
    config.channelsLast = boolOr(spec, "channelsLast", false);
    // Training shapes are fixed, so cuDNN's per-shape algorithm search pays off after the first step.
    if (config.device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
    std::string autocast = spec.Has("autocast") ? spec.Get("autocast").As<Napi::String>().Utf8Value() : "none";
    if (autocast == "bf16") config.autocast = Autocast::BFloat16;
    else if (autocast == "fp16") config.autocast = Autocast::Float16;
    else if (autocast != "none") throw std::runtime_error("unknown autocast '" + autocast + "' (expected none, bf16 or fp16)");
    config.cudaGraphs = boolOr(spec, "cudaGraphs", false);

    // code: per instruction [kernel, nIn, nOut, nInt, nFloat, ...in, ...out, ...ints]; floats in order.
    auto code = spec.Get("code").As<Napi::Int32Array>();
    auto floats = spec.Get("floats").As<Napi::Float64Array>();
    auto names = spec.Get("nodes").As<Napi::Array>();
    std::vector<Instr> instrs;
    size_t pos = 0, fpos = 0, len = code.ElementLength();
    auto next = [&]() -> int32_t {
      if (pos >= len) throw std::runtime_error("plan code is truncated");
      return code[pos++];
    };
    while (pos < len) {
      Instr ins;
      ins.kernel = next();
      int32_t nIn = next(), nOut = next(), nInt = next(), nFloat = next();
      for (int32_t k = 0; k < nIn; k++) ins.in.push_back(next());
      for (int32_t k = 0; k < nOut; k++) ins.out.push_back(next());
      for (int32_t k = 0; k < nInt; k++) ins.ints.push_back(next());
      if (fpos + nFloat > floats.ElementLength()) throw std::runtime_error("plan floats are truncated");
      for (int32_t k = 0; k < nFloat; k++) ins.floats.push_back(floats[fpos++]);
      if (instrs.size() < names.Length()) ins.node = names.Get(static_cast<uint32_t>(instrs.size())).As<Napi::String>().Utf8Value();
      instrs.push_back(std::move(ins));
    }
    auto outputs = intsFrom(spec.Get("outputSlots"));
    plan = std::make_unique<Plan>(std::move(instrs), spec.Get("numSlots").As<Napi::Number>().Int32Value(),
                                  spec.Get("inputSlot").As<Napi::Number>().Int32Value(),
                                  std::vector<int32_t>(outputs.begin(), outputs.end()),
                                  spec.Get("logitsSlot").As<Napi::Number>().Int32Value(), config);
    auto tensors = spec.Get("tensors").As<Napi::Array>();
    for (uint32_t i = 0; i < tensors.Length(); i++) {
      auto t = tensors.Get(i).As<Napi::Object>();
      std::string name = t.Get("name").As<Napi::String>().Utf8Value();
      auto dims = intsFrom(t.Get("dims"));
      at::Tensor value = tensorFromTyped(t.Get("data").As<Napi::TypedArray>(), dims, scalarType(t.Get("dtype").As<Napi::String>().Utf8Value()));
      int32_t role = t.Get("role").As<Napi::Number>().Int32Value();
      if (role < 0 || role > 2) throw std::runtime_error("tensor '" + name + "' has an unknown role");
      plan->addTensor(name, t.Get("slot").As<Napi::Number>().Int32Value(), static_cast<Role>(role), boolOr(t, "decay", true), value);
    }
    plan->finalize();
  }

  void idle(Napi::Env env) const {
    if (plan->busy) throw Napi::Error::New(env, "the plan is busy with a queued step; await it before calling this");
  }

  // forward(x: Float32Array, dims) → [{data, dims}] for each graph output (eval mode)
  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    idle(env);
    return guarded(env, [&]() -> Napi::Value {
      at::Tensor x = tensorFromTyped(info[0].As<Napi::TypedArray>(), intsFrom(info[1]), at::kFloat);
      Plan::Result result;
      torchThread().run([&] {
        c10::InferenceMode inference;
        result = plan->run(plan->prepareInput(x), false);
      });
      auto arr = Napi::Array::New(env, result.outputs.size());
      for (size_t k = 0; k < result.outputs.size(); k++) arr.Set(static_cast<uint32_t>(k), described(env, result.outputs[k]));
      return arr;
    });
  }

  static Napi::Object described(Napi::Env env, const at::Tensor& t) {
    auto o = Napi::Object::New(env);
    o.Set("data", toFloat32Array(env, t));
    auto dims = Napi::Array::New(env, t.dim());
    for (int64_t d = 0; d < t.dim(); d++) dims.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(t.size(d))));
    o.Set("dims", dims);
    return o;
  }

  // probe(x, dims, outputGrad: Float32Array, training: boolean) → {output, inputGrad}
  Napi::Value Probe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    idle(env);
    return guarded(env, [&]() -> Napi::Value {
      at::Tensor x = tensorFromTyped(info[0].As<Napi::TypedArray>(), intsFrom(info[1]), at::kFloat);
      auto g = info[2].As<Napi::Float32Array>();
      at::Tensor grad = tensorFromTyped(g, {static_cast<int64_t>(g.ElementLength())}, at::kFloat);
      bool training = info[3].As<Napi::Boolean>().Value();
      ProbeResult r;
      torchThread().run([&] {
        plan->dropStepGraph();
        r = probe(*plan, x, grad, training);
      });
      auto o = described(env, r.output);
      o.Set("inputGrad", toFloat32Array(env, r.inputGrad));
      return o;
    });
  }

  Napi::Value Grad(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    idle(env);
    return guarded(env, [&]() -> Napi::Value {
      const auto& t = plan->tensor(info[0].As<Napi::String>().Utf8Value());
      const at::Tensor& g = plan->value(t).grad();
      if (!g.defined()) return env.Null();
      return toFloat32Array(env, g);
    });
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    idle(env);
    return guarded(env, [&]() -> Napi::Value { return toFloat32Array(env, plan->value(plan->tensor(info[0].As<Napi::String>().Utf8Value()))); });
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    idle(env);
    return guarded(env, [&]() -> Napi::Value {
      std::string name = info[0].As<Napi::String>().Utf8Value();
      at::Tensor& dst = plan->value(plan->tensor(name));
      auto src = info[1].As<Napi::TypedArray>();
      if (static_cast<int64_t>(src.ElementLength()) != dst.numel()) {
        throw std::runtime_error("tensor '" + name + "' has " + std::to_string(dst.numel()) + " elements, got " + std::to_string(src.ElementLength()));
      }
      at::NoGradGuard noGrad;
      dst.copy_(tensorFromTyped(src, dst.sizes().vec(), at::kFloat));
      return env.Undefined();
    });
  }

  // tensors() → [{name, role, dims, decay, masked}]
  Napi::Value Tensors(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto arr = Napi::Array::New(env);
    uint32_t k = 0;
    for (const auto& t : plan->tensors()) {
      auto o = Napi::Object::New(env);
      o.Set("name", t.name);
      o.Set("role", static_cast<int32_t>(t.role));
      const at::Tensor& v = plan->value(t);
      auto dims = Napi::Array::New(env, v.dim());
      for (int64_t d = 0; d < v.dim(); d++) dims.Set(static_cast<uint32_t>(d), Napi::Number::New(env, static_cast<double>(v.size(d))));
      o.Set("dims", dims);
      o.Set("decay", t.decay);
      o.Set("masked", t.mask.defined());
      arr.Set(k++, o);
    }
    return arr;
  }

  // setOptimizer({kind: 'sgd'|'adamw', momentum, nesterov, weightDecay, beta1, beta2, eps})
  Napi::Value SetOptimizer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    idle(env);
    return guarded(env, [&]() -> Napi::Value {
      auto o = info[0].As<Napi::Object>();
      OptimConfig c;
      std::string kind = o.Get("kind").As<Napi::String>().Utf8Value();
      if (kind == "sgd") c.kind = OptimKind::Sgd;
      else if (kind == "adamw") c.kind = OptimKind::AdamW;
      else throw std::runtime_error("unknown optimizer '" + kind + "' (expected sgd or adamw)");
      c.momentum = numberOr(o, "momentum", c.kind == OptimKind::Sgd ? 0.9 : 0);
      c.nesterov = boolOr(o, "nesterov", false);
      c.weightDecay = numberOr(o, "weightDecay", 0);
      c.beta1 = numberOr(o, "beta1", 0.9);
      c.beta2 = numberOr(o, "beta2", 0.999);
      c.eps = numberOr(o, "eps", 1e-8);
      plan->dropStepGraph();
      plan->optimizer().configure(c, plan->params());
      return env.Undefined();
    });
  }

  // optimizerState() → {steps, first: Float32Array[], second: Float32Array[]} in parameter order
  Napi::Value OptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    idle(env);
    return guarded(env, [&]() -> Napi::Value {
      auto& opt = plan->optimizer();
      auto o = Napi::Object::New(env);
      o.Set("steps", Napi::Number::New(env, static_cast<double>(opt.steps)));
      for (auto [key, list] : {std::pair{"first", &opt.first}, std::pair{"second", &opt.second}}) {
        auto arr = Napi::Array::New(env, list->size());
        for (size_t k = 0; k < list->size(); k++) arr.Set(static_cast<uint32_t>(k), toFloat32Array(env, (*list)[k]));
        o.Set(key, arr);
      }
      return o;
    });
  }

  Napi::Value SetOptimizerState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    idle(env);
    return guarded(env, [&]() -> Napi::Value {
      auto o = info[0].As<Napi::Object>();
      auto& opt = plan->optimizer();
      if (!opt.configured()) throw std::runtime_error("call setOptimizer before restoring optimizer state");
      at::NoGradGuard noGrad;
      opt.steps = static_cast<int64_t>(numberOr(o, "steps", 0));
      for (auto [key, list] : {std::pair{"first", &opt.first}, std::pair{"second", &opt.second}}) {
        auto arr = o.Get(key).As<Napi::Array>();
        if (arr.Length() != list->size()) {
          throw std::runtime_error(std::string("optimizer state '") + key + "' has " + std::to_string(arr.Length()) + " tensors, the plan needs " + std::to_string(list->size()));
        }
        for (size_t k = 0; k < list->size(); k++) {
          at::Tensor& dst = (*list)[k];
          dst.copy_(tensorFromTyped(arr.Get(static_cast<uint32_t>(k)).As<Napi::TypedArray>(), dst.sizes().vec(), at::kFloat));
        }
      }
      return env.Undefined();
    });
  }

  // setMask(name, Float32Array | null): the weight is multiplied by the mask now and after every update
  Napi::Value SetMask(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    idle(env);
    return guarded(env, [&]() -> Napi::Value {
      std::string name = info[0].As<Napi::String>().Utf8Value();
      PlanTensor& t = plan->tensor(name);
      if (t.role != Role::Param) throw std::runtime_error("only trainable weights take masks; '" + name + "' is not one");
      plan->dropStepGraph();  // a captured step multiplies by the old mask tensor
      if (info[1].IsNull() || info[1].IsUndefined()) {
        t.mask = at::Tensor();
        return env.Undefined();
      }
      at::Tensor& w = plan->value(t);
      t.mask = tensorFromTyped(info[1].As<Napi::TypedArray>(), w.sizes().vec(), at::kFloat).to(w.device()).contiguous(w.suggest_memory_format());
      plan->applyMasks();
      return env.Undefined();
    });
  }

  // trainStep(dataset, indices: Int32Array, aug: Int32Array | null, options, teacher?) → Promise<{loss, correct, count}>
  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto dataObj = info[0].As<Napi::Object>();
      DataSet* data = DataSetWrap::Unwrap(dataObj)->data.get();
      auto indexArray = info[1].As<Napi::TypedArray>();
      int64_t b = static_cast<int64_t>(indexArray.ElementLength());
      at::Tensor indices = longsFrom(indexArray, {b});
      at::Tensor aug = augFrom(info[2], b);
      // Checked here, on the host: an out-of-range gather on CUDA is a device assert that ends the context.
      data->checkAugmentation(aug);
      StepOptions options = stepOptions(info[3].As<Napi::Object>());
      std::vector<Napi::Object> users{Value(), dataObj};
      std::vector<Plan*> plans{plan.get()};
      Plan* teacher = teacherOf(info, 4, users, plans);
      auto result = std::make_shared<StepResult>();
      Plan* self = plan.get();
      return queuePlanJob(env, users, plans, [=] {
        auto device = data->config().device;
        auto [images, labels] = data->batch(indices.to(device), aug.defined() ? aug.to(device) : aug);
        *result = trainStep(*self, images, labels, options, teacher);
      }, [result](Napi::Env e) -> Napi::Value { return stepResult(e, *result); });
    });
  }

  // trainStepOn(images: Float32Array, dims, labels: Int32Array, options, teacher?) → Promise: a step on given
  // (already normalized) images, for benchmarks and for comparing single steps with PyTorch.
  Napi::Value TrainStepOn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto dims = intsFrom(info[1]);
      at::Tensor images = tensorFromTyped(info[0].As<Napi::TypedArray>(), dims, at::kFloat);
      at::Tensor labels = longsFrom(info[2], {dims.at(0)});
      StepOptions options = stepOptions(info[3].As<Napi::Object>());
      std::vector<Napi::Object> users{Value()};
      std::vector<Plan*> plans{plan.get()};
      Plan* teacher = teacherOf(info, 4, users, plans);
      auto result = std::make_shared<StepResult>();
      Plan* self = plan.get();
      return queuePlanJob(env, users, plans, [=] {
        auto device = self->config().device;
        *result = trainStep(*self, images.to(device), labels.to(device), options, teacher);
      }, [result](Napi::Env e) -> Napi::Value { return stepResult(e, *result); });
    });
  }

  Plan* teacherOf(const Napi::CallbackInfo& info, size_t index, std::vector<Napi::Object>& users, std::vector<Plan*>& plans) {
    if (info.Length() <= index || info[index].IsNull() || info[index].IsUndefined()) return nullptr;
    auto obj = info[index].As<Napi::Object>();
    Plan* teacher = PlanWrap::Unwrap(obj)->plan.get();
    if (teacher == plan.get()) throw std::runtime_error("a plan cannot be its own teacher");
    users.push_back(obj);
    plans.push_back(teacher);
    return teacher;
  }

  // evaluate(dataset, {batch, limit, start, logits}) → Promise<{correct, loss, count, logits?}>: images
  // start … limit − 1 (start lets a caller go in chunks and report progress between them).
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      auto dataObj = info[0].As<Napi::Object>();
      DataSet* data = DataSetWrap::Unwrap(dataObj)->data.get();
      auto o = info[1].As<Napi::Object>();
      int64_t batch = static_cast<int64_t>(numberOr(o, "batch", 256));
      int64_t limit = static_cast<int64_t>(numberOr(o, "limit", 0));
      bool keep = boolOr(o, "logits", false);
      int64_t first = static_cast<int64_t>(numberOr(o, "start", 0));
      if (batch < 1) throw std::runtime_error("evaluation batch must be at least 1");
      if (first < 0) throw std::runtime_error("evaluation start must be at least 0");
      auto result = std::make_shared<EvalResult>();
      Plan* self = plan.get();
      return queuePlanJob(env, {Value(), dataObj}, {self}, [=] { *result = evaluate(*self, *data, batch, limit, keep, first); },
                   [result](Napi::Env e) -> Napi::Value {
                     auto r = Napi::Object::New(e);
                     r.Set("correct", Napi::Number::New(e, static_cast<double>(result->correct)));
                     r.Set("count", Napi::Number::New(e, static_cast<double>(result->count)));
                     r.Set("loss", result->count > 0 ? result->lossSum / static_cast<double>(result->count) : 0.0);
                     if (result->logits.defined()) r.Set("logits", toFloat32Array(e, result->logits));
                     return r;
                   });
    });
  }
};


// ---- module functions ----

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("torchVersion", std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." + std::to_string(TORCH_VERSION_PATCH));
  o.Set("cuda", at::hasCUDA());
  o.Set("threads", wantedThreads.load());
#ifdef SLIM_WITH_CUDA
  o.Set("builtWithCuda", true);
#else
  o.Set("builtWithCuda", false);
#endif
  o.Set("cudaGraphs", cudaGraphsAvailable());
  return o;
}

Napi::Value SetThreadsJs(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    setThreads(info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  });
}

Napi::Value KernelNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& table = kernelTable();
  auto arr = Napi::Array::New(env, table.size());
  for (size_t k = 0; k < table.size(); k++) arr.Set(static_cast<uint32_t>(k), table[k].name);
  return arr;
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  at::manual_seed(static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value()));
  return info.Env().Undefined();
}

Napi::Value StartAllocationCounting(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), startAllocationCounting());
}

Napi::Value AllocationStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AllocStats s = allocationStats();
  auto o = Napi::Object::New(env);
  o.Set("live", Napi::Number::New(env, static_cast<double>(s.live)));
  o.Set("liveBytes", Napi::Number::New(env, static_cast<double>(s.liveBytes)));
  o.Set("total", Napi::Number::New(env, static_cast<double>(s.total)));
  o.Set("counting", s.counting);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // The JS thread only copies and builds: at one LibTorch thread it never starts an OpenMP team, whose
  // idle workers would compete with the torch thread's. Steps default to all cores (LibTorch's own
  // default was 1 on Debian's build).
  at::set_num_threads(1);
  setThreads(std::max(1u, std::thread::hardware_concurrency()));
  executor = new Executor(env);
  env.AddCleanupHook([] {
    delete executor;
    executor = nullptr;
  });
  exports.Set("Plan", PlanWrap::Init(env));
  exports.Set("DataSet", DataSetWrap::Init(env));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreadsJs));
  exports.Set("kernelNames", Napi::Function::New(env, KernelNames));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("startAllocationCounting", Napi::Function::New(env, StartAllocationCounting));
  exports.Set("allocationStats", Napi::Function::New(env, AllocationStats));
  // Data-parallel training (dist_addon.cc), lent the wrapped plans and data sets.
  exports.Set("dist", distExports(env, {[](const Napi::Object& o) { return PlanWrap::Unwrap(o)->plan.get(); },
                                        [](const Napi::Object& o) { return DataSetWrap::Unwrap(o)->data.get(); },
                                        stepOptions}));
  return exports;
}

}  // namespace
}  // namespace slim

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return slim::Init(env, exports); }

NODE_API_MODULE(slimkit_torch, InitAddon)

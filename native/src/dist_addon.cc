// Bindings for data-parallel training. Collectives that belong to a step run on the torch thread like
// every other job (so they are ordered with the steps); diagnosis runs on a thread of its own, because
// it must answer while the torch thread may be blocked in a collective.
#include "dist_addon.h"

#include <memory>
#include <thread>

#include "dist.h"
#include "dist_reducer.h"
#include "executor.h"

namespace slim {
namespace {

DistAccess lent_;

/** Collectives run where the backend wants their tensors: CUDA for NCCL, the CPU for Gloo. */
at::Device collectiveDevice() { return dist::backend() == "nccl" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU); }

Napi::Value undefinedResult(Napi::Env env) { return env.Undefined(); }

/**
 * Runs `work` on a new thread and settles a promise with `result` on the JS thread. `holdsProcess`
 * false: the pending call does not keep the process alive (a probe that may block for ever on a
 * frozen peer, which the caller gives up on with a timer).
 */
template <typename T>
Napi::Value detached(Napi::Env env, std::function<T()> work, std::function<Napi::Value(Napi::Env, const T&)> result, bool holdsProcess = true) {
  struct Call {
    Napi::Promise::Deferred deferred;
    T value;
    std::string error;
    std::function<Napi::Value(Napi::Env, const T&)> result;
  };
  auto* call = new Call{Napi::Promise::Deferred::New(env), T{}, "", std::move(result)};
  auto promise = call->deferred.Promise();
  auto tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "slimkit-dist", 0, 1);
  if (!holdsProcess) tsfn.Unref(env);
  std::thread([call, tsfn, work]() mutable {
    catchInto(call->error, [&] { call->value = work(); });
    tsfn.BlockingCall(call, [](Napi::Env e, Napi::Function, Call* c) {
      if (c->error.empty()) c->deferred.Resolve(c->result(e, c->value));
      else c->deferred.Reject(Napi::Error::New(e, c->error).Value());
      delete c;
    });
    tsfn.Release();
  }).detach();
  return promise;
}

int intOr(const Napi::Object& o, const char* key, int fallback) { return static_cast<int>(numberOr(o, key, fallback)); }

std::string stringOr(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : fallback;
}

// init({rank, worldSize, masterAddr, masterPort, timeoutMs, backend, interface}) → Promise<{rank, worldSize, backend}>
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto o = info[0].As<Napi::Object>();
    dist::InitOptions opts;
    opts.rank = intOr(o, "rank", 0);
    opts.worldSize = intOr(o, "worldSize", 1);
    opts.masterAddr = stringOr(o, "masterAddr", "127.0.0.1");
    opts.masterPort = intOr(o, "masterPort", 29500);
    opts.timeout = std::chrono::milliseconds(static_cast<int64_t>(numberOr(o, "timeoutMs", 300000)));
    opts.backend = stringOr(o, "backend", "gloo");
    opts.interface = stringOr(o, "interface", "");
    return queuePlanJob(env, {}, {}, [opts] { dist::init(opts); }, [](Napi::Env e) -> Napi::Value {
      auto r = Napi::Object::New(e);
      r.Set("rank", dist::rank());
      r.Set("worldSize", dist::worldSize());
      r.Set("backend", dist::backend());
      return r;
    });
  });
}

Napi::Value Available(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("gloo", dist::hasGloo());
  o.Set("nccl", dist::hasNccl());
  o.Set("initialized", dist::initialized());
  return o;
}

// attach(plan, {bucketBytes}) → {buckets}: installs the gradient reducer's hooks on the plan's parameters
Napi::Value Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    Plan* plan = lent_.plan(info[0].As<Napi::Object>());
    if (plan->busy) throw std::runtime_error("the plan is busy with a queued step");
    dist::ReducerOptions opts;
    if (info.Length() > 1 && info[1].IsObject()) opts.bucketBytes = static_cast<int64_t>(numberOr(info[1].As<Napi::Object>(), "bucketBytes", static_cast<double>(opts.bucketBytes)));
    if (opts.bucketBytes < 4) throw std::runtime_error("bucketBytes must be at least 4");
    size_t buckets = 0;
    torchThread().run([&] { buckets = dist::attachReducer(plan, opts).bucketCount(); });
    auto r = Napi::Object::New(env);
    r.Set("buckets", Napi::Number::New(env, static_cast<double>(buckets)));
    return r;
  });
}

/** The plan's trained tensors (parameters, then state), optionally followed by the optimizer's. */
std::vector<at::Tensor> planTensors(Plan& plan, bool params, bool state, bool optimizer) {
  std::vector<at::Tensor> out;
  for (const auto& t : plan.tensors()) {
    if ((t.role == Role::Param && params) || (t.role == Role::State && state)) out.push_back(plan.value(t));
  }
  if (optimizer) {
    for (auto& t : plan.optimizer().first) out.push_back(t);
    for (auto& t : plan.optimizer().second) out.push_back(t);
  }
  return out;
}

/** Flattens same-typed tensors into one buffer, runs `collective` on it, and copies the result back. */
void coalesced(std::vector<at::Tensor> tensors, const std::function<void(at::Tensor&)>& collective) {
  at::NoGradGuard noGrad;
  std::vector<std::vector<at::Tensor>> groups;
  for (auto& t : tensors) {
    bool placed = false;
    for (auto& g : groups) {
      if (g[0].scalar_type() == t.scalar_type() && g[0].device() == t.device()) {
        g.push_back(t);
        placed = true;
        break;
      }
    }
    if (!placed) groups.push_back({t});
  }
  for (auto& g : groups) {
    std::vector<at::Tensor> flat;
    for (auto& t : g) flat.push_back(t.detach().reshape({-1}));
    at::Tensor buffer = at::cat(flat).to(collectiveDevice());
    collective(buffer);
    int64_t offset = 0;
    for (auto& t : g) {
      t.detach().copy_(buffer.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

// syncPlan(plan, {root, optimizer}) → Promise: parameters, state and (optionally) optimizer state from `root`
Napi::Value SyncPlan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto planObj = info[0].As<Napi::Object>();
    Plan* plan = lent_.plan(planObj);
    auto o = info[1].As<Napi::Object>();
    int root = intOr(o, "root", 0);
    bool optimizer = boolOr(o, "optimizer", true);
    return queuePlanJob(env, {planObj}, {plan}, [=] {
      coalesced(planTensors(*plan, true, true, optimizer), [root](at::Tensor& b) {
        std::vector<at::Tensor> io{b};
        dist::broadcast(io, root);
      });
      if (optimizer) {
        at::Tensor steps = at::full({1}, plan->optimizer().steps, at::TensorOptions().dtype(at::kLong).device(collectiveDevice()));
        std::vector<at::Tensor> io{steps};
        dist::broadcast(io, root);
        plan->optimizer().steps = steps.item<int64_t>();
      }
    }, undefinedResult);
  });
}

// averageState(plan) → Promise: BN running statistics averaged over the ranks (each saw its own shard)
Napi::Value AverageState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto planObj = info[0].As<Napi::Object>();
    Plan* plan = lent_.plan(planObj);
    return queuePlanJob(env, {planObj}, {plan}, [=] {
      auto state = planTensors(*plan, false, true, false);
      if (state.empty()) return;
      double world = dist::worldSize();
      coalesced(state, [world](at::Tensor& b) {
        std::vector<at::Tensor> io{b};
        dist::allreduceSum(io);
        b.div_(world);
      });
    }, undefinedResult);
  });
}

// trainStep(plan, dataset, indices, aug, options, teacher, {share, step}) → Promise<{loss, correct, count, overlapped}>:
// one data-parallel update on this rank's shard; loss and counts are summed over all ranks.
Napi::Value TrainStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto planObj = info[0].As<Napi::Object>();
    Plan* plan = lent_.plan(planObj);
    auto dataObj = info[1].As<Napi::Object>();
    DataSet* data = lent_.dataSet(dataObj);
    auto indexArray = info[2].As<Napi::TypedArray>();
    int64_t b = static_cast<int64_t>(indexArray.ElementLength());
    if (b < 1) throw std::runtime_error("this rank's shard of the batch is empty");
    at::Tensor indices = tensorFromTyped(indexArray, {b}, at::kInt).to(at::kLong);
    at::Tensor aug = augFrom(info[3], b);
    data->checkAugmentation(aug);
    StepOptions options = lent_.stepOptions(info[4].As<Napi::Object>());
    std::vector<Napi::Object> users{planObj, dataObj};
    std::vector<Plan*> plans{plan};
    Plan* teacher = nullptr;
    if (info.Length() > 5 && info[5].IsObject()) {
      auto teacherObj = info[5].As<Napi::Object>();
      teacher = lent_.plan(teacherObj);
      users.push_back(teacherObj);
      plans.push_back(teacher);
    }
    auto extra = info[6].As<Napi::Object>();
    double share = numberOr(extra, "share", 1);
    int64_t step = static_cast<int64_t>(numberOr(extra, "step", 0));
    dist::GradReducer* reducer = dist::reducerFor(plan);
    if (!reducer) throw std::runtime_error("the plan has no gradient reducer; call dist.attach(plan) first");
    struct Out {
      double loss = 0, correct = 0, count = 0;
      size_t overlapped = 0, buckets = 0;
    };
    auto out = std::make_shared<Out>();
    return queuePlanJob(env, users, plans, [=] {
      dist::setStep(step);
      auto device = data->config().device;
      auto [images, labels] = data->batch(indices.to(device), aug.defined() ? aug.to(device) : aug);
      reducer->begin(share);
      StepResult r;
      try {
        // Eager always: the reducer's hooks and collectives are not captured into a CUDA graph.
        r = eagerTrainStep(*plan, images, labels, options, teacher);
      } catch (...) {
        reducer->end(false);
        throw;
      }
      reducer->end(true);
      at::Tensor sums = at::tensor({r.loss * static_cast<double>(r.count), static_cast<double>(r.correct), static_cast<double>(r.count)},
                                   at::TensorOptions().dtype(at::kDouble)).to(collectiveDevice());
      std::vector<at::Tensor> io{sums};
      dist::allreduceSum(io);
      at::Tensor cpu = io[0].cpu();
      out->count = cpu[2].item<double>();
      out->loss = cpu[0].item<double>() / out->count;
      out->correct = cpu[1].item<double>();
      out->overlapped = reducer->launchedEarly();
      out->buckets = reducer->bucketCount();
    }, [out](Napi::Env e) -> Napi::Value {
      auto r = Napi::Object::New(e);
      r.Set("loss", out->loss);
      r.Set("correct", out->correct);
      r.Set("count", out->count);
      r.Set("overlapped", Napi::Number::New(e, static_cast<double>(out->overlapped)));
      r.Set("buckets", Napi::Number::New(e, static_cast<double>(out->buckets)));
      return r;
    });
  });
}

// allreduce(Float64Array) → Promise<Float64Array>: element-wise sums over the ranks
Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto arr = info[0].As<Napi::Float64Array>();
    at::Tensor t = tensorFromTyped(arr, {static_cast<int64_t>(arr.ElementLength())}, at::kDouble);
    auto out = std::make_shared<at::Tensor>();
    return queuePlanJob(env, {}, {}, [t, out] {
      std::vector<at::Tensor> io{t.to(collectiveDevice())};
      dist::allreduceSum(io);
      *out = io[0].cpu();
    }, [out](Napi::Env e) -> Napi::Value {
      auto r = Napi::Float64Array::New(e, out->numel());
      std::memcpy(r.Data(), out->data_ptr<double>(), out->numel() * sizeof(double));
      return r;
    });
  });
}

// broadcastBytes(bytes: Uint8Array | null, root) → Promise<Uint8Array>: root's bytes on every rank
Napi::Value BroadcastBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    int root = info[1].As<Napi::Number>().Int32Value();
    at::Tensor mine;
    if (info[0].IsTypedArray()) {
      auto a = info[0].As<Napi::TypedArray>();
      mine = tensorFromTyped(a, {static_cast<int64_t>(a.ElementLength())}, at::kByte);
    }
    if (dist::rank() == root && !mine.defined()) throw std::runtime_error("the root rank must pass the bytes to broadcast");
    auto out = std::make_shared<at::Tensor>();
    return queuePlanJob(env, {}, {}, [mine, root, out] {
      bool isRoot = dist::rank() == root;
      at::Tensor length = at::full({1}, isRoot ? mine.numel() : 0, at::TensorOptions().dtype(at::kLong).device(collectiveDevice()));
      std::vector<at::Tensor> io{length};
      dist::broadcast(io, root);
      int64_t n = length.cpu().item<int64_t>();
      at::Tensor bytes = isRoot ? mine.to(collectiveDevice()) : at::empty({n}, at::TensorOptions().dtype(at::kByte).device(collectiveDevice()));
      if (n > 0) {
        std::vector<at::Tensor> payload{bytes};
        dist::broadcast(payload, root);
      }
      *out = bytes.cpu().contiguous();
    }, [out](Napi::Env e) -> Napi::Value {
      auto r = Napi::Uint8Array::New(e, out->numel());
      if (out->numel() > 0) std::memcpy(r.Data(), out->data_ptr<uint8_t>(), out->numel());
      return r;
    });
  });
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value { return queuePlanJob(env, {}, {}, [] { dist::barrier(); }, undefinedResult); });
}

// diagnose(probeMs) → Promise<{storeReachable, storeError, ranks: [{rank, alive, step}]}>
Napi::Value Diagnose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto probe = std::chrono::milliseconds(static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue()));
    if (!dist::initialized()) throw std::runtime_error("distributed training is not initialized");
    return detached<dist::Diagnosis>(env, [probe] { return dist::diagnose(probe); }, [](Napi::Env e, const dist::Diagnosis& d) -> Napi::Value {
      auto r = Napi::Object::New(e);
      r.Set("storeReachable", d.storeReachable);
      r.Set("storeError", d.storeError);
      auto ranks = Napi::Array::New(e, d.ranks.size());
      for (size_t k = 0; k < d.ranks.size(); k++) {
        auto s = Napi::Object::New(e);
        s.Set("rank", d.ranks[k].rank);
        s.Set("alive", d.ranks[k].alive);
        s.Set("step", Napi::Number::New(e, static_cast<double>(d.ranks[k].step)));
        ranks.Set(static_cast<uint32_t>(k), s);
      }
      r.Set("ranks", ranks);
      return r;
    }, /* holdsProcess */ false);
  });
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  dist::shutdown();
  return info.Env().Undefined();
}

}  // namespace

Napi::Object distExports(Napi::Env env, DistAccess lent) {
  lent_ = std::move(lent);
  auto o = Napi::Object::New(env);
  o.Set("available", Napi::Function::New(env, Available));
  o.Set("init", Napi::Function::New(env, Init));
  o.Set("attach", Napi::Function::New(env, Attach));
  o.Set("syncPlan", Napi::Function::New(env, SyncPlan));
  o.Set("averageState", Napi::Function::New(env, AverageState));
  o.Set("trainStep", Napi::Function::New(env, TrainStep));
  o.Set("allreduce", Napi::Function::New(env, AllReduce));
  o.Set("broadcastBytes", Napi::Function::New(env, BroadcastBytes));
  o.Set("barrier", Napi::Function::New(env, Barrier));
  o.Set("diagnose", Napi::Function::New(env, Diagnose));
  o.Set("shutdown", Napi::Function::New(env, Shutdown));
  return o;
}

}  // namespace slim

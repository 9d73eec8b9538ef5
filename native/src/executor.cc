#include "executor.h"

#include "plan.h"

#include <future>

namespace slim {

Executor::Executor(Napi::Env env) {
  auto noop = Napi::Function::New(env, [](const Napi::CallbackInfo&) {});
  tsfn_ = Napi::ThreadSafeFunction::New(env, noop, "slimkit-torch", 0, 1);
  tsfn_.Unref(env);  // an idle executor must not keep Node alive
  thread_ = std::thread([this] { loop(); });
}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  tsfn_.Abort();
}

void Executor::push(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(task));
  }
  wake_.notify_one();
}

Napi::Promise Executor::submit(Job* job) {
  Napi::Env env = job->deferred.Env();
  Napi::Promise promise = job->deferred.Promise();
  if (pending_++ == 0) tsfn_.Ref(env);
  push([this, job] {
    catchInto(job->error, job->work);
    // Fails only while Node shuts down; the job's JS references then die with the environment.
    tsfn_.BlockingCall(job, [this](Napi::Env e, Napi::Function, Job* j) { deliver(e, this, j); });
  });
  return promise;
}

void Executor::run(const std::function<void()>& work) {
  std::promise<std::string> done;
  push([&] {
    std::string error;
    catchInto(error, work);
    done.set_value(error);
  });
  std::string error = done.get_future().get();
  if (!error.empty()) throw std::runtime_error(error);
}

void Executor::loop() {
  // The JS thread keeps LibTorch at one thread (see torchThread()); this one uses the asked-for count.
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // Node is shutting down: nobody is left to receive results
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    applyThreads();
    task();
  }
}

void Executor::deliver(Napi::Env env, Executor* self, Job* job) {
  Napi::HandleScope scope(env);
  if (job->finally) job->finally();
  if (job->error.empty()) {
    std::string error;
    Napi::Value value;
    try {
      value = guarded(env, [&] { return job->result(env); });
    } catch (const Napi::Error& e) {
      error = e.Message();
    }
    if (error.empty()) job->deferred.Resolve(value);
    else job->deferred.Reject(Napi::Error::New(env, error).Value());
  } else {
    job->deferred.Reject(Napi::Error::New(env, job->error).Value());
  }
  delete job;
  if (--self->pending_ == 0) self->tsfn_.Unref(env);
}

Napi::Value queuePlanJob(Napi::Env env, std::vector<Napi::Object> users, std::vector<Plan*> plans, std::function<void()> work,
                         std::function<Napi::Value(Napi::Env)> result) {
  for (Plan* p : plans) {
    if (p->busy) throw Napi::Error::New(env, "the plan is busy with a queued step; await each step before starting the next");
  }
  auto* job = new Job(env);
  for (auto& u : users) job->keep.push_back(Napi::Persistent(u));
  for (Plan* p : plans) p->busy = true;
  job->work = std::move(work);
  job->result = std::move(result);
  job->finally = [plans] {
    for (Plan* p : plans) p->busy = false;
  };
  return torchThread().submit(job);
}

}  // namespace slim

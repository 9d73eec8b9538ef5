#include "executor.h"

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

Napi::Promise Executor::submit(Job* job) {
  Napi::Env env = job->deferred.Env();
  Napi::Promise promise = job->deferred.Promise();
  if (pending_++ == 0) tsfn_.Ref(env);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(job);
  }
  wake_.notify_one();
  return promise;
}

void Executor::loop() {
  for (;;) {
    Job* job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;  // Node is shutting down: nobody is left to receive results
      job = queue_.front();
      queue_.pop_front();
    }
    applyThreads();
    catchInto(job->error, job->work);
    auto status = tsfn_.BlockingCall(job, [this](Napi::Env env, Napi::Function fn, Job* j) { deliver(env, fn, this, j); });
    if (status != napi_ok) return;  // shutting down; the job's JS references die with the environment
  }
}

void Executor::deliver(Napi::Env env, Napi::Function, Executor* self, Job* job) {
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

}  // namespace slim

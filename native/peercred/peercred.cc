// peercred: getsockopt(fd, SOL_SOCKET, SO_PEERCRED) for a connected Unix socket, returned as {pid, uid, gid}.
// Node and libuv expose no peer credentials; the Workload API attests callers from these kernel values.
// Also trimMalloc(): glibc's malloc_trim(0), which Node does not expose (src/agent/memory.ts, why).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <napi.h>
#include <sys/socket.h>
#include <sys/types.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cerrno>
#include <cstring>
#include <string>

static Napi::Value GetPeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "getPeerCred(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  struct ucred cred;
  socklen_t len = sizeof(cred);
  std::memset(&cred, 0, sizeof(cred));
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
    int err = errno;
    Napi::Error e = Napi::Error::New(env, std::string("getsockopt(SO_PEERCRED): ") + std::strerror(err));
    e.Set("errno", Napi::Number::New(env, err));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}

// Gives the free pages of every malloc arena back to the kernel (glibc only returns the top of the main
// heap by itself); true when it released any. Elsewhere (musl) false: nothing to call.
static Napi::Value TrimMalloc(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getPeerCred", Napi::Function::New(env, GetPeerCred, "getPeerCred"));
  exports.Set("trimMalloc", Napi::Function::New(env, TrimMalloc, "trimMalloc"));
  return exports;
}

NODE_API_MODULE(peercred, Init)

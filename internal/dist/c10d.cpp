// c10d shim: rendezvous, bucketed all-reduce, broadcast and barrier on
// libtorch's own distributed engine (TCPStore + ProcessGroupGloo, or
// ProcessGroupNCCL when built against a CUDA libtorch that has it).
#include "c10d.h"

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef CLIPCAP_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

// GradBuckets: gradients living in flat all-reduce buckets (DDP's
// gradient_as_bucket_view). Each bound parameter's .grad is a view of its
// bucket, so backward accumulates straight into the buffer the collective
// reduces: no packing copy before it, no unpacking copy after.
struct GradBuckets {
  std::vector<at::Tensor> params; // bound, in order
  std::vector<const void *> where; // each one's .grad data pointer when bound
  std::vector<at::Tensor> flats;
};

struct cc_group {
  std::string backend;
  int rank = 0, world = 1;
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  GradBuckets grads;
};

namespace {

char *dup(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  std::memcpy(p, s.data(), s.size() + 1);
  return p;
}

// guard runs fn and turns any C++ exception into an error message: nothing
// may unwind into Go.
template <typename F> int guard(char **err, F fn) {
  try {
    fn();
    return 0;
  } catch (const c10::Error &e) {
    *err = dup(e.what_without_backtrace());
  } catch (const std::exception &e) {
    *err = dup(e.what());
  } catch (...) {
    *err = dup("unknown C++ exception");
  }
  return 1;
}

std::vector<at::Tensor> tensors(void **ts, int n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (int i = 0; i < n; i++) out.push_back(*static_cast<at::Tensor *>(ts[i]));
  return out;
}

// A bucket is a run of tensors of one dtype and device, at most cap bytes
// (a single larger tensor is a bucket of its own), flattened into one
// contiguous buffer unless it is a single contiguous tensor already.
struct Bucket {
  std::vector<at::Tensor> parts;
  at::Tensor flat;
};

std::vector<Bucket> buckets(const std::vector<at::Tensor> &ts, int64_t cap) {
  std::vector<Bucket> out;
  int64_t bytes = 0;
  for (const auto &t : ts) {
    int64_t nb = t.numel() * t.element_size();
    bool fresh = out.empty() || bytes + nb > cap || out.back().parts[0].scalar_type() != t.scalar_type() ||
                 out.back().parts[0].device() != t.device();
    if (fresh) {
      out.emplace_back();
      bytes = 0;
    }
    out.back().parts.push_back(t);
    bytes += nb;
  }
  for (auto &b : out) {
    if (b.parts.size() == 1 && b.parts[0].is_contiguous()) {
      b.flat = b.parts[0];
      continue;
    }
    std::vector<at::Tensor> flat;
    for (const auto &t : b.parts) flat.push_back(t.reshape({-1}));
    b.flat = at::cat(flat);
  }
  return out;
}

// unpack copies a reduced bucket back into its tensors.
void unpack(Bucket &b) {
  if (b.parts.size() == 1 && b.flat.is_same(b.parts[0])) return;
  int64_t off = 0;
  for (auto &t : b.parts) {
    t.copy_(b.flat.narrow(0, off, t.numel()).view(t.sizes()));
    off += t.numel();
  }
}

void wait_all(std::vector<c10::intrusive_ptr<c10d::Work>> &works) {
  for (auto &w : works) w->wait();
}

// grads_bound reports whether params (those with a gradient) are exactly the ones
// g was bound to and every .grad still is its view: something that replaced
// a gradient (or a different parameter list) makes the buckets stale.
bool grads_bound(const GradBuckets &g, const std::vector<at::Tensor> &params) {
  if (g.params.size() != params.size()) return false;
  for (size_t i = 0; i < params.size(); i++) {
    if (!params[i].is_same(g.params[i])) return false;
    const auto &gr = params[i].grad();
    if (!gr.defined() || gr.data_ptr() != g.where[i] || !gr.is_contiguous()) return false;
  }
  return true;
}

// bind_grads packs the gradients of params into buckets and makes each .grad a
// view of its bucket. Autograd then accumulates into those views in place
// (it only replaces a .grad that is undefined), and zero_grad keeps them.
void bind_grads(GradBuckets &g, const std::vector<at::Tensor> &params, int64_t cap) {
  std::vector<at::Tensor> grads;
  for (const auto &p : params) grads.push_back(p.grad());
  auto bs = buckets(grads, cap);
  g = GradBuckets{};
  g.params = params;
  size_t k = 0;
  for (auto &b : bs) {
    int64_t off = 0;
    for (size_t j = 0; j < b.parts.size(); j++, k++) {
      auto &p = g.params[k];
      if (!b.flat.is_same(b.parts[j])) p.mutable_grad() = b.flat.narrow(0, off, p.numel()).view(p.sizes());
      g.where.push_back(p.grad().data_ptr());
      off += p.numel();
    }
    g.flats.push_back(b.flat);
  }
}

} // namespace

int cc_init(const char *backend, const char *addr, int port, int rank, int world, int64_t timeout_ms,
            cc_group **out, char **err) {
  return guard(err, [&] {
    auto g = new cc_group();
    g->backend = backend;
    g->rank = rank;
    g->world = world;
    g->timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(port);
    opts.isServer = rank == 0;
    opts.numWorkers = world;
    // Rank 0 does not wait for the others in the constructor: the config
    // check right after rendezvous names a missing rank, this would not.
    opts.waitWorkers = false;
    opts.timeout = g->timeout;
    try {
      g->store = c10::make_intrusive<c10d::TCPStore>(std::string(addr), opts);
    } catch (...) {
      delete g;
      throw;
    }
    *out = g;
  });
}

int cc_make_group(cc_group *g, const char *gloo_host, char **err) {
  return guard(err, [&] {
    // A prefix per group keeps these keys apart from clipcap's own.
    auto store = c10::make_intrusive<c10d::PrefixStore>("pg", g->store);
    if (g->backend == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(g->timeout);
      if (const char *ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else if (gloo_host[0] != 0) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(gloo_host));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = 2;
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, g->rank, g->world, opts);
      return;
    }
#ifdef CLIPCAP_NCCL
    if (g->backend == "nccl") {
      // NCCL applies the timeout only in blocking-wait mode; without it a
      // lost peer would hang the others instead of failing them.
      setenv("NCCL_BLOCKING_WAIT", "1", 0);
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = g->timeout;
      g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, g->rank, g->world, opts);
      return;
    }
#endif
    throw std::runtime_error("dist_backend " + g->backend + " is not available in this libtorch build (gloo" +
#ifdef CLIPCAP_NCCL
                             std::string(", nccl") +
#else
                             std::string("") +
#endif
                             " are)");
  });
}

int cc_store_set(cc_group *g, const char *key, const char *val, int64_t len, char **err) {
  return guard(err, [&] { g->store->set(key, std::vector<uint8_t>(val, val + len)); });
}

int cc_store_get(cc_group *g, const char *key, char **val, int64_t *len, char **err) {
  return guard(err, [&] {
    auto v = g->store->get(key);
    *val = static_cast<char *>(std::malloc(v.size() + 1));
    std::memcpy(*val, v.data(), v.size());
    *len = static_cast<int64_t>(v.size());
  });
}

int cc_store_check(cc_group *g, const char **keys, int n, int *present, char **err) {
  return guard(err, [&] {
    std::vector<std::string> ks(keys, keys + n);
    *present = g->store->check(ks) ? 1 : 0;
  });
}

int cc_reduce_grads(cc_group *g, void **params, int n, int64_t bucket_bytes, double *sums, int nsums, char **err) {
  return guard(err, [&] {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> with;
    for (const auto &p : tensors(params, n))
      if (p.grad().defined()) with.push_back(p);
    if (!grads_bound(g->grads, with)) bind_grads(g->grads, with, bucket_bytes);
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto &flat : g->grads.flats) {
      std::vector<at::Tensor> one{flat};
      works.push_back(g->pg->allreduce(one));
    }
    at::Tensor extra;
    if (nsums > 0) {
      auto dev = g->grads.flats.empty() ? at::Device(at::kCPU) : g->grads.flats[0].device();
      extra = at::from_blob(sums, {nsums}, at::kDouble).to(dev, /*non_blocking=*/false, /*copy=*/true);
      std::vector<at::Tensor> one{extra};
      works.push_back(g->pg->allreduce(one));
    }
    wait_all(works);
    if (nsums > 0) {
      auto host = extra.cpu();
      std::memcpy(sums, host.data_ptr<double>(), sizeof(double) * nsums);
    }
  });
}

int cc_allreduce_sum(cc_group *g, void *t, char **err) {
  return guard(err, [&] {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> one{*static_cast<at::Tensor *>(t)};
    g->pg->allreduce(one)->wait();
  });
}

int cc_broadcast(cc_group *g, void **ts, int n, int root, int64_t bucket_bytes, char **err) {
  return guard(err, [&] {
    at::NoGradGuard no_grad;
    auto bs = buckets(tensors(ts, n), bucket_bytes);
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    for (auto &b : bs) {
      std::vector<at::Tensor> one{b.flat};
      works.push_back(g->pg->broadcast(one, opts));
    }
    wait_all(works);
    for (auto &b : bs) unpack(b);
  });
}

int cc_barrier(cc_group *g, char **err) {
  return guard(err, [&] { g->pg->barrier()->wait(); });
}

void cc_shutdown(cc_group *g) {
  if (g == nullptr) return;
  try {
    g->pg.reset();
    g->store.reset();
  } catch (...) {
  }
  delete g;
}

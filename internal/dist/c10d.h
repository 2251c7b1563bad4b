// C interface of the c10d shim (c10d.cpp): the calls clipcap's data-parallel
// trainer needs from libtorch's distributed engine. Every call that can fail
// returns 0 on success and otherwise a malloc'd message in *err (the caller
// frees it). Tensors are gotch handles (torch::Tensor*).
#ifndef CLIPCAP_C10D_H
#define CLIPCAP_C10D_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cc_group cc_group;

// cc_init connects to (rank 0: hosts) the TCPStore at addr:port, then
// creates the process group over it. backend is "gloo" or "nccl".
// timeout_ms bounds the rendezvous, every store wait and every collective.
int cc_init(const char *backend, const char *addr, int port, int rank, int world, int64_t timeout_ms,
            cc_group **out, char **err);

// cc_store_set / cc_store_get: raw bytes under key. get waits up to the
// group's timeout for the key to appear; *val is malloc'd.
int cc_store_set(cc_group *g, const char *key, const char *val, int64_t len, char **err);
int cc_store_get(cc_group *g, const char *key, char **val, int64_t *len, char **err);
// cc_store_check sets *present to whether all keys exist, without waiting.
int cc_store_check(cc_group *g, const char **keys, int n, int *present, char **err);

// cc_make_group creates the process group; the store must be up. Gloo
// binds to GLOO_SOCKET_IFNAME when set, else to gloo_host when not empty
// (loopback for single-node runs), else to the address of the host name.
int cc_make_group(cc_group *g, const char *gloo_host, char **err);

// cc_reduce_grads sums over the ranks the gradients of the n parameters
// that have one, and the nsums doubles at sums, in one round of collectives.
// The first call (and any after a .grad was replaced) moves the gradients
// into flat buckets of at most bucket_bytes and makes each .grad a view of
// its bucket, so later steps reduce in place without packing. *early is
// the number of buckets whose all-reduce backward had already started.
int cc_reduce_grads(cc_group *g, void **params, int n, int64_t bucket_bytes, double *sums, int nsums, int *early,
                    char **err);
// cc_expect_backward arms the gradient hooks for the coming backward (the
// step's last micro-batch): each bucket's all-reduce then starts inside
// backward as soon as its gradients are complete, and cc_reduce_grads
// starts the rest and waits for all. Without it (micro-batches that only
// accumulate) backward reduces nothing.
int cc_expect_backward(cc_group *g, char **err);
// cc_allreduce_sum sums one tensor over the ranks in place.
int cc_allreduce_sum(cc_group *g, void *tensor, char **err);
// cc_broadcast copies rank root's tensors into every rank's (bucketed too).
int cc_broadcast(cc_group *g, void **tensors, int n, int root, int64_t bucket_bytes, char **err);
int cc_barrier(cc_group *g, char **err);
// cc_shutdown releases the group and the store (rank 0 stops serving it).
void cc_shutdown(cc_group *g);

#ifdef __cplusplus
}
#endif
#endif

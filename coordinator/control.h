/*
 * control.h - the coordinator's answers to memschedctl: fleet state and policy as tables or
 * JSON, and policy changes.
 *
 * control_handle() reads the fleet (fleet.h) and the store (store.h) and renders one reply. It
 * does no socket I/O: the coordinator's loop receives the request and sends the reply. A
 * policy change is validated layered, per host in its scope (the same policy_validate() gate as
 * everywhere), before it is stored; the coordinator is then told through on_policy_added so it
 * can push it.
 *
 * Commands (request.command, request.args as typed after it on the memschedctl line):
 *   status                              fleet summary (hosts by liveness, VMs, memory, overcommit,
 *                                       VMs under pressure, decisions/min, current fleet policy)
 *   hosts                               one line per host: id, liveness, last seen, VMs, host
 *                                       memory, policy version held and its ack
 *   hosts-forget --host H               forget a host: fleet record, hosts row and acks
 *   vms [--host H] [--sort name|host|actual|unused] [--limit N]
 *   events [--since SEQ] [--limit N]
 *   policy-show [--scope S]             the keys each scope sets, how far the newest policy's
 *                                       fan-out has gone (looked at, pending, pushed, acked),
 *                                       and per host: the version it holds, the one it should,
 *                                       applied or refused and why
 *   policy-show --host H                H's effective policy, each value with its scope+version
 *   policy-set --scope S --reason TEXT KEY=VALUE...   sets keys at that scope (others inherit)
 *   policy-unset --scope S --reason TEXT KEY...       the scope stops setting them
 *   policy-delete --scope S --reason TEXT             the scope stops setting anything
 *   policy-rollback --scope S --to vN --reason TEXT   the scope sets what its vN set
 *   policy-wait --scope S               whether every host in S holds its effective policy
 * Policies layer (store.h): defaults < fleet < the host's label scopes < its host scope, key by
 * key. Each change is a new version; it is refused (nothing stored) unless every known host in
 * the scope, and the scope on its own, layers into a valid policy; its answer lists the hosts
 * whose effective policy changes, how many, and how many of those are connected.
 *   policy-history [--scope S] [--limit N]
 * Status codes (memschedctl's exit code): 0 ok, 2 usage (bad command or option), 3 refused
 * (invalid policy, or a host refused it), 4 not found (unknown host or scope), 5 internal
 * error, 6 denied (a read-only operator asked for a change), 7 pending (policy-wait). The author of
 * a change is req->author, which the coordinator sets to the asker's real identity (its uid over
 * ipc, its key's name over TCP).
 */
#ifndef MEMSCHED_COORDINATOR_CONTROL_H
#define MEMSCHED_COORDINATOR_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"
#include "history.h"
#include "store.h"
#include "wire.h"

enum control_status {
    CONTROL_OK = 0,
    CONTROL_USAGE = 2,
    CONTROL_REFUSED = 3,
    CONTROL_NOT_FOUND = 4,
    CONTROL_INTERNAL = 5,
    CONTROL_DENIED = 6,  /* a read-only operator asked for a change */
    CONTROL_PENDING = 7, /* policy-wait: some hosts have not acked yet */
};

/* How far the newest policy's fan-out has gone (the coordinator's count, shown by policy-show). */
struct control_fanout {
    uint64_t version; /* 0: no policy stored since the coordinator started */
    char scope[WIRE_SCOPE_MAX];
    uint64_t hosts;    /* connected hosts when it began */
    uint64_t visited;  /* looked at so far */
    uint64_t in_scope; /* of those, in its scope */
    uint64_t pushed;   /* hosts sent this version */
    uint64_t acked;    /* hosts that applied it */
    uint64_t refused;  /* hosts that refused it */
    bool done;         /* every host looked at */
};

struct control_context {
    struct fleet *fleet;
    struct store *store;
    const struct history *history; /* NULL: none kept (the history command says so) */
    uint64_t now_ms;               /* monotonic, the fleet's clock */
    uint64_t now_wall_ms;          /* wall clock, the store's and the tables' */
    uint64_t pressure_unused_kib;  /* a VM with less unused counts as under pressure */
    /* Called after a policy is stored, so the coordinator pushes it to the hosts in scope. */
    void (*on_policy_added)(void *ctx, uint64_t version, const char *scope);
    /* hosts forget: drop a host everywhere (fleet, sessions, store). 0, -ENOENT or -errno. */
    int (*forget_host)(void *ctx, const char *host_id, char *err, size_t err_len);
    /* The newest policy's fan-out into *out; NULL: policy-show shows none. */
    void (*fanout_progress)(void *ctx, struct control_fanout *out);
    void *ctx;
    /* The asker may only read (a key from admin_read_dir): policy-set and hosts-forget are
     * refused with CONTROL_DENIED. */
    bool read_only;
};

/* Answer req. Returns the status and sets *body to a new NUL-terminated string (the caller
 * frees it): a table, a JSON document (req->json), or an error message. */
enum control_status control_handle(const struct control_context *cc,
                                   const struct wire_control_request *req,
                                   char **body);

#endif /* MEMSCHED_COORDINATOR_CONTROL_H */

/*
 * control.h - the coordinator's answers to memschedctl: fleet state and policy as tables or
 * JSON, and policy changes.
 *
 * control_handle() reads the fleet (fleet.h) and the store (store.h) and renders one reply. It
 * does no socket I/O: the coordinator's loop receives the request and sends the reply. A
 * policy-set is validated by store_policy_add() (the same policy_validate() gate as everywhere)
 * before it is stored; the coordinator is then told through on_policy_added so it can push it.
 *
 * Commands (request.command, request.args as typed after it on the memschedctl line):
 *   status                              fleet summary (hosts by liveness, VMs, memory, overcommit,
 *                                       VMs under pressure, decisions/min, current fleet policy)
 *   hosts                               one line per host: id, liveness, last seen, VMs, host
 *                                       memory, policy version held and its ack
 *   hosts-forget --host H               forget a host: fleet record, hosts row and acks
 *   vms [--host H] [--sort name|host|actual|unused] [--limit N]
 *   events [--since SEQ] [--limit N]
 *   policy-show [--scope S]             the policy in force per scope, and per host: the version
 *                                       it holds, applied or refused and why
 *   policy-set --scope S --reason TEXT KEY=VALUE...   starts from the scope's current policy
 *                                       (or the fleet's, or the defaults) and changes the keys
 *   policy-history [--scope S] [--limit N]
 * Status codes (memschedctl's exit code): 0 ok, 2 usage (bad command or option), 3 refused
 * (invalid policy), 4 not found (unknown host or scope), 5 internal error, 6 denied (a
 * read-only operator asked for a change). The author of a change is req->author, which the
 * coordinator sets to the asker's real identity (its uid over ipc, its key's name over TCP).
 */
#ifndef MEMSCHED_COORDINATOR_CONTROL_H
#define MEMSCHED_COORDINATOR_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"
#include "store.h"
#include "wire.h"

enum control_status {
    CONTROL_OK = 0,
    CONTROL_USAGE = 2,
    CONTROL_REFUSED = 3,
    CONTROL_NOT_FOUND = 4,
    CONTROL_INTERNAL = 5,
    CONTROL_DENIED = 6, /* a read-only operator asked for a change */
};

struct control_context {
    struct fleet *fleet;
    struct store *store;
    uint64_t now_ms;              /* monotonic, the fleet's clock */
    uint64_t now_wall_ms;         /* wall clock, the store's and the tables' */
    uint64_t pressure_unused_kib; /* a VM with less unused counts as under pressure */
    /* Called after a policy is stored, so the coordinator pushes it to the hosts in scope. */
    void (*on_policy_added)(void *ctx, uint64_t version, const char *scope);
    /* hosts forget: drop a host everywhere (fleet, sessions, store). 0, -ENOENT or -errno. */
    int (*forget_host)(void *ctx, const char *host_id, char *err, size_t err_len);
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

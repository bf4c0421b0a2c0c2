/*
 * coordinator.h - the coordinator's protocol engine: one received message in, fleet state and
 * store updated, answers and policy pushes out.
 *
 * It owns the sessions (host id -> the connection it last spoke from, the CURVE key it said
 * hello with, what policy was pushed to it and what it answered). Trust boundaries:
 *  - a key is a host: under CURVE the transport names each message's key by the host id the
 *    allowlist binds to it, and a message (hello, report, heartbeat, ack) whose host id is not
 *    that name is dropped, counted (impostors) and logged with a rate limit, before any state
 *    is made for it, whether or not the real host is up and whatever the coordinator remembers;
 *  - no state for a stranger: a session, fleet record and hosts row are made only by a valid
 *    hello; anything else from an unknown host gets "say hello" and leaves nothing behind;
 *  - an ack counts only for the version pushed to that host, once per push: nothing else is
 *    stored or logged beyond a rate-limited complaint;
 *  - a host's own hellos rewrite its hosts row at most once a minute (or when the version it
 *    holds changes), and their "rejoined" lines are rate-limited per host.
 * Without CURVE (insecure, loopback only) there are no keys to bind: any local process may
 * speak for any host. Messages that fail wire_decode() are dropped, counted and logged with a
 * rate limit.
 *
 * Policy: on hello (and on any report or heartbeat that shows another version) the host gets
 * its effective policy, the layers of every scope that matches it merged (store_policy_for_host),
 * under the highest version among them (a host whose labels changed is pushed once even at the
 * version it holds: its layers, not their newest version, may have changed); a push not acked
 * within push_retry_ms is sent again; a version the agent refused is not pushed again to it.
 *
 * Sessions: a host has one, in one state (enum coordinator_session_state), from its first
 * valid hello: unknown (no session; everything but a hello gets "say hello") -> greeted (its
 * policy not looked up yet) -> current (holds what is in force for it, or nothing governs it) /
 * pushing (a push is on its way) / refused (it refused what is in force; not pushed again).
 * An ack moves pushing to current or refused; a new policy moves any of them to pushing.
 *
 * No reconnect flood: an agent's queued reports arriving after a coordinator restart (or once
 * its key is allowed) get one "say hello" per connection and host (SAY_HELLO_EVERY_MS), not one
 * each; a second hello on the same connection with the same labels and agent is taken as a
 * heartbeat (no event, no new push); a version is pushed to a host once per push_retry_ms.
 *
 * Events: every fleet event is logged (rejoins rate-limited per host) and kept in the store
 * before the call that made it returns, so `events` survives a restart and a seq once shown is
 * never handed out again; coordinator_restore_events() puts them back at start.
 *
 * No I/O of its own: messages come in decoded (coordinator_handle) or as bytes
 * (coordinator_receive decodes them), and go out through the send callback the daemon wires to
 * the transport (tests record them).
 */
#ifndef MEMSCHED_COORDINATOR_COORDINATOR_H
#define MEMSCHED_COORDINATOR_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "history.h"
#include "store.h"
#include "transport.h"
#include "wire.h"

#define COORDINATOR_PUSH_RETRY_MS     5000
#define COORDINATOR_HOST_RETENTION_MS (UINT64_C(7) * 24 * 3600 * 1000) /* a week down */
#define COORDINATOR_FORGET_PER_TICK   256 /* hosts forgotten per tick, at most */
#define COORDINATOR_FANOUT_PER_TURN   64  /* hosts a policy fan-out looks at per loop turn */

struct coordinator;

enum coordinator_session_state {
    COORDINATOR_SESSION_UNKNOWN = 0, /* no session: no valid hello yet (or forgotten) */
    COORDINATOR_SESSION_GREETED,     /* said hello; its policy not settled yet */
    COORDINATOR_SESSION_CURRENT,     /* holds the policy in force for it, or none governs it */
    COORDINATOR_SESSION_PUSHING,     /* the policy in force was pushed, no answer yet */
    COORDINATOR_SESSION_REFUSED,     /* it refused the policy in force: not pushed again */
};

/* One message out: msg's body for host_id, to the peer `to` (the daemon stamps the envelope,
 * encodes and sends it: wire_send). msg and to are borrowed for the call. */
typedef void (*coordinator_send_fn)(void *ctx,
                                    const struct transport_peer *to,
                                    const char *host_id,
                                    struct wire_msg *msg);

struct coordinator_counters {
    uint64_t sessions; /* hosts greeted and kept now (a gauge) */
    uint64_t messages;
    uint64_t rejected;        /* malformed or invalid messages */
    uint64_t impostors;       /* messages for a host id that is not their key's */
    uint64_t say_hello;       /* "unknown host" answers */
    uint64_t say_hello_held;  /* ...not sent: that connection was asked a moment ago */
    uint64_t hellos_repeated; /* a second hello on one connection, taken as a heartbeat */
    uint64_t pushes;
    uint64_t acks_applied;
    uint64_t acks_refused;
    uint64_t acks_ignored;    /* for a version not pushed to that host, or answered already */
    uint64_t hosts_forgotten; /* down past the retention, or by an operator */
    uint64_t logs_suppressed; /* event lines held back by a per-host rate limit */
};

/* Borrows fleet and store; they must outlive the coordinator. Every message out goes to
 * send(send_ctx, ...). */
struct coordinator *
coordinator_new(struct fleet *fleet, struct store *store, coordinator_send_fn send, void *send_ctx);

void coordinator_destroy(struct coordinator **coordinator);

/* One decoded (and validated: wire_decode) message from an agent, borrowed. now_ms is
 * monotonic, now_wall_ms wall clock. */
void coordinator_handle(struct coordinator *c,
                        const struct transport_peer *from,
                        const struct wire_msg *msg,
                        uint64_t now_ms,
                        uint64_t now_wall_ms);

/* One message from an agent as received: decoded, then coordinator_handle(); what fails to
 * decode is dropped, counted (rejected) and logged with a rate limit. */
void coordinator_receive(struct coordinator *c,
                         const struct transport_peer *from,
                         const uint8_t *buf,
                         size_t len,
                         uint64_t now_ms,
                         uint64_t now_wall_ms);

/* Put the events the store kept (from before a restart) back into the fleet, so `events`
 * shows them and new ones number on; call once, after coordinator_new(), before any message.
 * Returns 0 or the store's -errno with err. */
int coordinator_restore_events(
    struct coordinator *c, uint64_t now_ms, uint64_t now_wall_ms, char *err, size_t err_len);

/* Periodic work: liveness, event logging (and keeping in the store), push retries. */
void coordinator_tick(struct coordinator *c, uint64_t now_ms, uint64_t now_wall_ms);

/* Hosts down for longer than retention_ms are forgotten by coordinator_tick() (fleet record,
 * session, hosts row and acks), so a decommissioned host costs nothing forever. 0 = never;
 * the default is COORDINATOR_HOST_RETENTION_MS. */
void coordinator_set_host_retention(struct coordinator *c, uint64_t retention_ms);

/* Record every applied report into history (borrowed; NULL: none), and forget a forgotten
 * host's there too. */
void coordinator_set_history(struct coordinator *c, struct history *history);

/* Forget a host now (memschedctl hosts forget): fleet record, session, hosts row and acks. A
 * host that is still up says hello again and is back. Returns 0, or -ENOENT when neither the
 * fleet nor the store knew it, or -EIO with err. */
int coordinator_forget_host(
    struct coordinator *c, const char *host_id, uint64_t now_ms, char *err, size_t err_len);

/* How far the fan-out of the newest stored policy has gone (coordinator_fanout_progress). */
struct coordinator_fanout {
    uint64_t version;           /* 0: no policy stored since start */
    char scope[WIRE_SCOPE_MAX]; /* the scope it was stored under */
    uint64_t hosts;             /* hosts with a session when it began: what it will look at */
    uint64_t visited;           /* looked at so far (hosts - visited are still to come) */
    uint64_t in_scope;          /* of those, in its scope */
    uint64_t pushed;            /* hosts sent this version, by the fan-out, a hello or a report */
    uint64_t acked;             /* hosts that applied it */
    uint64_t refused;           /* hosts that refused it */
    bool done;                  /* every host looked at */
};

/* A policy was stored (set, unset, delete or rollback of scope): its fan-out begins, and a
 * newer one supersedes one not finished. Nothing is sent here: coordinator_fanout_step() pushes
 * to the hosts in scope a few at a time, so one policy set never holds the loop for long (and
 * any host that reports in the meantime is offered it at once). */
void coordinator_policy_added(struct coordinator *c, uint64_t version, const char *scope);

/* Offer the policy of the fan-out under way to the next hosts, looking at max_hosts of them at
 * most (a whole hash bucket may go over by a few). Returns true while hosts remain: the caller
 * comes back soon (its loop polls without waiting until then). */
bool coordinator_fanout_step(struct coordinator *c, size_t max_hosts, uint64_t now_ms);

/* The newest fan-out's progress, into *out. */
void coordinator_fanout_progress(const struct coordinator *c, struct coordinator_fanout *out);

const struct coordinator_counters *coordinator_get_counters(const struct coordinator *c);

/* The session state of host_id (COORDINATOR_SESSION_UNKNOWN when it has none). */
enum coordinator_session_state coordinator_session_state(const struct coordinator *c,
                                                         const char *host_id);

/* "unknown", "greeted", "current", "pushing", "refused". */
const char *coordinator_session_state_name(enum coordinator_session_state state);

#endif /* MEMSCHED_COORDINATOR_COORDINATOR_H */

/*
 * link.h - the agent's side of the coordinator protocol.
 *
 * One transport client per coordinator endpoint; every message goes to all of them, so any
 * coordinator has the whole picture. The link says hello at start, again when a connection
 * comes (back) up or a coordinator asks; reports when the agent's cadence says so (cadence.h);
 * heartbeats when nothing else was said for a while. A pushed policy is handed to the agent's own
 * gate (on_push), and the verdict is acked: applied, or refused with the reason. The link never
 * blocks the agent: a coordinator outage only fills (and trims) the transport's bounded queue.
 *
 * The protocol (sessions, hello, push -> gate -> ack) takes decoded messages and emits its
 * replies through a callback, so it is tested without sockets (link_new); link_open puts it
 * over the transport, whose only sender is one small function in link.c.
 */
#ifndef MEMSCHED_AGENT_LINK_H
#define MEMSCHED_AGENT_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "round.h"
#include "wire.h"

#define LINK_ENDPOINTS_MAX 4

struct link_options {
    const char *endpoints[LINK_ENDPOINTS_MAX];
    size_t n_endpoints;
    const char *server_key_path; /* the coordinators' public key (pinned) */
    const char *key_path;        /* this agent's key pair */
    bool insecure;               /* loopback only */
    const char *host_id;
    struct wire_label labels[WIRE_LABELS_MAX];
    size_t n_labels;
    uint64_t policy_version; /* the fleet policy held at start (0 = none) */
    uint64_t policy_epoch;   /* the store epoch it came with (0 = unknown) */
};

/* Decide on a pushed policy: 0 when applied, or a negative errno with why filled. The link
 * remembers the epoch of the last push applied and says it in every hello. */
typedef int (*link_push_fn)(void *ctx,
                            const struct wire_policy_push *push,
                            char *why,
                            size_t why_len);

/* Where the protocol's messages go: to endpoint `which`, or to every one (LINK_ALL). The body
 * is filled; the envelope (protocol version, host id, sequence) is the sender's to stamp. msg
 * is borrowed for the call. */
typedef void (*link_emit_fn)(void *ctx, size_t which, struct wire_msg *msg);
#define LINK_ALL SIZE_MAX

/* One session per endpoint. A coordinator may restart or be replaced behind a connection, so
 * a new connection is greeted anew and its push verdicts are per endpoint.
 *   connecting --connected--> greeted   (the hello queued at start goes first)
 *   any other  --connected--> greeted   (a new hello on the new connection)
 *   any        --say hello--> greeted   (a coordinator that does not know us)
 *   any        --push-------> current (applied, acked) | refused (acked with the reason) */
enum link_state {
    LINK_STATE_CONNECTING = 0,
    LINK_STATE_GREETED,
    LINK_STATE_CURRENT,
    LINK_STATE_REFUSED,
};

struct link;

/* The protocol alone, no transport: messages go to emit (tests, and link_open's own sender).
 * Says hello to every endpoint at once. Returns 0 or -EINVAL with err filled (bad host id). */
int link_new(const struct link_options *opts,
             link_emit_fn emit,
             void *emit_ctx,
             struct link **out,
             char *err,
             size_t err_len);

/* The same over one transport client per endpoint (libzmq behind common/transport). */
int link_open(const struct link_options *opts, struct link **out, char *err, size_t err_len);

/* Frees a link from either; closes its transport clients, if any. NULL-safe, nulls *link. */
void link_destroy(struct link **link);

/* The protocol's inputs: a connection to endpoint `which` came (back) up; a decoded message
 * from it (a push goes through on_push and is acked to that endpoint). link_poll() feeds them
 * from the transport. */
void link_connected(struct link *link, size_t which, uint64_t policy_version);
void link_receive(struct link *link,
                  size_t which,
                  const struct wire_msg *msg,
                  uint64_t policy_version,
                  link_push_fn on_push,
                  void *ctx);

/* New labels (a reloaded config): kept for every later hello, and a hello to every endpoint
 * now so the coordinators see them. */
void link_set_labels(struct link *link,
                     const struct wire_label *labels,
                     size_t n_labels,
                     uint64_t policy_version);

enum link_state link_get_state(const struct link *link, size_t which);
const char *link_state_name(enum link_state state);

/* After a round: what was sampled and decided, and the totals so far. */
void link_report(struct link *link,
                 const struct round_view *view,
                 const struct round_counters *counters,
                 uint64_t policy_version);

/* When there is nothing to report. */
void link_heartbeat(struct link *link, uint64_t policy_version);

/* Wait up to timeout_ms for the coordinators; pushes go through on_push and are acked. Does
 * nothing on a link without transport. */
void link_poll(
    struct link *link, int timeout_ms, uint64_t policy_version, link_push_fn on_push, void *ctx);

/* Messages dropped from full queues, over all endpoints. */
uint64_t link_dropped(struct link *link);

/* Hellos said so far: a rise means a coordinator was greeted anew (it may know nothing of this
 * host's numbers yet). */
uint64_t link_hellos(const struct link *link);

/* Received messages refused (malformed, or not for this host). */
uint64_t link_rejected(const struct link *link);

#endif /* MEMSCHED_AGENT_LINK_H */

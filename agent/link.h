/*
 * link.h - the agent's side of the coordinator protocol.
 *
 * One transport client per coordinator endpoint; every message goes to all of them, so any
 * coordinator has the whole picture. The link says hello at start, again when a connection
 * comes (back) up or a coordinator asks; reports after every round; heartbeats when rounds
 * cannot report (libvirtd away). A pushed policy is handed to the agent's own gate (on_push),
 * and the verdict is acked: applied, or refused with the reason. The link never blocks the
 * agent: a coordinator outage only fills (and trims) the transport's bounded queue.
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

struct link;

int link_new(const struct link_options *opts, struct link **out, char *err, size_t err_len);

void link_destroy(struct link **link);

/* After a round: what was sampled and decided, and the totals so far. */
void link_report(struct link *link,
                 const struct round_view *view,
                 const struct round_counters *counters,
                 uint64_t policy_version);

/* When there is nothing to report. */
void link_heartbeat(struct link *link, uint64_t policy_version);

/* Wait up to timeout_ms for the coordinators; pushes go through on_push and are acked. */
void link_poll(
    struct link *link, int timeout_ms, uint64_t policy_version, link_push_fn on_push, void *ctx);

/* Messages dropped from full queues, over all endpoints. */
uint64_t link_dropped(struct link *link);

#endif /* MEMSCHED_AGENT_LINK_H */

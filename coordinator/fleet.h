/*
 * fleet.h - the coordinator's picture of the fleet: a pure core.
 *
 * It owns one record per host (identity, labels, agent version, the policy version it holds,
 * first/last seen, its last report: host memory, every VM's stats, counters) and a bounded ring of
 * each host's recent decisions, plus a bounded log of fleet events. It does no I/O, reads no
 * clock (every call that needs the time takes now_ms, monotonic) and never logs: it returns codes
 * and records events that the caller reads back and logs.
 *
 * Invariants:
 *  - hosts are found by id through a hash table (open addressing, load <= 1/2);
 *  - a host's VMs are those of its newest applied report, sorted by uuid, names in one arena;
 *    a report replaces the whole set, and one with a sequence at or below the last applied
 *    report's changes nothing;
 *  - liveness changes only in fleet_tick(), which records each transition exactly once;
 *  - event sequence numbers start at 1 and never repeat, so a reader can ask for what it has not
 *    seen yet; the log keeps the newest events_max.
 *
 * Pointers handed out (struct fleet_host_info fields, VM names, callback arguments) are borrowed:
 * they stay valid until the next call that changes the fleet.
 */
#ifndef MEMSCHED_COORDINATOR_FLEET_H
#define MEMSCHED_COORDINATOR_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scope.h"
#include "wire.h"

#define FLEET_STALE_AFTER_MS_DEFAULT     3000
#define FLEET_DOWN_AFTER_MS_DEFAULT      10000
#define FLEET_DECISIONS_PER_HOST_DEFAULT 64
#define FLEET_EVENTS_MAX_DEFAULT         1024
#define FLEET_HOSTS_MAX_DEFAULT          100000
#define FLEET_UUID_BYTES                 16
#define FLEET_LABEL_MAX                  SCOPE_LABEL_MAX /* a host label, "K=V" */
#define FLEET_REASON_NONE                0xff /* fleet_vm.last_reason: no decision seen yet */

enum fleet_liveness {
    FLEET_LIVENESS_FRESH = 0, /* last message younger than stale_after_ms */
    FLEET_LIVENESS_STALE,     /* younger than down_after_ms */
    FLEET_LIVENESS_DOWN,
};
#define FLEET_LIVENESS_STATES 3

enum fleet_event_kind {
    FLEET_EVENT_JOINED = 0,     /* first hello from this host */
    FLEET_EVENT_REJOINED,       /* hello from a known host: its agent restarted or reconnected */
    FLEET_EVENT_STALE,          /* fresh -> stale */
    FLEET_EVENT_DOWN,           /* fresh or stale -> down */
    FLEET_EVENT_BACK,           /* stale or down -> fresh */
    FLEET_EVENT_POLICY_APPLIED, /* the agent acked a policy version as applied */
    FLEET_EVENT_POLICY_REFUSED, /* the agent refused it; detail says why */
    FLEET_EVENT_REMOVED,        /* fleet_remove() */
};

enum fleet_vm_key {
    FLEET_VM_KEY_NAME = 0,
    FLEET_VM_KEY_HOST,   /* host id, then uuid */
    FLEET_VM_KEY_ACTUAL, /* balloon size */
    FLEET_VM_KEY_UNUSED, /* VMs that report no unused memory sort after all that do */
};

/* Limits given at creation; a zero field takes its default. stale_after_ms < down_after_ms. */
struct fleet_opts {
    uint64_t stale_after_ms;
    uint64_t down_after_ms;
    size_t decisions_per_host; /* ring of recent decisions per host */
    size_t events_max;         /* ring of recent fleet events */
    size_t hosts_max;          /* fleet_hello() refuses new hosts beyond this (-ENOSPC) */
};

/* One VM as last reported, kept compact (10,000 hosts x 50 VMs live in memory). */
struct fleet_vm {
    uint64_t max_kib;
    uint64_t actual_kib;
    uint64_t target_kib;   /* 0 = none set */
    uint64_t unused_kib;   /* meaningful when has_unused */
    uint64_t usable_kib;   /* meaningful when has_usable */
    const char *name;      /* borrowed, "" when the agent sent none */
    uint32_t stats_age_ms; /* clamped to UINT32_MAX */
    uint8_t uuid[FLEET_UUID_BYTES];
    uint8_t state;       /* enum sched_vm_state */
    uint8_t last_reason; /* enum sched_reason of the newest decision about it, or FLEET_REASON_NONE;
                            carried over from report to report while the VM stays */
    uint8_t skip_reason; /* why the agent leaves it alone: a step-2 enum sched_reason, or
                            WIRE_SKIP_OTHER (a newer agent's); FLEET_REASON_NONE when managed */
    uint16_t weight;     /* the operator's overrides (0 = none); MiB keeps 50,000 x 50 VMs small */
    uint32_t min_mib;
    uint32_t cap_mib;
    bool has_unused : 1;
    bool has_usable : 1;
    bool managed : 1;
    bool stuck : 1;
};

enum fleet_counterpart {
    FLEET_COUNTERPART_NONE = 0,
    FLEET_COUNTERPART_HOST,
    FLEET_COUNTERPART_VM, /* counterpart_uuid holds it */
};

/* One decision, as received in a report, stamped with the time it arrived. */
struct fleet_decision {
    uint64_t at_ms;
    uint64_t old_target_kib;
    uint64_t new_target_kib;
    uint8_t uuid[FLEET_UUID_BYTES];
    uint8_t counterpart_uuid[FLEET_UUID_BYTES];
    uint8_t counterpart; /* enum fleet_counterpart */
    uint8_t reason;      /* enum sched_reason */
    /* What the round saw and worked out, in MiB (saturating) to keep the ring small: the demand
     * signal, the need, the look-ahead, and the memory moved to or from VMs and the host. */
    uint32_t signal_mib, need_mib, lookahead_mib, vm_mib, host_mib;
    uint64_t policy_version; /* the version the agent held when it decided */
};

/* A read-only view of one host; every pointer is borrowed. */
struct fleet_host_info {
    const char *host_id;
    const char *agent_version;
    const char *const *labels; /* "KEY=VALUE" each */
    size_t n_labels;
    uint64_t policy_version; /* held, as the agent last said (hello, heartbeat, report or ack) */
    uint64_t first_seen_ms;
    uint64_t last_seen_ms;        /* any message */
    enum fleet_liveness liveness; /* as of the last fleet_tick() */
    uint64_t last_ack_version;    /* 0 = no ack yet */
    bool last_ack_applied;
    bool has_report;
    uint64_t last_report_ms;
    uint64_t report_sequence; /* sequence of the last applied report */
    uint64_t host_total_kib;
    uint64_t host_available_kib;
    struct wire_counters counters;
    const struct fleet_vm *vms; /* sorted by uuid */
    size_t n_vms;
    uint64_t vms_total;     /* the host's VMs: more than n_vms when its report was cut */
    uint64_t vm_actual_kib; /* sums over vms */
    uint64_t vm_max_kib;
    size_t n_decisions;       /* in the ring: fleet_host_decisions() copies them */
    uint64_t decisions_total; /* ever received from this host */
    /* The same count by reason, and the KiB the targets moved (|new - old|) by reason: counters
     * for as long as the host is known (the metrics' _total series). */
    const uint64_t *decisions_by_reason;  /* SCHED_REASON_COUNT entries */
    const uint64_t *moved_kib_by_reason;  /* SCHED_REASON_COUNT entries */
    const struct policy *policy_in_force; /* the thresholds of its last report; NULL: unknown */
};

struct fleet_event {
    uint64_t seq;        /* 1, 2, ...: never reused */
    uint64_t at_ms;      /* monotonic; for a restored event, the restore's time */
    uint64_t at_wall_ms; /* wall clock of a restored event (fleet_event_restore); else 0 */
    enum fleet_event_kind kind;
    char host_id[WIRE_HOST_ID_MAX];
    enum fleet_liveness from;     /* liveness events: the state left */
    uint64_t policy_version;      /* policy events; the version held for joined/rejoined */
    char detail[WIRE_REASON_MAX]; /* refusal reason; agent version for joined/rejoined */
};

struct fleet_totals {
    size_t hosts;
    size_t hosts_by_liveness[FLEET_LIVENESS_STATES]; /* indexed by enum fleet_liveness */
    size_t hosts_reporting; /* hosts with a report that are not down: the sums cover these */
    size_t vms;
    size_t vms_under_pressure; /* unused below the threshold given, or last decision need_unmet */
    uint64_t vm_actual_kib;
    uint64_t vm_max_kib;
    uint64_t host_total_kib;
    uint64_t host_available_kib;
    double overcommit; /* vm_max_kib / host_total_kib; 0 when no host memory is known */
    uint64_t decisions_last_minute;
};

struct fleet;

/* Callbacks return 0 to go on; a positive value stops the walk (the walk returns 0), a negative
 * one stops it and is returned. They must not change the fleet. */
typedef int (*fleet_host_cb)(const struct fleet_host_info *host, void *ctx);
typedef int (*fleet_vm_cb)(const char *host_id, const struct fleet_vm *vm, void *ctx);
typedef int (*fleet_event_cb)(const struct fleet_event *event, void *ctx);

/* opts may be NULL (all defaults). Aborts on out-of-memory; asserts stale < down. */
struct fleet *fleet_new(const struct fleet_opts *opts);

void fleet_destroy(struct fleet **fleet);

/* A host says hello (first contact, or its agent restarted or reconnected): records its labels,
 * agent version and policy version, restarts its sequence numbering (a restarted agent counts
 * from the beginning again) and keeps its last report. Records JOINED or REJOINED.
 * Returns 0, -EINVAL for a bad host id or label, -ENOSPC when hosts_max is reached. */
int fleet_hello(struct fleet *fleet,
                const char *host_id,
                const struct wire_hello *hello,
                uint64_t now_ms);

/* Apply a report: host memory, counters, the policy version it holds; the VM set is replaced by
 * the report's; its decisions go into the host's ring and the decisions-per-minute count.
 * Returns 0 when applied, 1 when ignored (sequence at or below the last applied report's: a
 * duplicate or reordered report changes nothing), -ENOENT for an unknown host (the caller
 * answers "say hello"), -EINVAL for a malformed report (nothing changed). */
int fleet_report(struct fleet *fleet,
                 const char *host_id,
                 uint64_t sequence,
                 const struct wire_report *report,
                 uint64_t now_ms);

/* A heartbeat: the host is alive and holds policy_version. Returns 0, 1 when ignored (sequence
 * at or below the newest message applied from this host) or -ENOENT for an unknown host. */
int fleet_heartbeat(struct fleet *fleet,
                    const char *host_id,
                    uint64_t sequence,
                    uint64_t policy_version,
                    uint64_t now_ms);

/* An agent's answer to a policy push. Records POLICY_APPLIED or POLICY_REFUSED (with the reason);
 * an applied version becomes the version the host holds. Returns 0 or -ENOENT. */
int fleet_policy_ack(struct fleet *fleet,
                     const char *host_id,
                     const struct wire_policy_ack *ack,
                     uint64_t now_ms);

/* The host's last answer to a push as kept from before a restart (the store's): taken only
 * while the fleet has seen no answer from it, so a live ack always wins. Records no event and
 * does not count as a message from the host. Returns 0, 1 when the fleet had an answer
 * already (nothing changed), -ENOENT for an unknown host, -EINVAL for version 0. */
int fleet_ack_restore(struct fleet *fleet, const char *host_id, uint64_t version, bool applied);

/* Forget a host (an operator removed it). Records REMOVED. Returns 0 or -ENOENT. */
int fleet_remove(struct fleet *fleet, const char *host_id, uint64_t now_ms);

/* Derive every host's liveness from the age of its last message and record each change as an
 * event, once; cb (may be NULL) sees each of them too. Call it regularly (every few hundred ms).
 * Returns the number of transitions. */
size_t fleet_tick(struct fleet *fleet, uint64_t now_ms, fleet_event_cb cb, void *ctx);

/* Walk the events after seq (0 = all kept), oldest first. Returns 0 or what cb returned. */
int fleet_events(const struct fleet *fleet, uint64_t after_seq, fleet_event_cb cb, void *ctx);

/* Put back an event kept from before a restart (the store's), oldest first: its seq must be
 * above every event's so far, and new events number on from it. Returns 0, or -EINVAL (a seq
 * not above the newest, a bad host id, kind or state: nothing changed). */
int fleet_event_restore(struct fleet *fleet, const struct fleet_event *event);

/* The newest event's sequence number (0 before any). */
uint64_t fleet_last_event_seq(const struct fleet *fleet);

size_t fleet_host_count(const struct fleet *fleet);

/* VMs of every host, down ones included (fleet_vms_each() lists them all). */
/* VMs in host order (host id, then uuid) from the first host whose id is not below from_host
 * (NULL: all): a page of VMs starts at its cursor's host, with no walk or sort of the whole
 * fleet. A cb returning 1 ends the walk. Returns 0 or what cb returned below 0. */
int
fleet_vms_each_from(const struct fleet *fleet, const char *from_host, fleet_vm_cb cb, void *ctx);

size_t fleet_vm_count(const struct fleet *fleet);

/* Fill *info for host_id. Returns 0 or -ENOENT. */
int fleet_host_get(const struct fleet *fleet, const char *host_id, struct fleet_host_info *info);

/* Copy up to cap of the host's recent decisions into out, newest first. Returns how many. */
size_t fleet_host_decisions(const struct fleet *fleet,
                            const char *host_id,
                            struct fleet_decision *out,
                            size_t cap);

/* Walk every host sorted by id. Returns 0 or what cb returned. */
int fleet_hosts_each(const struct fleet *fleet, fleet_host_cb cb, void *ctx);

/* The same from the first host whose id sorts after after (all of them for NULL): a page
 * starts there without a walk over the hosts before it. A cb returning 1 ends the walk. */
int
fleet_hosts_each_after(const struct fleet *fleet, const char *after, fleet_host_cb cb, void *ctx);

/* Walk the VMs of the whole fleet sorted by key (ascending, or descending), ties by host id
 * then uuid; with limit > 0 only the first limit of that order. A full sort of 500,000 VMs
 * takes ~0.2 s of the caller's thread; a limit of tens takes a tenth of that: meant for
 * operators, not for every message. Returns 0 or what cb returned. */
int fleet_vms_each(const struct fleet *fleet,
                   enum fleet_vm_key key,
                   bool descending,
                   size_t limit,
                   fleet_vm_cb cb,
                   void *ctx);

/* The "under pressure" threshold for a VM's unused memory (e.g. the fleet policy's
 * vm_min_unused_kib) the fleet keeps its count of VMs under pressure at (0 until set). Setting
 * another one recounts every host once. */
void fleet_set_pressure_threshold(struct fleet *fleet, uint64_t pressure_unused_kib);

/* Fleet totals, kept up to date as reports and liveness changes apply: no host is visited,
 * unless pressure_unused_kib is not the threshold set (then the VMs under pressure are counted
 * by a walk of every VM). */
void fleet_totals(const struct fleet *fleet,
                  uint64_t now_ms,
                  uint64_t pressure_unused_kib,
                  struct fleet_totals *totals);


/* Text of a uuid (lower-case, 36 characters and the NUL) into out. */
void fleet_uuid_format(const uint8_t uuid[FLEET_UUID_BYTES], char out[WIRE_UUID_LEN]);

/* Parse a uuid's text (either case). Returns 0 or -EINVAL. */
int fleet_uuid_parse(const char *text, uint8_t uuid[FLEET_UUID_BYTES]);

/* "fresh", "stale", "down". */
const char *fleet_liveness_name(enum fleet_liveness liveness);

/* "joined", "stale", "policy_refused"... */
const char *fleet_event_kind_name(enum fleet_event_kind kind);

#endif /* MEMSCHED_COORDINATOR_FLEET_H */

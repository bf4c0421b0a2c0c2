/*
 * cadence.h - when the agent reports to its coordinators: on its own period, or sooner when
 * the round has news for them.
 *
 * A report (host and VM numbers, the round's decisions) costs the coordinator per VM in it; at
 * 50,000 hosts one per round would be 50,000 reports a second. So a round is reported when
 *   - it made decisions (always, at once: the coordinator's decision counts and events are
 *     exact, whatever round made them, a poll between rounds included),
 *   - a coordinator was greeted anew since the last report (a restarted coordinator knows the
 *     host but none of its numbers),
 *   - the thresholds planned with changed (a push or a reload: the coordinator explains
 *     decisions with the thresholds of the last report),
 *   - the VM set changed: a VM came or went, or one's state, skip reason, stuck flag, stats
 *     presence or metadata (managed, min, cap, weight) changed,
 *   - a number moved materially since the last report sent (cadence_moved()),
 *   - or the period is up (report_interval_ms): the coordinator's copy is never older.
 * Otherwise it is not; heartbeats keep the host fresh in between (agent.c).
 *
 * cadence_check() is the rule, pure over plain structs; struct cadence holds the last report
 * sent and feeds it the round's view. Single-threaded, no clock, no logging.
 */
#ifndef MEMSCHED_AGENT_CADENCE_H
#define MEMSCHED_AGENT_CADENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "round.h"

/* A number moves materially when it changes by more than the larger of these: 64 MiB is the
 * default release step (one round's move of one donor), well above the few MiB guest stats
 * drift by on a quiet guest, and 1/16 keeps large hosts and VMs, whose numbers churn by more,
 * from reporting every round over what is a small share of them. */
#define CADENCE_MOVE_MIN_KIB  (64u * 1024u)
#define CADENCE_MOVE_FRACTION 16u

/* One VM as a report showed it, in the terms the rule compares. */
struct cadence_vm {
    uint64_t status_hash; /* uuid, state, managed, stuck, skip reason, stats present, metadata */
    uint64_t actual_kib;
    uint64_t unused_kib;
    uint64_t usable_kib;
};

/* A round as the rule sees it. */
struct cadence_round {
    uint64_t available_kib; /* the host's */
    size_t n_decisions;
    uint64_t hellos;      /* the link's hellos so far: a rise means a coordinator greeted anew */
    uint64_t policy_hash; /* of the thresholds planned with (0: none) */
    const struct cadence_vm *vms;
    size_t n_vms;
};

enum cadence_reason {
    CADENCE_QUIET = 0, /* not to be reported */
    CADENCE_FIRST,     /* nothing reported yet */
    CADENCE_DECISIONS,
    CADENCE_HELLO,
    CADENCE_POLICY,
    CADENCE_VMS,
    CADENCE_MOVED,
    CADENCE_PERIOD,
};

/* Whether round now is reported at now_ms, given the last report sent (NULL: none) and when
 * the next is due by the period; the first reason that holds, in the order of the enum. A VM
 * list in another order counts as changed: a spare report, never a missed one. */
enum cadence_reason cadence_check(const struct cadence_round *last,
                                  const struct cadence_round *now,
                                  uint64_t now_ms,
                                  uint64_t due_ms);

/* was -> now by more than max(CADENCE_MOVE_MIN_KIB, was / CADENCE_MOVE_FRACTION). */
bool cadence_moved(uint64_t was_kib, uint64_t now_kib);

/* When the next report is due after one sent at now_ms, the last having been due at due_ms.
 * An early one (news) starts the period anew. One sent for the period stays on its grid
 * (due_ms + period_ms), or now_ms when that is past: counted from now_ms, a round a millisecond
 * late would put the next one past the next round, and with the period equal to the round
 * interval every other report would be lost. */
uint64_t cadence_next_due_ms(uint64_t due_ms, uint64_t now_ms, uint64_t period_ms);

/* "-", "first", "decisions", "hello", "policy", "vms", "moved", "period". */
const char *cadence_reason_name(enum cadence_reason reason);

struct cadence;

struct cadence *cadence_new(void);
void cadence_destroy(struct cadence **cadence);

/* The rule for the round in view (borrowed for the call), the link having said hellos hellos. */
enum cadence_reason cadence_due(struct cadence *cadence,
                                const struct round_view *view,
                                uint64_t hellos,
                                uint64_t now_ms);

/* The round last passed to cadence_due() was reported at now_ms; the next is due within
 * period_ms. */
void cadence_sent(struct cadence *cadence, uint64_t now_ms, uint64_t period_ms);

/* The period changed (a reload): the next round is reported, and the new period counts from
 * there, instead of the old one running out first (a minute, when it was a minute). */
void cadence_expire(struct cadence *cadence);

#endif /* MEMSCHED_AGENT_CADENCE_H */

/*
 * round.h - one agent round: sample -> track -> plan -> check -> apply (shrinks first) -> log.
 *
 * The round owns the buffers it reuses every round (samples, snapshot, the scheduler's work
 * area) and the tracker. It never exits or blocks on the hypervisor's behalf: a hypervisor that
 * is away makes the round fail with -ENOTCONN, logged once per outage, and the next round tries
 * again. A plan that breaks an invariant (sched_check_plan) is logged and not applied.
 * Time comes in as now_ms (monotonic, or the sim's fake clock in tests).
 */
#ifndef MEMSCHED_AGENT_ROUND_H
#define MEMSCHED_AGENT_ROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv.h"
#include "policy.h"
#include "sched.h"
#include "state.h"

struct round;

/* Totals since the round was made. */
struct round_counters {
    uint64_t rounds;           /* rounds that planned */
    uint64_t failed_rounds;    /* rounds that could not sample */
    uint64_t grows;            /* targets raised */
    uint64_t shrinks;          /* targets lowered */
    uint64_t granted_kib;      /* memory given to VMs */
    uint64_t transferred_kib;  /* of which from other VMs */
    uint64_t host_granted_kib; /* of which from the host */
    uint64_t reclaimed_kib;    /* memory returned to the host */
    uint64_t apply_failures;   /* set_target calls that failed */
    uint64_t plans_refused;    /* plans that broke an invariant */
    uint64_t vms_fed;          /* distinct VMs that were ever grown */
};

/* The last round, borrowed until the next call: what was sampled and what was decided. */
struct round_view {
    const struct hv_host *host;
    const struct hv_vm *vms;             /* n_vms samples */
    const struct sched_host *sched_host; /* the scheduler's host input */
    const struct sched_vm *snapshot;     /* n_vms scheduler inputs, same order */
    const struct sched_plan *plan;
    const struct policy *policy;               /* the plan's thresholds; NULL before one */
    const struct sched_entry *const *entry_of; /* per VM index: its plan entry */
    const uint64_t
        *sample_seen_ms;      /* per VM: when its guest stats sample was first seen, 0 = none */
    uint64_t now_ms;          /* when the round ran */
    const bool *apply_failed; /* per VM: its planned target could not be set */
    size_t n_vms;
    bool applied; /* every planned target was set: false in dry-run, after a refused plan, a
                   * failed sample or a failed set */
};

struct round *round_new(struct hv *hv, bool dry_run);

/* After the last plan: is some VM using memory fast, waiting for memory, or close to needing
 * it (outlook below the grow target)? Then its next guest stats sample is worth looking for
 * several times a stats period; otherwise the round interval is enough. */
bool round_watchful(const struct round *round);

/* Plan without applying (true) or apply again (false), from the next round on. */
void round_set_dry_run(struct round *round, bool dry_run);

void round_destroy(struct round **round);

/* One round under policy (which must have passed policy_validate()). Returns 0, -ENOTCONN when
 * the hypervisor is away (before or during the apply), -EPROTO when the plan was refused, -EIO
 * when a target could not be set (the rest of the plan was applied, less what the failed
 * shrinks were to fund), or another negative errno. */
int round_run(struct round *round, const struct policy *policy, uint64_t now_ms);

/* A cheap look between rounds: sample, and plan and apply only when a guest has sent a new
 * stats sample (or a VM came or went) since the last plan, so need is answered within a
 * fraction of a stats period instead of up to a round later. Returns 1 when it planned, 0 when
 * there was nothing new, or round_run's errors. */
int round_poll(struct round *round, const struct policy *policy, uint64_t now_ms);

void round_get_view(const struct round *round, struct round_view *view);

/* Take up targets set before a restart (state_load_targets), as if set at now_ms. */
void round_seed_targets(struct round *round,
                        const struct state_target *targets,
                        size_t n,
                        uint64_t now_ms);

/* The targets of the last round's VMs that the balloon has not reached yet, up to cap, into
 * out; returns how many there are. */
size_t round_targets_in_flight(const struct round *round, struct state_target *out, size_t cap);

const struct round_counters *round_get_counters(const struct round *round);

#endif /* MEMSCHED_AGENT_ROUND_H */

/*
 * eval.h - the what-if evaluator: a sim scenario run on the fake clock under one planner, and
 * the figures that say how well the guests were fed and the host kept (memsched-eval).
 *
 * Planners: memsched itself runs the agent's real round (tracker, plan, check, apply, the fast
 * polling while a VM is watched); the baselines (baseline.h) plan from the same samples through
 * the same port, each on its own shipped cycle. Every figure is measured on the sim's true state,
 * not on what a planner believed, in steps of 100 ms of sim time.
 */
#ifndef MEMSCHED_AGENT_EVAL_H
#define MEMSCHED_AGENT_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define EVAL_ERR_MAX      512
#define EVAL_EPISODES_MAX 4096 /* pressure episodes kept for the relief times */

enum eval_planner {
    EVAL_MEMSCHED = 0, /* the agent's round under the policy given */
    EVAL_SEED,         /* shared/seed/MemoryScheduler.md's pair loop, literally */
    EVAL_PROXMOX,      /* Proxmox VE auto-ballooning */
    EVAL_MOM,          /* oVirt MOM's shipped balloon policy */
    EVAL_PLANNERS,
};

struct eval_options {
    const char *scenario; /* a sim scenario file */
    enum eval_planner planner;
    struct policy policy; /* thresholds: memsched's policy, and what "pressure" means */
    uint64_t duration_ms; /* 0: the scenario's duration_s, else EVAL_DEFAULT_DURATION_MS */
    const char *record;   /* a CSV of every round (t, vm, actual, unused, ...), or NULL */
};

#define EVAL_DEFAULT_DURATION_MS 120000u

struct eval_result {
    uint64_t duration_ms;
    size_t vms;
    double pressure_vm_s;      /* VM-seconds with the policy's signal below vm_min_unused */
    double starvation_vm_s;    /* VM-seconds with the workload wanting more than the guest holds */
    double refused_mib;        /* allocations the guests refused: a hog that gave up, a step cut */
    uint64_t floor_breaches;   /* times the host went below host_min_unused */
    double floor_below_s;      /* seconds it spent there */
    double floor_worst_mib;    /* the deepest it went */
    size_t episodes;           /* pressure episodes that ended (relief) or ran to the end */
    double relief_median_s;    /* from a VM's first pressured step to its relief */
    double relief_worst_s;     /* episodes that never ended count to the end of the run */
    size_t give_backs;         /* demand drops worth giving back (beyond the excess band) */
    size_t never_given_back;   /* of which 90 % never came back before demand rose or the end */
    double give_back_median_s; /* from the drop until 90 % of it is back (never: to the end) */
    double give_back_worst_s;
    uint64_t balloon_ops;  /* targets set */
    double moved_mib;      /* balloon movement, both ways */
    double idle_moved_mib; /* of which on VMs whose workload never changed */
    uint64_t idle_ops;     /* targets set on those VMs */
};

/* "memsched", "seed", "proxmox", "mom". */
const char *eval_planner_name(enum eval_planner planner);

/* The planner named name; -EINVAL when there is none. */
int eval_planner_parse(const char *name, enum eval_planner *planner);

/* Run the scenario under the planner. Returns 0, or a negative errno with err saying why. */
int eval_run(const struct eval_options *opts, struct eval_result *out, char *err, size_t err_len);

#endif /* MEMSCHED_AGENT_EVAL_H */

/*
 * tracker.h - what the agent remembers of each VM between rounds.
 *
 * The balloon is asynchronous: the tracker keeps each target the agent set and when, and
 * watches the balloon move toward it. A balloon that has not come closer for stuck_after_ms is
 * *stuck*: the scheduler does not count on it as a donor and, while its target stands, does not
 * ask it again. After retry_after_ms stuck, the target is forgotten so the VM can be planned
 * afresh. The tracker also remembers each VM's last decision reason so the agent logs a state
 * change once, not every round. VMs not seen in a round are forgotten (stopped or gone).
 */
#ifndef MEMSCHED_AGENT_TRACKER_H
#define MEMSCHED_AGENT_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched.h"

struct tracker;

struct tracker_vm {
    uint64_t target_kib; /* last target set, 0 = none */
    uint64_t set_ms;     /* when it was set */
    uint64_t distance_kib;
    uint64_t progress_ms; /* last time the balloon came closer (or the target was set) */
    uint64_t stuck_ms;    /* when it was found stuck */
    bool stuck;
    bool seen;
    bool fed; /* was ever grown */
    enum sched_reason last_reason;
    bool has_reason;
};

/* What observing a VM this round revealed. */
enum tracker_change {
    TRACKER_NO_CHANGE = 0,
    TRACKER_REACHED,   /* the balloon reached its target */
    TRACKER_STUCK,     /* it stopped moving short of its target */
    TRACKER_RECOVERED, /* a stuck balloon moved again or reached its target */
    TRACKER_RETRY,     /* stuck long enough: target forgotten, the VM may be planned again */
};

struct tracker *tracker_new(uint64_t stuck_after_ms, uint64_t retry_after_ms);

void tracker_destroy(struct tracker **tracker);

void
tracker_set_timeouts(struct tracker *tracker, uint64_t stuck_after_ms, uint64_t retry_after_ms);

/* Start a round of up to n_vms observations: every VM is unseen until observed. Records do not
 * move until tracker_end_round(), so pointers from tracker_observe() stay valid until then. */
void tracker_begin_round(struct tracker *tracker, size_t n_vms);

/* Observe VM uuid with its balloon at actual_kib; *vm points at its record (created on first
 * sight, within the n_vms announced) until tracker_end_round(). Returns what changed. */
enum tracker_change tracker_observe(struct tracker *tracker,
                                    const char *uuid,
                                    uint64_t actual_kib,
                                    uint64_t now_ms,
                                    struct tracker_vm **vm);

/* Record a target the agent has just set, with the balloon at actual_kib. */
void tracker_set_target(struct tracker_vm *vm,
                        uint64_t target_kib,
                        uint64_t actual_kib,
                        uint64_t now_ms);

/* Forget every VM not observed since tracker_begin_round(); returns how many. */
size_t tracker_end_round(struct tracker *tracker);

size_t tracker_count(const struct tracker *tracker);

const char *tracker_change_name(enum tracker_change change);

#endif /* MEMSCHED_AGENT_TRACKER_H */

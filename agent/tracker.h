/*
 * tracker.h - what the agent remembers of each VM between rounds.
 *
 * The balloon is asynchronous: the tracker keeps each target the agent set and when, and
 * watches the balloon move toward it. A balloon that has not come closer for stuck_after_ms is
 * *stuck*: the scheduler does not count on it as a donor and, while its target stands, does not
 * ask it again. After retry_after_ms stuck, the target is forgotten so the VM can be planned
 * afresh. The tracker also remembers each VM's last decision reason so the agent logs a state
 * change once, not every round. VMs not seen in a round are forgotten (stopped or gone).
 *
 * Two more things the scheduler needs are learnt here, from what each round observes:
 *  - untouched: memory the balloon holds that the guest has not touched, so the host has not
 *    backed it yet (a grant is a debt until the guest uses it). From the VM process's RSS:
 *    untouched = max(0, untouched + (actual - last actual) - (rss - last rss)), seeded with
 *    max(0, actual - rss) at first sight. A grant that arrives raises it, the guest touching
 *    pages lowers it, a shrink lowers it by what was given back untouched. The process's RSS
 *    can lag the balloon's size by a second or so, and a shrink read before its RSS drop would
 *    later count as a phantom debt that never goes away: so a shrink is accounted only once
 *    the balloon has held still for TRACKER_SETTLE_MS (the debt meanwhile stays as it was,
 *    which errs on the host's side).
 *  - rate: how fast the guest's used memory grows, from successive guest stats samples (a new
 *    sample is a new stamp), fast up and halving per sample when it stops; and the horizon,
 *    the measured time from the sample a grow was decided on to the balloon's arrival.
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
    /* the host's debt: memory granted that the guest has not touched */
    uint64_t untouched_kib;
    uint64_t ref_actual_kib;
    uint64_t ref_rss_kib;
    uint64_t last_actual_kib; /* the balloon at the last observation */
    uint64_t moved_ms;        /* when it last moved */
    bool has_memory_ref;
    /* guest stats samples and the consumption rate they show */
    uint64_t stats_stamp_ms; /* the last sample's stamp; 0 = none yet */
    uint64_t sample_seen_ms; /* when the agent first saw it */
    uint64_t used_kib;       /* what it showed in use */
    uint64_t rate_kib_s;
    uint64_t
        grow_sample_ms; /* when the sample a grow in flight was decided on was seen; 0 = none */
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

/* The balloon is still on its way to the target last set (not within a page-rounding of it). */
bool tracker_heading(const struct tracker_vm *vm, uint64_t actual_kib);

/* Take up a target set before the agent restarted: uuid's balloon is heading to target_kib,
 * as if set at now_ms. */
void tracker_seed(struct tracker *tracker, const char *uuid, uint64_t target_kib, uint64_t now_ms);

/* Record a target the agent has just set, with the balloon at actual_kib. */
void tracker_set_target(struct tracker_vm *vm,
                        uint64_t target_kib,
                        uint64_t actual_kib,
                        uint64_t now_ms);

#define TRACKER_SETTLE_MS 3000

/* Account the host's debt to the VM from its balloon size and its process's resident memory,
 * observed at now_ms. */
void
tracker_note_memory(struct tracker_vm *vm, uint64_t actual_kib, uint64_t rss_kib, uint64_t now_ms);

/* A guest stats sample stamped stamp_ms (0 = none) showing used_kib in use, observed at now_ms.
 * A new stamp updates the rate and returns true; the same stamp again returns false. */
bool
tracker_note_stats(struct tracker_vm *vm, uint64_t stamp_ms, uint64_t used_kib, uint64_t now_ms);

/* A grow was just set on the VM from its current sample (for the horizon). */
void tracker_note_grow(struct tracker_vm *vm);

/* The measured delay from a sample to the arrival of the grow decided on it (a moving
 * average), or fallback_ms before the first grow arrived. */
uint64_t tracker_grow_delay_ms(const struct tracker *tracker, uint64_t fallback_ms);

/* True when uuid is not tracked yet or stamp_ms differs from its last sample's stamp. */
bool tracker_has_new_sample(const struct tracker *tracker, const char *uuid, uint64_t stamp_ms);

/* Forget every VM not observed since tracker_begin_round(); returns how many. */
size_t tracker_end_round(struct tracker *tracker);

size_t tracker_count(const struct tracker *tracker);

const char *tracker_change_name(enum tracker_change change);

#endif /* MEMSCHED_AGENT_TRACKER_H */

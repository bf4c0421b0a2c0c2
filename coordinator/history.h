/*
 * history.h - a bounded in-memory history of every host's and VM's memory: a pure core.
 *
 * Each series (one per host: available and ballooned MiB; one per VM: balloon and unused MiB)
 * keeps two rings of samples on a timeline every series shares: a fine tier (by default every
 * 10 s for the last hour) and a coarse one (every 5 minutes for a day). A report writes its
 * values into the current slot of both tiers (the newest report in a slot wins); slots with no
 * report read as missing. Time is implicit (slot number = monotonic seconds / step), so a sample
 * is 8 bytes and a series at full resolution (360 + 288 slots) is ~5 KiB.
 *
 * Bounded by max_bytes: when one more series would not fit, every ring halves its resolution
 * (the step doubles, the span stays, adjacent samples merge: the newer wins) until it fits, down
 * to HISTORY_MIN_SLOTS per tier; past that a new series is refused (counted). A series halves
 * when it is next written, so the work is spread over a round of reports (no stall), and the
 * memory held can exceed the bound by what is not yet halved until that round ends. A fleet
 * that grows coarsens the history of all; it does not grow fine again (until a restart). With
 * the 256 MiB default: full resolution up to ~50,000 series (1,000 hosts x 50 VMs).
 *
 * It does no I/O, reads no clock (now_ms comes in, the fleet's monotonic clock) and never logs.
 */
#ifndef MEMSCHED_COORDINATOR_HISTORY_H
#define MEMSCHED_COORDINATOR_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"

#define HISTORY_FINE_STEP_S     10
#define HISTORY_FINE_SPAN_S     3600
#define HISTORY_COARSE_STEP_S   300
#define HISTORY_COARSE_SPAN_S   86400
#define HISTORY_MIN_SLOTS       4
#define HISTORY_MAX_MIB_DEFAULT 256
#define HISTORY_UNKNOWN         UINT32_MAX /* a value the report did not carry */

/* Zero fields take the defaults above; spans are whole multiples of their steps. */
struct history_opts {
    uint64_t max_bytes;
    uint32_t fine_step_s, fine_span_s;
    uint32_t coarse_step_s, coarse_span_s;
};

/* One sample as read back: a host's (available, ballooned) or a VM's (balloon, unused). */
struct history_point {
    uint64_t at_ms; /* the slot's start on the fleet's monotonic clock */
    uint32_t a_mib;
    uint32_t b_mib; /* HISTORY_UNKNOWN when not reported */
};

struct history_stats {
    size_t hosts;
    size_t series;
    uint64_t bytes; /* held now: the rings and their bookkeeping */
    uint64_t max_bytes;
    uint32_t fine_step_s; /* the resolution series are at or catching up to */
    uint32_t fine_slots;
    uint32_t coarse_step_s;
    uint32_t coarse_slots;
    uint64_t refused; /* series that found no room at the coarsest resolution */
};

struct history;

/* opts may be NULL. Aborts on out-of-memory. */
struct history *history_new(const struct history_opts *opts);

void history_destroy(struct history **history);

/* Record a host's newest applied report (as the fleet shows it now): its own series and each
 * of its VMs'. VM series whose newest sample is older than the coarse span are dropped. */
void history_record(struct history *h, const struct fleet_host_info *host, uint64_t now_ms);

/* Whether the series that were catching up to a coarser resolution have all caught up since
 * the last call (the sweep of a history_record() halved the last of them): true once each time.
 * Their old, larger blocks are free then, but glibc keeps the pages resident in the middle of
 * the heap: the caller hands them back (the daemon calls malloc_trim; this core does no I/O). */
bool history_take_caught_up(struct history *h);

/* Forget a host and its VMs' series (the fleet forgot it). */
void history_forget_host(struct history *h, const char *host_id);

/* The most points one series can read back (history_read's cap for all of them). */
size_t history_points_max(const struct history *h);

/* A series' samples, oldest first: the coarse tier's before the fine tier's window, then the
 * fine tier's; missing slots are left out. uuid NULL reads the host's own series. Returns the
 * number written to out (at most cap), or -ENOENT when there is no such series. */
int history_read(const struct history *h,
                 const char *host_id,
                 const uint8_t uuid[FLEET_UUID_BYTES],
                 uint64_t now_ms,
                 struct history_point *out,
                 size_t cap);

void history_stats(const struct history *h, struct history_stats *stats);

#endif /* MEMSCHED_COORDINATOR_HISTORY_H */

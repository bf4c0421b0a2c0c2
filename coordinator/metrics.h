/*
 * metrics.h - the fleet in Prometheus' text exposition format (version 0.0.4): a pure core.
 *
 * It reads the fleet (fleet.h) and writes text: fleet totals, per host and per VM gauges, and
 * the counters (decisions and moved bytes by reason, the agents' own counters) as `_total`.
 * The family table and the series of a host's report and of a VM are common/prom.h's, shared
 * with the agent's textfile (metrics_textfile), so both give the same names and labels.
 * Every name starts with `memsched_`, memory is in bytes and ages in seconds; hosts carry the
 * label `host`, VMs `host`, `domain` (the libvirt name) and `uuid`, so they join with the
 * libvirt exporter's series. It does no I/O, reads no clock (now_ms comes in) and never logs.
 *
 * The exposition is written a few hosts at a time (metrics_build_step), so a caller with one
 * thread (the coordinator's loop) can spread 10,000 hosts x 50 VMs over many short steps and
 * keep answering agents in between. Each metric family has its own buffer, and the text is
 * those buffers in order (struct metrics_text): every family stays one group, as the format
 * requires, without copying the whole text once more at the end. A host that disappears
 * between two steps is left out; hosts that joined after metrics_build_new() wait for the next
 * build.
 */
#ifndef MEMSCHED_COORDINATOR_METRICS_H
#define MEMSCHED_COORDINATOR_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"
#include "history.h"
#include "prom.h"

#define METRICS_CONTENT_TYPE PROM_CONTENT_TYPE

/* What a build reads. The fleet must not change during one step (it may between steps). */
struct metrics_source {
    const struct fleet *fleet;
    uint64_t now_ms;              /* the fleet's (monotonic) clock */
    uint64_t pressure_unused_kib; /* as memschedctl status counts VMs under pressure */
    /* The host floor (host_min_unused) of policy version `version`, for the floor headroom:
     * false when not known (the sample is left out). NULL: never known. */
    bool (*host_floor_kib)(void *ctx, uint64_t version, uint64_t *kib);
    void *ctx;
    /* Leave out every per-VM series (metrics_vm_series = false): a large fleet's VMs are
     * scraped from the agents' textfiles instead. Fleet totals still count the VMs. */
    bool omit_vm_series;
    const struct history *history; /* NULL: none kept (its series are left out) */
};

/* A finished exposition: the concatenation of parts[0..n_parts), bytes in all. Owns them. */
struct metrics_text {
    char **parts;
    size_t *lens;
    size_t n_parts;
    size_t bytes;
};

struct metrics_build;

/* Start a build over the hosts the fleet has now. Aborts on out-of-memory. */
struct metrics_build *metrics_build_new(const struct fleet *fleet);

void metrics_build_destroy(struct metrics_build **build);

/* Write up to max_hosts more hosts (at least one). Returns true when every host is written. */
bool
metrics_build_step(struct metrics_build *b, const struct metrics_source *src, size_t max_hosts);

/* The fleet totals (as of src, now) and every family written so far, in one text; the build
 * is spent (destroy it). The caller owns *out: metrics_text_destroy(). */
struct metrics_text *metrics_build_finish(struct metrics_build *b,
                                          const struct metrics_source *src);

void metrics_text_destroy(struct metrics_text **text);

/* The whole exposition in one call (tests, the benchmark). */
struct metrics_text *metrics_format(const struct metrics_source *src);

/* The text as one NUL-terminated string (tests); the caller frees it. */
char *metrics_text_join(const struct metrics_text *text);

#endif /* MEMSCHED_COORDINATOR_METRICS_H */

/*
 * hv_sim.h - the modelled host behind the hypervisor port ("sim:FILE").
 *
 * A JSON scenario describes the host (total memory, what the host itself uses) and its VMs (max
 * and initial memory, balloon speed, a missing balloon device or driver, a stuck balloon, per-VM
 * overrides) and each VM's workload as its used memory over time: steps, ramps, and hogs that
 * grow until the guest refuses them, hold (or wait for room), then free. The model moves each
 * balloon toward its target at the VM's speed (never squeezing the guest below what it uses),
 * backs guest pages with host memory only once the guest touches them (so a grant costs the host
 * nothing until it is used, and the port's rss_kib shows it), publishes guest stats once per
 * stats period, and keeps the outcome counters the tests and the demo report.
 *
 * Time: by default sim time follows the monotonic clock (times `speed` from the URI,
 * "sim:FILE?speed=10"); with sim_use_fake_clock() it moves only through sim_advance(), so a
 * scenario runs as fast as the CPU allows. The sim's own functions below are for tests, the
 * demo and the benchmarks; the agent sees only struct hv.
 */
#ifndef MEMSCHED_AGENT_HV_SIM_H
#define MEMSCHED_AGENT_HV_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv.h"

struct sim;

/* What the model knows of one VM, beyond what the port shows. */
struct sim_vm_view {
    const char *name;
    const char *uuid;
    uint64_t max_kib;
    uint64_t actual_kib;
    uint64_t target_kib;   /* last target set through the port (0 = none) */
    uint64_t used_kib;     /* what the workload holds now */
    uint64_t wanted_kib;   /* what the workload would hold if the guest had room */
    uint64_t cache_kib;    /* the guest's page cache now (reclaimable) */
    uint64_t unused_kib;   /* MemFree now (the port shows the last published value) */
    uint64_t usable_kib;   /* MemAvailable now */
    uint64_t touched_kib;  /* guest RAM backed by host pages (<= actual_kib) */
    uint64_t rss_kib;      /* touched_kib + QEMU's own overhead: what the VM costs the host */
    uint64_t refused_kib;  /* total allocations the guest refused (a hog hitting the wall) */
    uint64_t below_min_ms; /* time spent with unused below the scenario's vm_min_unused */
    uint64_t usable_below_min_ms; /* the same by usable (MemAvailable) */
    uint64_t starved_ms;          /* time the workload wanted more than the guest could hold */
    uint64_t targets_set;         /* set_target calls that reached this VM */
    bool running;
    bool has_balloon;
    bool has_driver;
    bool stuck;
};

struct sim_host_view {
    uint64_t total_kib;
    uint64_t available_kib;
    uint64_t below_min_ms;        /* time with available below the scenario's host_min_unused */
    uint64_t worst_below_min_kib; /* the deepest it went below host_min_unused (0: never) */
};

/* The sim behind hv, or NULL when hv is another backend. */
struct sim *sim_from_hv(struct hv *hv);

/* Open the scenario at path ("FILE" or "FILE?speed=N"; the "sim:" prefix is hv_open()'s). */
int hv_sim_open(const char *path, struct hv **out, char *err, size_t err_len);

/* Build a sim straight from JSON text (tests); name is used in error messages. */
int sim_open_json(const char *json, const char *name, struct hv **out, char *err, size_t err_len);

/* Freeze sim time; from now on it moves only through sim_advance(). */
void sim_use_fake_clock(struct sim *sim);

/* Move sim time forward by ms (fake clock), running the model in steps of at most 100 ms. */
void sim_advance(struct sim *sim, uint64_t ms);

/* Sim time since the scenario started. */
uint64_t sim_now_ms(struct sim *sim);

/* The scenario's length (duration_s), 0 when it sets none. */
uint64_t sim_duration_ms(const struct sim *sim);

size_t sim_vm_count(const struct sim *sim);

/* View of VM i (0 <= i < sim_vm_count), valid until the next sim call. */
void sim_vm_view(struct sim *sim, size_t i, struct sim_vm_view *view);

void sim_host_view(struct sim *sim, struct sim_host_view *view);

#endif /* MEMSCHED_AGENT_HV_SIM_H */

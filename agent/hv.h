/*
 * hv.h - the hypervisor port: everything the agent asks of a host, behind function pointers.
 *
 * The port names no backend: each backend (hv_libvirt.c, hv_sim.c) is its own build target
 * that fills in an hv_ops, and hv_backends.c is the one table that maps a URI to a backend's
 * open function (hv_open()). The agent sees only this header and hv_backends.h. Memory is KiB,
 * as libvirt reports it.
 *
 * Errors are negative errno values:
 *   -ENOTCONN  the hypervisor is unreachable (libvirtd gone); the backend reconnects by itself
 *              with back-off on later calls, so the caller just tries again next round.
 *   -ENOENT    no such VM (it went away between the sample and the call).
 *   -ENOTSUP   the VM cannot do it (no balloon driver).
 *   -ENOSPC    more VMs than the room given; *n_vms says how many there are.
 *   -EINVAL    a bad URI or argument; -EIO anything else the hypervisor refused.
 */
#ifndef MEMSCHED_AGENT_HV_H
#define MEMSCHED_AGENT_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched.h"

#define HV_UUID_LEN  37 /* 36 characters and the NUL */
#define HV_NAME_MAX  128
#define HV_ERR_MAX   256
#define HV_WEIGHT_NA 0

/* One VM as the hypervisor sees it now. */
struct hv_vm {
    char uuid[HV_UUID_LEN];
    char name[HV_NAME_MAX];
    enum sched_vm_state state;
    uint64_t max_kib;         /* the domain's maximum memory */
    uint64_t actual_kib;      /* the balloon's current size */
    uint64_t unused_kib;      /* valid when has_unused */
    uint64_t usable_kib;      /* valid when has_usable */
    uint64_t stats_age_ms;    /* now - the guest's last stats update; valid with either stat */
    uint64_t stats_stamp_ms;  /* the guest's last stats update as the backend stamps it (libvirt:
                               * balloon.last-update, whole seconds); a new value = a new sample */
    uint64_t rss_kib;         /* the VM process's resident memory on the host; valid when has_rss */
    uint64_t guest_total_kib; /* the guest's MemTotal in the same sample; 0 = not reported */
    bool has_balloon;         /* a balloon device (memballoon model != none) */
    bool has_unused;
    bool has_usable;
    bool has_rss; /* the backend reports rss_kib (libvirt: balloon.rss) */
    /* The guest stats period in force as the backend last read it (libvirt: the live XML's
     * <memballoon><stats period/>, refreshed when the backend sets it); 0 = none or unknown. */
    uint32_t stats_period_s;
    /* Per-VM overrides from the domain's metadata (memsched's XML namespace); defaults when
     * there is none: managed, no min, no cap, weight 0 (= the scheduler's default). */
    bool managed;
    uint64_t min_kib;
    uint64_t cap_kib;
    uint32_t weight;
};

struct hv_host {
    uint64_t total_kib;
    uint64_t
        available_kib; /* what the host can give: MemAvailable where known (shmem is not free) */
};

struct hv_ops {
    const char *name;
    /* Sample the host and every running or paused VM into vms[0, cap); *n_vms is set to the
     * number of VMs found, also when that exceeds cap (-ENOSPC). */
    int (*sample)(void *ctx, struct hv_host *host, struct hv_vm *vms, size_t cap, size_t *n_vms);
    /* Ask the VM's balloon for target_kib (live, absolute: repeating it is harmless). */
    int (*set_target)(void *ctx, const char *uuid, uint64_t target_kib);
    /* Guest stats period for every VM now and every VM that starts later (>= 1 s). 0 stops
     * setting it on VMs that start later (a dry run writes nothing) and touches no VM. */
    int (*set_stats_period)(void *ctx, unsigned period_s);
    void (*close)(void *ctx);
};

struct hv {
    const struct hv_ops *ops;
    void *ctx;
};

/* Close what a backend opened; NULL-safe, nulls *hv, may be repeated. */
void hv_close(struct hv **hv);

#endif /* MEMSCHED_AGENT_HV_H */

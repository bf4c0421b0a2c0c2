/*
 * hv_libvirt.h - the knobs of the libvirt backend beyond the port (hv.h), for the benchmark.
 *
 * No libvirt type appears here: only hv_libvirt.c includes libvirt. The backend is opened with
 * hv_libvirt_open() or hv_open() (hv.h).
 */
#ifndef MEMSCHED_AGENT_HV_LIBVIRT_H
#define MEMSCHED_AGENT_HV_LIBVIRT_H

#include "hv.h"

/* How sample() collects the VMs' stats. */
enum hv_libvirt_stats_path {
    /* One bulk virConnectGetAllDomainStats per round; per-domain calls only for the domains
     * whose record has no balloon fields (drivers that do not give them, like the test one).
     * The default. */
    HV_LIBVIRT_STATS_AUTO = 0,
    /* The bulk call only, never a per-domain stats call: a record without balloon fields gives
     * a VM with max, actual and stats all 0. For measuring the bulk call. */
    HV_LIBVIRT_STATS_BULK,
    /* List the active domains, then virDomainGetInfo and virDomainMemoryStats per domain: what
     * a balloon manager without the bulk API does. For comparison. */
    HV_LIBVIRT_STATS_PER_DOMAIN,
};

/* Pick the stats path of a libvirt backend. Returns 0, or -EINVAL when hv is not one (a sim)
 * or path is unknown. */
int hv_libvirt_set_stats_path(struct hv *hv, enum hv_libvirt_stats_path path);

#endif /* MEMSCHED_AGENT_HV_LIBVIRT_H */

/*
 * hv_libvirt.h - the libvirt backend of the hypervisor port (hv.h): its open function, for the
 * table in hv_backends.c, and its knobs beyond the port, for the benchmark.
 *
 * No libvirt type appears here: only hv_libvirt.c includes libvirt.
 */
#ifndef MEMSCHED_AGENT_HV_LIBVIRT_H
#define MEMSCHED_AGENT_HV_LIBVIRT_H

#include "hv.h"

/* Open a libvirt connection to uri ("qemu:///system", "test:///default", ...); see hv_open(). */
int hv_libvirt_open(const char *uri, struct hv **out, char *err, size_t err_len);

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

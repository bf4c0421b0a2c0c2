/*
 * wire.c - memsched's messages on the wire; the only file that includes protobuf-c code.
 *
 * Decoding follows one path: unpack, validate every field, copy into our structs, free the
 * unpacked message. Policy fields go through policy_set() and policy_validate(), the same gate
 * the config file and the CLI use, so the wire cannot carry a value the agent would refuse
 * elsewhere.
 */
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "memsched.pb-c.h"

int
wire_encode_policy(const struct policy *p, uint8_t **buf, size_t *len)
{
    Memsched__Policy msg = MEMSCHED__POLICY__INIT;

    msg.has_vm_min_unused_mib = true;
    msg.vm_min_unused_mib = p->vm_min_unused_kib / POLICY_KIB_PER_MIB;
    msg.has_vm_grow_target_unused_mib = true;
    msg.vm_grow_target_unused_mib = p->vm_grow_target_unused_kib / POLICY_KIB_PER_MIB;
    msg.has_vm_excess_unused_mib = true;
    msg.vm_excess_unused_mib = p->vm_excess_unused_kib / POLICY_KIB_PER_MIB;
    msg.has_max_release_step_mib = true;
    msg.max_release_step_mib = p->max_release_step_kib / POLICY_KIB_PER_MIB;
    msg.has_host_min_unused_mib = true;
    msg.host_min_unused_mib = p->host_min_unused_kib / POLICY_KIB_PER_MIB;
    msg.has_vm_floor_mib = true;
    msg.vm_floor_mib = p->vm_floor_kib / POLICY_KIB_PER_MIB;
    msg.has_interval_ms = true;
    msg.interval_ms = p->interval_ms;
    msg.has_stale_stats_s = true;
    msg.stale_stats_s = p->stale_stats_s;
    msg.has_demand_signal = true;
    msg.demand_signal = p->demand_signal == POLICY_DEMAND_USABLE
                            ? MEMSCHED__POLICY__DEMAND_SIGNAL__DEMAND_USABLE
                            : MEMSCHED__POLICY__DEMAND_SIGNAL__DEMAND_UNUSED;
    msg.has_reclaim_idle = true;
    msg.reclaim_idle = p->reclaim_idle;

    size_t size = memsched__policy__get_packed_size(&msg);
    *buf = malloc(size ? size : 1);
    if (!*buf)
        return -ENOMEM;
    *len = memsched__policy__pack(&msg, *buf);
    return 0;
}

/* Set one numeric field, present on the wire, through the policy's own parser and bounds. */
static int
take_number(struct policy *p,
            const char *name,
            protobuf_c_boolean present,
            uint64_t value,
            char *err,
            size_t err_len)
{
    char text[24];

    if (!present)
        return 0;
    snprintf(text, sizeof(text), "%" PRIu64, value);
    return policy_set(p, name, text, err, err_len);
}

static int
take_policy(const Memsched__Policy *m, struct policy *p, char *err, size_t err_len)
{
    int rc = 0;

    rc = rc
             ?: take_number(p, "vm_min_unused_mib", m->has_vm_min_unused_mib, m->vm_min_unused_mib,
                            err, err_len);
    rc = rc
             ?: take_number(p, "vm_grow_target_unused_mib", m->has_vm_grow_target_unused_mib,
                            m->vm_grow_target_unused_mib, err, err_len);
    rc = rc
             ?: take_number(p, "vm_excess_unused_mib", m->has_vm_excess_unused_mib,
                            m->vm_excess_unused_mib, err, err_len);
    rc = rc
             ?: take_number(p, "max_release_step_mib", m->has_max_release_step_mib,
                            m->max_release_step_mib, err, err_len);
    rc = rc
             ?: take_number(p, "host_min_unused_mib", m->has_host_min_unused_mib,
                            m->host_min_unused_mib, err, err_len);
    rc = rc ?: take_number(p, "vm_floor_mib", m->has_vm_floor_mib, m->vm_floor_mib, err, err_len);
    rc = rc ?: take_number(p, "interval_ms", m->has_interval_ms, m->interval_ms, err, err_len);
    rc =
        rc ?: take_number(p, "stale_stats_s", m->has_stale_stats_s, m->stale_stats_s, err, err_len);
    if (rc == 0 && m->has_demand_signal) {
        /* protobuf-c passes unknown enum numbers through; name them rather than guess. */
        if (m->demand_signal == MEMSCHED__POLICY__DEMAND_SIGNAL__DEMAND_UNUSED) {
            p->demand_signal = POLICY_DEMAND_UNUSED;
        } else if (m->demand_signal == MEMSCHED__POLICY__DEMAND_SIGNAL__DEMAND_USABLE) {
            p->demand_signal = POLICY_DEMAND_USABLE;
        } else {
            snprintf(err, err_len, "policy: demand_signal=%d is not a known signal",
                     (int)m->demand_signal);
            rc = -EINVAL;
        }
    }
    if (rc == 0 && m->has_reclaim_idle)
        p->reclaim_idle = m->reclaim_idle;
    return rc ? -EINVAL : policy_validate(p, err, err_len);
}

int
wire_decode_policy(const uint8_t *buf, size_t len, struct policy *p, char *err, size_t err_len)
{
    Memsched__Policy *msg = memsched__policy__unpack(NULL, len, buf);
    struct policy decoded;

    if (!msg) {
        snprintf(err, err_len, "policy: malformed message (%zu bytes)", len);
        return -EBADMSG;
    }
    policy_init_defaults(&decoded);
    int rc = take_policy(msg, &decoded, err, err_len);
    memsched__policy__free_unpacked(msg, NULL);
    if (rc == 0)
        *p = decoded;
    return rc;
}

/*
 * prom.h - memsched's series in Prometheus' text exposition format (version 0.0.4): the one
 * table of metric families and the writer of the host and VM series, shared by the
 * coordinator's endpoint (coordinator/metrics.c, the whole fleet) and the agent's textfile
 * (agent/textfile.c, its own host), so one dashboard fits both: same names, same labels.
 *
 * Pure: no I/O, no clock, no logging. Every name starts with `memsched_`, memory is in bytes and
 * ages in seconds; hosts carry the label `host`, VMs `host`, `domain` (the libvirt name) and
 * `uuid`, so they join with the libvirt exporter's series.
 *
 * A writer keeps one growing buffer per family and the label set of the host or VM being
 * written; prom_writer_emit() hands the buffers out in table order, each after its HELP and
 * TYPE, so every family stays one group as the format requires, whatever order the samples were
 * written in. A family with no sample is left out.
 */
#ifndef MEMSCHED_COMMON_PROM_H
#define MEMSCHED_COMMON_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sched.h"

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* Room for host="…",domain="…",uuid="…" escaped: ids of 63, names of 127 x 3 bytes. */
#define PROM_LABELS_MAX   640
#define PROM_REASON_OTHER SCHED_REASON_COUNT /* a skip reason this build does not know */

enum prom_family {
    PROM_FLEET_HOSTS = 0,
    PROM_FLEET_HOSTS_REPORTING,
    PROM_FLEET_VMS,
    PROM_FLEET_VMS_UNDER_PRESSURE,
    PROM_FLEET_HOST_MEMORY,
    PROM_FLEET_HOST_AVAILABLE,
    PROM_FLEET_VM_ACTUAL,
    PROM_FLEET_VM_MAX,
    PROM_FLEET_OVERCOMMIT,
    PROM_FLEET_DECISIONS_LAST_MINUTE,
    PROM_HISTORY_BYTES,
    PROM_HISTORY_SERIES,
    PROM_HISTORY_STEP,
    PROM_HISTORY_REFUSED,
    PROM_HOST_LIVENESS,
    PROM_HOST_LAST_SEEN_AGE,
    PROM_HOST_MEMORY,
    PROM_HOST_AVAILABLE,
    PROM_HOST_FLOOR_HEADROOM,
    PROM_HOST_VMS,
    PROM_HOST_OVERCOMMIT,
    PROM_HOST_POLICY_VERSION,
    PROM_HOST_POLICY_ACK_VERSION,
    PROM_HOST_POLICY_ACK_APPLIED,
    PROM_HOST_ROUNDS,
    PROM_HOST_GRANTED,
    PROM_HOST_RECLAIMED,
    PROM_HOST_AGENT_ERRORS,
    PROM_AGENT_ROUND_DURATION,
    PROM_AGENT_FAILED_ROUNDS,
    PROM_DECISIONS,
    PROM_DECISION_MOVED,
    PROM_VM_MAX, /* the per-VM families: PROM_VM_MAX .. PROM_FAMILIES - 1 */
    PROM_VM_ACTUAL,
    PROM_VM_TARGET,
    PROM_VM_UNUSED,
    PROM_VM_USABLE,
    PROM_VM_STATS_AGE,
    PROM_VM_STATE,
    PROM_VM_MANAGED,
    PROM_VM_SKIPPED,
    PROM_VM_STUCK,
    PROM_VM_LAST_REASON,
    PROM_FAMILIES,
};

/* What a host reported: the series both the coordinator and the agent write. */
struct prom_host {
    uint64_t total_kib;
    uint64_t available_kib;
    bool has_floor; /* floor_kib: the host floor (host_min_unused) of the policy in force */
    uint64_t floor_kib;
    uint64_t vms;        /* VMs on the host */
    uint64_t vm_max_kib; /* their maximum memory, summed: the overcommit ratio */
    uint64_t rounds;
    uint64_t granted_kib;
    uint64_t reclaimed_kib;
    uint64_t apply_failures;
    uint64_t reports_dropped;
    uint64_t messages_rejected;
};

/* One VM; name and uuid are borrowed. */
struct prom_vm {
    const char *name; /* the libvirt domain name, "" when unknown */
    const char *uuid; /* text, 36 characters */
    uint64_t max_kib;
    uint64_t actual_kib;
    uint64_t target_kib; /* 0 = none set: no sample */
    uint64_t unused_kib;
    uint64_t usable_kib;
    uint64_t stats_age_ms;
    unsigned state; /* enum sched_vm_state; another value: no sample */
    /* The reason of the newest decision about it; SCHED_REASON_COUNT or above: no sample. */
    unsigned last_reason;
    /* Why it is left alone: a step-2 reason or PROM_REASON_OTHER; anything else: managed. */
    unsigned skip_reason;
    bool has_unused;
    bool has_usable;
    bool managed;
    bool stuck;
};

struct prom_buf {
    char *p;
    size_t len;
    size_t cap;
};

struct prom_writer {
    struct prom_buf fam[PROM_FAMILIES];
    char labels[PROM_LABELS_MAX]; /* the label set being written, without braces */
    size_t labels_len;
};

/* An empty writer (zeroed memory is one too). */
void prom_writer_init(struct prom_writer *w);

/* Free every buffer; the writer is empty again. */
void prom_writer_clear(struct prom_writer *w);

/* Make room for `bytes` more in family f before its first sample (large exports). */
void prom_reserve(struct prom_writer *w, enum prom_family f, size_t bytes);

/* The label set of the samples that follow: none, or `host`, or a VM's host, domain, uuid. */
void prom_labels_clear(struct prom_writer *w);
void prom_label_add(struct prom_writer *w, const char *key, const char *value);

/* One sample of family f under the current label set; _labelled adds key="value" (our own
 * names: nothing to escape), _kib writes bytes, _ms seconds. */
void prom_put_u64(struct prom_writer *w, enum prom_family f, uint64_t v);
void prom_put_i64(struct prom_writer *w, enum prom_family f, int64_t v);
void prom_put_kib(struct prom_writer *w, enum prom_family f, uint64_t kib);
void prom_put_double(struct prom_writer *w, enum prom_family f, double v);
void prom_put_ms(struct prom_writer *w, enum prom_family f, uint64_t ms);
void prom_put_labelled(
    struct prom_writer *w, enum prom_family f, const char *key, const char *value, uint64_t v);

/* The host series of a report, under the label set the caller set (host="…"). */
void prom_write_host(struct prom_writer *w, const struct prom_host *h);

/* Every series of one VM, with its label set (host, domain, uuid). */
void prom_write_vm(struct prom_writer *w, const char *host_id, const struct prom_vm *vm);

/* How many parts prom_writer_emit() may hand out at most. */
#define PROM_PARTS_MAX (2 * PROM_FAMILIES)

/* Move the text out: for each family with samples, in table order, its HELP and TYPE lines
 * (a new buffer) and its samples, into parts/lens (room for PROM_PARTS_MAX); the caller owns
 * and frees every part. The writer is empty after. Returns the number of parts; *bytes gets the
 * total length. */
size_t prom_writer_emit(struct prom_writer *w, char **parts, size_t *lens, size_t *bytes);

/* A label value as the format wants it: backslash, double quote and newline escaped, and any
 * byte that is not part of valid UTF-8 replaced by U+FFFD (a guest may name itself anything).
 * Writes at most out_len - 1 bytes and a NUL, never cutting an escape or a character in two;
 * returns the length the whole escaped value needs (as snprintf). */
size_t prom_escape_label(const char *value, char *out, size_t out_len);

/* The name of a skip reason as the label shows it: sched_reason_name(), or "other". */
const char *prom_skip_reason_name(unsigned reason);

#endif /* MEMSCHED_COMMON_PROM_H */

/*
 * prom.c - memsched's series in the Prometheus text format (see prom.h).
 *
 * Owns the family table and the writer's buffers. Numbers are written by hand, not by printf:
 * the coordinator's export at 10,000 hosts x 50 VMs writes millions of lines, and the text is
 * the whole cost of a scrape.
 */
#include "prom.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct family_desc {
    const char *name;
    const char *type;
    const char *help;
};

static const struct family_desc families[PROM_FAMILIES] = {
    [PROM_FLEET_HOSTS] = {"memsched_fleet_hosts", "gauge", "Hosts known, by liveness."},
    [PROM_FLEET_HOSTS_REPORTING] = {"memsched_fleet_hosts_reporting", "gauge",
                                    "Hosts with a report that are not down: the fleet sums "
                                    "cover these."},
    [PROM_FLEET_VMS] = {"memsched_fleet_vms", "gauge", "VMs on the reporting hosts."},
    [PROM_FLEET_VMS_UNDER_PRESSURE] = {"memsched_fleet_vms_under_pressure", "gauge",
                                       "VMs with less unused memory than pressure_unused_mib, or "
                                       "whose need went unmet."},
    [PROM_FLEET_HOST_MEMORY] = {"memsched_fleet_host_memory_bytes", "gauge",
                                "Memory of the reporting hosts."},
    [PROM_FLEET_HOST_AVAILABLE] = {"memsched_fleet_host_available_bytes", "gauge",
                                   "Memory the reporting hosts have available."},
    [PROM_FLEET_VM_ACTUAL] = {"memsched_fleet_vm_actual_bytes", "gauge",
                              "Balloon sizes of the VMs, summed."},
    [PROM_FLEET_VM_MAX] = {"memsched_fleet_vm_max_bytes", "gauge",
                           "Maximum memory of the VMs, summed."},
    [PROM_FLEET_OVERCOMMIT] = {"memsched_fleet_overcommit_ratio", "gauge",
                               "VM maximum memory over host memory."},
    [PROM_FLEET_DECISIONS_LAST_MINUTE] = {"memsched_fleet_decisions_last_minute", "gauge",
                                          "Balloon decisions reported in the last minute."},
    [PROM_HISTORY_BYTES] =
        {"memsched_history_bytes", "gauge",
         "Memory held by the coordinator's history (history_max_mib bounds it)."},
    [PROM_HISTORY_SERIES] = {"memsched_history_series", "gauge",
                             "Hosts' and VMs' series in the coordinator's history."},
    [PROM_HISTORY_STEP] = {"memsched_history_step_seconds", "gauge",
                           "The history's resolution per tier (fine: the last hour; coarse: the "
                           "day): a larger fleet gets a coarser one."},
    [PROM_HISTORY_REFUSED] = {"memsched_history_refused_series_total", "counter",
                              "Series the history had no room for at its coarsest resolution."},
    [PROM_HOST_LIVENESS] = {"memsched_host_liveness", "gauge",
                            "1 for the host's liveness (fresh, stale, down), 0 for the others."},
    [PROM_HOST_LAST_SEEN_AGE] = {"memsched_host_last_seen_age_seconds", "gauge",
                                 "Time since the host's last message."},
    [PROM_HOST_MEMORY] = {"memsched_host_memory_bytes", "gauge", "The host's memory."},
    [PROM_HOST_AVAILABLE] = {"memsched_host_available_bytes", "gauge",
                             "The host's available memory."},
    [PROM_HOST_FLOOR_HEADROOM] = {"memsched_host_floor_headroom_bytes", "gauge",
                                  "Available memory above the host floor (host_min_unused) of "
                                  "the policy the host holds; negative below it."},
    [PROM_HOST_VMS] = {"memsched_host_vms", "gauge", "VMs on the host."},
    [PROM_HOST_OVERCOMMIT] = {"memsched_host_overcommit_ratio", "gauge",
                              "VM maximum memory over the host's memory."},
    [PROM_HOST_POLICY_VERSION] = {"memsched_host_policy_version", "gauge",
                                  "Fleet policy version the host holds (0: none)."},
    [PROM_HOST_POLICY_ACK_VERSION] = {"memsched_host_policy_ack_version", "gauge",
                                      "Policy version of the host's last answer to a push."},
    [PROM_HOST_POLICY_ACK_APPLIED] = {"memsched_host_policy_ack_applied", "gauge",
                                      "1 when the host's last answer applied the policy, 0 when "
                                      "it refused it."},
    [PROM_HOST_ROUNDS] = {"memsched_host_rounds_total", "counter",
                          "Scheduling rounds the agent ran (since it started)."},
    [PROM_HOST_GRANTED] = {"memsched_host_granted_bytes_total", "counter",
                           "Memory the agent granted to VMs (since it started)."},
    [PROM_HOST_RECLAIMED] = {"memsched_host_reclaimed_bytes_total", "counter",
                             "Memory the agent reclaimed from VMs (since it started)."},
    [PROM_HOST_AGENT_ERRORS] = {"memsched_host_agent_errors_total", "counter",
                                "Errors the agent counted, by kind (since it started)."},
    [PROM_AGENT_ROUND_DURATION] = {"memsched_agent_round_duration_seconds", "gauge",
                                   "How long the agent's last round took (sample, plan, "
                                   "apply)."},
    [PROM_AGENT_FAILED_ROUNDS] = {"memsched_agent_failed_rounds_total", "counter",
                                  "Rounds that could not sample the hypervisor (since the agent "
                                  "started)."},
    [PROM_DECISIONS] = {"memsched_decisions_total", "counter",
                        "Balloon decisions received from the host, by reason."},
    [PROM_DECISION_MOVED] = {"memsched_decision_moved_bytes_total", "counter",
                             "Memory the balloon targets moved, by reason."},
    [PROM_VM_MAX] = {"memsched_vm_max_bytes", "gauge", "The VM's maximum memory."},
    [PROM_VM_ACTUAL] = {"memsched_vm_balloon_actual_bytes", "gauge", "The VM's balloon size."},
    [PROM_VM_TARGET] = {"memsched_vm_balloon_target_bytes", "gauge",
                        "The balloon target memsched set last."},
    [PROM_VM_UNUSED] = {"memsched_vm_unused_bytes", "gauge", "Guest memory unused (MemFree)."},
    [PROM_VM_USABLE] = {"memsched_vm_usable_bytes", "gauge", "Guest memory usable (MemAvailable)."},
    [PROM_VM_STATS_AGE] = {"memsched_vm_stats_age_seconds", "gauge",
                           "Age of the guest's memory statistics."},
    [PROM_VM_STATE] = {"memsched_vm_state", "gauge",
                       "1 for the VM's state (running, paused, migrating, other)."},
    [PROM_VM_MANAGED] = {"memsched_vm_managed", "gauge",
                         "1 when memsched manages the VM, 0 when its metadata says managed=no."},
    [PROM_VM_SKIPPED] = {"memsched_vm_skipped", "gauge",
                         "1, with the reason, for a VM the agent leaves alone (unmanaged, "
                         "no_balloon, no_stats, stale_stats, not_running, migrating, bad_sample); "
                         "absent for a VM it manages."},
    [PROM_VM_STUCK] = {"memsched_vm_stuck", "gauge",
                       "1 when the balloon has not moved toward its target."},
    [PROM_VM_LAST_REASON] = {"memsched_vm_last_reason", "gauge",
                             "1 for the reason of the newest decision about the VM."},
};

/* ---- text ---- */

static void
buf_reserve(struct prom_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    b->p = util_xrealloc(b->p, cap, 1);
    b->cap = cap;
}

static void
buf_mem(struct prom_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void
buf_str(struct prom_buf *b, const char *s)
{
    buf_mem(b, s, strlen(s));
}

static void
buf_u64(struct prom_buf *b, uint64_t v)
{
    char digits[20];
    size_t n = 0;

    do {
        digits[sizeof(digits) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_mem(b, digits + sizeof(digits) - n, n);
}

static void
buf_i64(struct prom_buf *b, int64_t v)
{
    if (v < 0) {
        buf_mem(b, "-", 1);
        buf_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        buf_u64(b, (uint64_t)v);
    }
}

/* Ratios and fractional seconds: enough digits, no exponent games for the usual values. */
static void
buf_double(struct prom_buf *b, double v)
{
    char text[32];
    int n = snprintf(text, sizeof(text), "%.6g", v);

    buf_mem(b, text, (size_t)n);
}

/* The length of a valid UTF-8 sequence at s (1-4), or 0 when s does not start one. */
static size_t
utf8_length(const unsigned char *s)
{
    size_t n;
    unsigned min;
    unsigned cp;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        n = 2, cp = s[0] & 0x1f, min = 0x80;
    else if ((s[0] & 0xf0) == 0xe0)
        n = 3, cp = s[0] & 0x0f, min = 0x800;
    else if ((s[0] & 0xf8) == 0xf0)
        n = 4, cp = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* also stops at the NUL */
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return n;
}

size_t
prom_escape_label(const char *value, char *out, size_t out_len)
{
    static const char replacement[] = "\xef\xbf\xbd";
    const unsigned char *s = (const unsigned char *)value;
    size_t need = 0, written = 0, room = out_len ? out_len - 1 : 0;

    while (*s) {
        const char *piece = (const char *)s;
        size_t n = utf8_length(s), step = n ? n : 1;
        if (*s == '\\')
            piece = "\\\\", n = 2;
        else if (*s == '"')
            piece = "\\\"", n = 2;
        else if (*s == '\n')
            piece = "\\n", n = 2;
        else if (n == 0)
            piece = replacement, n = 3;
        /* Nothing after a cut either, so a shorter later piece cannot fill its hole. */
        if (written == need && need + n <= room) {
            memcpy(out + need, piece, n);
            written += n;
        }
        need += n;
        s += step;
    }
    if (out_len)
        out[written] = '\0';
    return need;
}

const char *
prom_skip_reason_name(unsigned reason)
{
    if (reason < SCHED_REASON_COUNT)
        return sched_reason_name((enum sched_reason)reason);
    return "other";
}

/* ---- the writer ---- */

void
prom_writer_init(struct prom_writer *w)
{
    memset(w, 0, sizeof(*w));
}

void
prom_writer_clear(struct prom_writer *w)
{
    for (size_t f = 0; f < PROM_FAMILIES; f++)
        free(w->fam[f].p);
    prom_writer_init(w);
}

void
prom_reserve(struct prom_writer *w, enum prom_family f, size_t bytes)
{
    buf_reserve(&w->fam[f], bytes);
}

void
prom_labels_clear(struct prom_writer *w)
{
    w->labels_len = 0;
    w->labels[0] = '\0';
}

void
prom_label_add(struct prom_writer *w, const char *key, const char *value)
{
    size_t left = sizeof(w->labels) - w->labels_len;
    int n = snprintf(w->labels + w->labels_len, left, "%s%s=\"", w->labels_len ? "," : "", key);

    assert(n > 0 && (size_t)n < left); /* PROM_LABELS_MAX holds the longest legal set */
    w->labels_len += (size_t)n;
    w->labels_len +=
        prom_escape_label(value, w->labels + w->labels_len, sizeof(w->labels) - w->labels_len);
    assert(w->labels_len + 1 < sizeof(w->labels));
    w->labels[w->labels_len++] = '"';
    w->labels[w->labels_len] = '\0';
}

/* `name{labels[,key="value"]} ` into family f; the caller writes the value and the newline. */
static struct prom_buf *
sample_begin(struct prom_writer *w, enum prom_family f, const char *key, const char *value)
{
    struct prom_buf *out = &w->fam[f];

    buf_str(out, families[f].name);
    if (w->labels_len || key) {
        buf_mem(out, "{", 1);
        buf_mem(out, w->labels, w->labels_len);
        if (key) {
            if (w->labels_len)
                buf_mem(out, ",", 1);
            buf_str(out, key);
            buf_mem(out, "=\"", 2);
            buf_str(out, value);
            buf_mem(out, "\"", 1);
        }
        buf_mem(out, "}", 1);
    }
    buf_mem(out, " ", 1);
    return out;
}

void
prom_put_u64(struct prom_writer *w, enum prom_family f, uint64_t v)
{
    struct prom_buf *out = sample_begin(w, f, NULL, NULL);

    buf_u64(out, v);
    buf_mem(out, "\n", 1);
}

void
prom_put_i64(struct prom_writer *w, enum prom_family f, int64_t v)
{
    struct prom_buf *out = sample_begin(w, f, NULL, NULL);

    buf_i64(out, v);
    buf_mem(out, "\n", 1);
}

/* Bytes past 2^64 print as the saturated value: no legal report gets there. */
static uint64_t
kib_to_bytes(uint64_t kib)
{
    return kib > UINT64_MAX / 1024 ? UINT64_MAX : kib * 1024;
}

void
prom_put_kib(struct prom_writer *w, enum prom_family f, uint64_t kib)
{
    prom_put_u64(w, f, kib_to_bytes(kib));
}

void
prom_put_double(struct prom_writer *w, enum prom_family f, double v)
{
    struct prom_buf *out = sample_begin(w, f, NULL, NULL);

    buf_double(out, v);
    buf_mem(out, "\n", 1);
}

void
prom_put_ms(struct prom_writer *w, enum prom_family f, uint64_t ms)
{
    prom_put_double(w, f, (double)ms / 1000.0);
}

void
prom_put_labelled(
    struct prom_writer *w, enum prom_family f, const char *key, const char *value, uint64_t v)
{
    struct prom_buf *out = sample_begin(w, f, key, value);

    buf_u64(out, v);
    buf_mem(out, "\n", 1);
}

/* ---- the shared series ---- */

void
prom_write_host(struct prom_writer *w, const struct prom_host *h)
{
    prom_put_kib(w, PROM_HOST_MEMORY, h->total_kib);
    prom_put_kib(w, PROM_HOST_AVAILABLE, h->available_kib);
    if (h->has_floor)
        prom_put_i64(w, PROM_HOST_FLOOR_HEADROOM,
                     ((int64_t)h->available_kib - (int64_t)h->floor_kib) * 1024);
    prom_put_u64(w, PROM_HOST_VMS, h->vms);
    if (h->total_kib)
        prom_put_double(w, PROM_HOST_OVERCOMMIT, (double)h->vm_max_kib / (double)h->total_kib);
    prom_put_u64(w, PROM_HOST_ROUNDS, h->rounds);
    prom_put_kib(w, PROM_HOST_GRANTED, h->granted_kib);
    prom_put_kib(w, PROM_HOST_RECLAIMED, h->reclaimed_kib);
    prom_put_labelled(w, PROM_HOST_AGENT_ERRORS, "kind", "apply_failure", h->apply_failures);
    prom_put_labelled(w, PROM_HOST_AGENT_ERRORS, "kind", "report_dropped", h->reports_dropped);
    prom_put_labelled(w, PROM_HOST_AGENT_ERRORS, "kind", "message_rejected", h->messages_rejected);
}

static const char *const vm_states[] = {
    [SCHED_VM_RUNNING] = "running",
    [SCHED_VM_PAUSED] = "paused",
    [SCHED_VM_MIGRATING] = "migrating",
    [SCHED_VM_OTHER] = "other",
};

void
prom_write_vm(struct prom_writer *w, const char *host_id, const struct prom_vm *vm)
{
    prom_labels_clear(w);
    prom_label_add(w, "host", host_id);
    prom_label_add(w, "domain", vm->name);
    prom_label_add(w, "uuid", vm->uuid);
    prom_put_kib(w, PROM_VM_MAX, vm->max_kib);
    prom_put_kib(w, PROM_VM_ACTUAL, vm->actual_kib);
    if (vm->target_kib)
        prom_put_kib(w, PROM_VM_TARGET, vm->target_kib);
    if (vm->has_unused)
        prom_put_kib(w, PROM_VM_UNUSED, vm->unused_kib);
    if (vm->has_usable)
        prom_put_kib(w, PROM_VM_USABLE, vm->usable_kib);
    prom_put_ms(w, PROM_VM_STATS_AGE, vm->stats_age_ms);
    if (vm->state < sizeof(vm_states) / sizeof(vm_states[0]))
        prom_put_labelled(w, PROM_VM_STATE, "state", vm_states[vm->state], 1);
    prom_put_u64(w, PROM_VM_MANAGED, vm->managed);
    if (vm->skip_reason == PROM_REASON_OTHER ||
        (vm->skip_reason < SCHED_REASON_COUNT &&
         sched_reason_is_skip((enum sched_reason)vm->skip_reason)))
        prom_put_labelled(w, PROM_VM_SKIPPED, "reason", prom_skip_reason_name(vm->skip_reason), 1);
    prom_put_u64(w, PROM_VM_STUCK, vm->stuck);
    if (vm->last_reason < SCHED_REASON_COUNT)
        prom_put_labelled(w, PROM_VM_LAST_REASON, "reason",
                          sched_reason_name((enum sched_reason)vm->last_reason), 1);
}

/* ---- the text ---- */

size_t
prom_writer_emit(struct prom_writer *w, char **parts, size_t *lens, size_t *bytes)
{
    size_t n = 0;

    *bytes = 0;
    for (size_t f = 0; f < PROM_FAMILIES; f++) {
        struct prom_buf head = {0};
        if (!w->fam[f].len)
            continue; /* no sample: leave the family out rather than announce an empty one */
        buf_str(&head, "# HELP ");
        buf_str(&head, families[f].name);
        buf_mem(&head, " ", 1);
        buf_str(&head, families[f].help);
        buf_str(&head, "\n# TYPE ");
        buf_str(&head, families[f].name);
        buf_mem(&head, " ", 1);
        buf_str(&head, families[f].type);
        buf_mem(&head, "\n", 1);
        parts[n] = head.p;
        lens[n++] = head.len;
        parts[n] = w->fam[f].p;
        lens[n++] = w->fam[f].len;
        *bytes += head.len + w->fam[f].len;
        w->fam[f] = (struct prom_buf){0};
    }
    prom_writer_clear(w);
    return n;
}

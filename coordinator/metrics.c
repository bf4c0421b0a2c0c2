/*
 * metrics.c - the Prometheus text exposition of the fleet (see metrics.h).
 *
 * Owns the build: the host ids taken at its start, one growing buffer per family and a scratch
 * buffer for the label set of the host or VM being written. Numbers are written by hand, not
 * by printf: a build at 10,000 hosts x 50 VMs writes millions of lines, and the text is the
 * whole cost of a scrape.
 */
#include "metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "util.h"

#define VM_LINE_BYTES   160 /* a VM's sample with usual names: ~140 bytes */
#define HOST_LINE_BYTES 96
#define LABELS_MAX      640 /* host="…",domain="…",uuid="…" escaped: ids 63, names 127 x 3 bytes */

enum family {
    FAM_FLEET_HOSTS = 0,
    FAM_FLEET_HOSTS_REPORTING,
    FAM_FLEET_VMS,
    FAM_FLEET_VMS_UNDER_PRESSURE,
    FAM_FLEET_HOST_MEMORY,
    FAM_FLEET_HOST_AVAILABLE,
    FAM_FLEET_VM_ACTUAL,
    FAM_FLEET_VM_MAX,
    FAM_FLEET_OVERCOMMIT,
    FAM_FLEET_DECISIONS_LAST_MINUTE,
    FAM_HOST_LIVENESS,
    FAM_HOST_LAST_SEEN_AGE,
    FAM_HOST_MEMORY,
    FAM_HOST_AVAILABLE,
    FAM_HOST_FLOOR_HEADROOM,
    FAM_HOST_VMS,
    FAM_HOST_OVERCOMMIT,
    FAM_HOST_POLICY_VERSION,
    FAM_HOST_POLICY_ACK_VERSION,
    FAM_HOST_POLICY_ACK_APPLIED,
    FAM_HOST_ROUNDS,
    FAM_HOST_GRANTED,
    FAM_HOST_RECLAIMED,
    FAM_HOST_AGENT_ERRORS,
    FAM_DECISIONS,
    FAM_DECISION_MOVED,
    FAM_VM_MAX,
    FAM_VM_ACTUAL,
    FAM_VM_TARGET,
    FAM_VM_UNUSED,
    FAM_VM_USABLE,
    FAM_VM_STATS_AGE,
    FAM_VM_STATE,
    FAM_VM_MANAGED,
    FAM_VM_STUCK,
    FAM_VM_LAST_REASON,
    FAM_COUNT,
};

struct family_desc {
    const char *name;
    const char *type;
    const char *help;
};

static const struct family_desc families[FAM_COUNT] = {
    [FAM_FLEET_HOSTS] = {"memsched_fleet_hosts", "gauge", "Hosts known, by liveness."},
    [FAM_FLEET_HOSTS_REPORTING] = {"memsched_fleet_hosts_reporting", "gauge",
                                   "Hosts with a report that are not down: the fleet sums "
                                   "cover these."},
    [FAM_FLEET_VMS] = {"memsched_fleet_vms", "gauge", "VMs on the reporting hosts."},
    [FAM_FLEET_VMS_UNDER_PRESSURE] = {"memsched_fleet_vms_under_pressure", "gauge",
                                      "VMs with less unused memory than pressure_unused_mib, or "
                                      "whose need went unmet."},
    [FAM_FLEET_HOST_MEMORY] = {"memsched_fleet_host_memory_bytes", "gauge",
                               "Memory of the reporting hosts."},
    [FAM_FLEET_HOST_AVAILABLE] = {"memsched_fleet_host_available_bytes", "gauge",
                                  "Memory the reporting hosts have available."},
    [FAM_FLEET_VM_ACTUAL] = {"memsched_fleet_vm_actual_bytes", "gauge",
                             "Balloon sizes of the VMs, summed."},
    [FAM_FLEET_VM_MAX] = {"memsched_fleet_vm_max_bytes", "gauge",
                          "Maximum memory of the VMs, summed."},
    [FAM_FLEET_OVERCOMMIT] = {"memsched_fleet_overcommit_ratio", "gauge",
                              "VM maximum memory over host memory."},
    [FAM_FLEET_DECISIONS_LAST_MINUTE] = {"memsched_fleet_decisions_last_minute", "gauge",
                                         "Balloon decisions reported in the last minute."},
    [FAM_HOST_LIVENESS] = {"memsched_host_liveness", "gauge",
                           "1 for the host's liveness (fresh, stale, down), 0 for the others."},
    [FAM_HOST_LAST_SEEN_AGE] = {"memsched_host_last_seen_age_seconds", "gauge",
                                "Time since the host's last message."},
    [FAM_HOST_MEMORY] = {"memsched_host_memory_bytes", "gauge", "The host's memory."},
    [FAM_HOST_AVAILABLE] = {"memsched_host_available_bytes", "gauge",
                            "The host's available memory."},
    [FAM_HOST_FLOOR_HEADROOM] = {"memsched_host_floor_headroom_bytes", "gauge",
                                 "Available memory above the host floor (host_min_unused) of "
                                 "the policy the host holds; negative below it."},
    [FAM_HOST_VMS] = {"memsched_host_vms", "gauge", "VMs on the host."},
    [FAM_HOST_OVERCOMMIT] = {"memsched_host_overcommit_ratio", "gauge",
                             "VM maximum memory over the host's memory."},
    [FAM_HOST_POLICY_VERSION] = {"memsched_host_policy_version", "gauge",
                                 "Fleet policy version the host holds (0: none)."},
    [FAM_HOST_POLICY_ACK_VERSION] = {"memsched_host_policy_ack_version", "gauge",
                                     "Policy version of the host's last answer to a push."},
    [FAM_HOST_POLICY_ACK_APPLIED] = {"memsched_host_policy_ack_applied", "gauge",
                                     "1 when the host's last answer applied the policy, 0 when "
                                     "it refused it."},
    [FAM_HOST_ROUNDS] = {"memsched_host_rounds_total", "counter",
                         "Scheduling rounds the agent ran (since it started)."},
    [FAM_HOST_GRANTED] = {"memsched_host_granted_bytes_total", "counter",
                          "Memory the agent granted to VMs (since it started)."},
    [FAM_HOST_RECLAIMED] = {"memsched_host_reclaimed_bytes_total", "counter",
                            "Memory the agent reclaimed from VMs (since it started)."},
    [FAM_HOST_AGENT_ERRORS] = {"memsched_host_agent_errors_total", "counter",
                               "Errors the agent counted, by kind (since it started)."},
    [FAM_DECISIONS] = {"memsched_decisions_total", "counter",
                       "Balloon decisions received from the host, by reason."},
    [FAM_DECISION_MOVED] = {"memsched_decision_moved_bytes_total", "counter",
                            "Memory the balloon targets moved, by reason."},
    [FAM_VM_MAX] = {"memsched_vm_max_bytes", "gauge", "The VM's maximum memory."},
    [FAM_VM_ACTUAL] = {"memsched_vm_balloon_actual_bytes", "gauge", "The VM's balloon size."},
    [FAM_VM_TARGET] = {"memsched_vm_balloon_target_bytes", "gauge",
                       "The balloon target memsched set last."},
    [FAM_VM_UNUSED] = {"memsched_vm_unused_bytes", "gauge", "Guest memory unused (MemFree)."},
    [FAM_VM_USABLE] = {"memsched_vm_usable_bytes", "gauge", "Guest memory usable (MemAvailable)."},
    [FAM_VM_STATS_AGE] = {"memsched_vm_stats_age_seconds", "gauge",
                          "Age of the guest's memory statistics."},
    [FAM_VM_STATE] = {"memsched_vm_state", "gauge",
                      "1 for the VM's state (running, paused, migrating, other)."},
    [FAM_VM_MANAGED] = {"memsched_vm_managed", "gauge",
                        "1 when memsched manages the VM, 0 when its metadata says managed=no."},
    [FAM_VM_STUCK] = {"memsched_vm_stuck", "gauge",
                      "1 when the balloon has not moved toward its target."},
    [FAM_VM_LAST_REASON] = {"memsched_vm_last_reason", "gauge",
                            "1 for the reason of the newest decision about the VM."},
};

struct buf {
    char *p;
    size_t len;
    size_t cap;
};

struct metrics_build {
    char (*ids)[WIRE_HOST_ID_MAX]; /* the hosts to write, sorted */
    size_t n_ids;
    size_t next;
    struct buf fam[FAM_COUNT];
    char labels[LABELS_MAX]; /* the label set being written, without braces */
    size_t labels_len;
};

/* ---- text ---- */

static void
buf_reserve(struct buf *b, size_t more)
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
buf_mem(struct buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void
buf_str(struct buf *b, const char *s)
{
    buf_mem(b, s, strlen(s));
}

static void
buf_u64(struct buf *b, uint64_t v)
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
buf_i64(struct buf *b, int64_t v)
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
buf_double(struct buf *b, double v)
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
metrics_escape_label(const char *value, char *out, size_t out_len)
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

/* ---- samples ---- */

/* Append `key="value"` (escaped) to the build's label set. */
static void
label_add(struct metrics_build *b, const char *key, const char *value)
{
    size_t left = sizeof(b->labels) - b->labels_len;
    int n = snprintf(b->labels + b->labels_len, left, "%s%s=\"", b->labels_len ? "," : "", key);

    assert(n > 0 && (size_t)n < left); /* LABELS_MAX holds the longest legal set */
    b->labels_len += (size_t)n;
    b->labels_len +=
        metrics_escape_label(value, b->labels + b->labels_len, sizeof(b->labels) - b->labels_len);
    assert(b->labels_len + 1 < sizeof(b->labels));
    b->labels[b->labels_len++] = '"';
    b->labels[b->labels_len] = '\0';
}

/* `name{labels[,key="value"]} ` into family f; the caller writes the value and the newline. */
static struct buf *
sample_begin(struct metrics_build *b, enum family f, const char *key, const char *value)
{
    struct buf *out = &b->fam[f];

    buf_str(out, families[f].name);
    if (b->labels_len || key) {
        buf_mem(out, "{", 1);
        buf_mem(out, b->labels, b->labels_len);
        if (key) {
            if (b->labels_len)
                buf_mem(out, ",", 1);
            buf_str(out, key);
            buf_mem(out, "=\"", 2);
            buf_str(out, value); /* our own names: nothing to escape */
            buf_mem(out, "\"", 1);
        }
        buf_mem(out, "}", 1);
    }
    buf_mem(out, " ", 1);
    return out;
}

static void
put_u64(struct metrics_build *b, enum family f, uint64_t v)
{
    struct buf *out = sample_begin(b, f, NULL, NULL);

    buf_u64(out, v);
    buf_mem(out, "\n", 1);
}

static void
put_kib(struct metrics_build *b, enum family f, uint64_t kib)
{
    struct buf *out = sample_begin(b, f, NULL, NULL);

    /* Bytes past 2^64 print as the saturated value: no legal report gets there. */
    buf_u64(out, kib > UINT64_MAX / 1024 ? UINT64_MAX : kib * 1024);
    buf_mem(out, "\n", 1);
}

static void
put_double(struct metrics_build *b, enum family f, double v)
{
    struct buf *out = sample_begin(b, f, NULL, NULL);

    buf_double(out, v);
    buf_mem(out, "\n", 1);
}

static void
put_labelled(struct metrics_build *b, enum family f, const char *key, const char *value, uint64_t v)
{
    struct buf *out = sample_begin(b, f, key, value);

    buf_u64(out, v);
    buf_mem(out, "\n", 1);
}

static void
put_seconds_ms(struct metrics_build *b, enum family f, uint64_t ms)
{
    put_double(b, f, (double)ms / 1000.0);
}

/* ---- hosts and VMs ---- */

static const char *const vm_states[] = {
    [SCHED_VM_RUNNING] = "running",
    [SCHED_VM_PAUSED] = "paused",
    [SCHED_VM_MIGRATING] = "migrating",
    [SCHED_VM_OTHER] = "other",
};

static void
write_vm(struct metrics_build *b, const char *host_id, const struct fleet_vm *vm)
{
    char uuid[WIRE_UUID_LEN];

    fleet_uuid_format(vm->uuid, uuid);
    b->labels_len = 0;
    label_add(b, "host", host_id);
    label_add(b, "domain", vm->name);
    label_add(b, "uuid", uuid);
    put_kib(b, FAM_VM_MAX, vm->max_kib);
    put_kib(b, FAM_VM_ACTUAL, vm->actual_kib);
    if (vm->target_kib)
        put_kib(b, FAM_VM_TARGET, vm->target_kib);
    if (vm->has_unused)
        put_kib(b, FAM_VM_UNUSED, vm->unused_kib);
    if (vm->has_usable)
        put_kib(b, FAM_VM_USABLE, vm->usable_kib);
    put_seconds_ms(b, FAM_VM_STATS_AGE, vm->stats_age_ms);
    if (vm->state < sizeof(vm_states) / sizeof(vm_states[0]))
        put_labelled(b, FAM_VM_STATE, "state", vm_states[vm->state], 1);
    put_u64(b, FAM_VM_MANAGED, vm->managed);
    put_u64(b, FAM_VM_STUCK, vm->stuck);
    if (vm->last_reason < SCHED_REASON_COUNT)
        put_labelled(b, FAM_VM_LAST_REASON, "reason",
                     sched_reason_name((enum sched_reason)vm->last_reason), 1);
}

/* Decisions by reason: grow and shrink always (the reasons of every decision a report
 * carries), any other reason once it was seen, so each series starts at 0 and stays. */
static void
write_decisions(struct metrics_build *b, const struct fleet_host_info *h)
{
    for (int r = 0; r < SCHED_REASON_COUNT; r++) {
        if (r != SCHED_REASON_GROW && r != SCHED_REASON_SHRINK && !h->decisions_by_reason[r])
            continue;
        const char *name = sched_reason_name((enum sched_reason)r);
        put_labelled(b, FAM_DECISIONS, "reason", name, h->decisions_by_reason[r]);
        uint64_t kib = h->moved_kib_by_reason[r];
        put_labelled(b, FAM_DECISION_MOVED, "reason", name,
                     kib > UINT64_MAX / 1024 ? UINT64_MAX : kib * 1024);
    }
}

static void
write_report(struct metrics_build *b,
             const struct metrics_source *src,
             const struct fleet_host_info *h)
{
    uint64_t floor_kib;

    put_kib(b, FAM_HOST_MEMORY, h->host_total_kib);
    put_kib(b, FAM_HOST_AVAILABLE, h->host_available_kib);
    if (src->host_floor_kib && h->policy_version &&
        src->host_floor_kib(src->ctx, h->policy_version, &floor_kib)) {
        struct buf *out = sample_begin(b, FAM_HOST_FLOOR_HEADROOM, NULL, NULL);
        buf_i64(out, ((int64_t)h->host_available_kib - (int64_t)floor_kib) * 1024);
        buf_mem(out, "\n", 1);
    }
    put_u64(b, FAM_HOST_VMS, h->vms_total);
    if (h->host_total_kib)
        put_double(b, FAM_HOST_OVERCOMMIT, (double)h->vm_max_kib / (double)h->host_total_kib);
    put_u64(b, FAM_HOST_ROUNDS, h->counters.rounds);
    put_kib(b, FAM_HOST_GRANTED, h->counters.granted_kib);
    put_kib(b, FAM_HOST_RECLAIMED, h->counters.reclaimed_kib);
    put_labelled(b, FAM_HOST_AGENT_ERRORS, "kind", "apply_failure", h->counters.apply_failures);
    put_labelled(b, FAM_HOST_AGENT_ERRORS, "kind", "report_dropped", h->counters.reports_dropped);
    put_labelled(b, FAM_HOST_AGENT_ERRORS, "kind", "message_rejected",
                 h->counters.messages_rejected);
}

static void
write_host(struct metrics_build *b,
           const struct metrics_source *src,
           const struct fleet_host_info *h)
{
    b->labels_len = 0;
    label_add(b, "host", h->host_id);
    for (int l = 0; l < FLEET_LIVENESS_STATES; l++)
        put_labelled(b, FAM_HOST_LIVENESS, "liveness", fleet_liveness_name((enum fleet_liveness)l),
                     h->liveness == (enum fleet_liveness)l);
    put_seconds_ms(b, FAM_HOST_LAST_SEEN_AGE, util_sub_sat(src->now_ms, h->last_seen_ms));
    put_u64(b, FAM_HOST_POLICY_VERSION, h->policy_version);
    if (h->last_ack_version) {
        put_u64(b, FAM_HOST_POLICY_ACK_VERSION, h->last_ack_version);
        put_u64(b, FAM_HOST_POLICY_ACK_APPLIED, h->last_ack_applied);
    }
    write_decisions(b, h);
    if (!h->has_report)
        return;
    write_report(b, src, h);
    for (size_t v = 0; v < h->n_vms; v++)
        write_vm(b, h->host_id, &h->vms[v]);
}

/* ---- the build ---- */

static int
collect_id(const struct fleet_host_info *h, void *ctx)
{
    struct metrics_build *b = ctx;

    snprintf(b->ids[b->n_ids++], WIRE_HOST_ID_MAX, "%s", h->host_id);
    return 0;
}

/* Room for a family's samples before the first one: growing a buffer of hundreds of MiB by
 * doubling copies it again and again, and page faults on the copies cost more than the text.
 * Room never written is address space, not memory (large blocks are mapped lazily). */
static void
reserve_families(struct metrics_build *b, size_t n_hosts, size_t n_vms)
{
    for (int f = FAM_HOST_LIVENESS; f < FAM_COUNT; f++) {
        size_t lines = n_hosts;
        if (f == FAM_HOST_LIVENESS || f == FAM_HOST_AGENT_ERRORS)
            lines = n_hosts * 3;
        else if (f == FAM_DECISIONS || f == FAM_DECISION_MOVED)
            lines = n_hosts * 2;
        else if (f >= FAM_VM_MAX)
            lines = n_vms;
        buf_reserve(&b->fam[f], lines * (f >= FAM_VM_MAX ? VM_LINE_BYTES : HOST_LINE_BYTES));
    }
}

struct metrics_build *
metrics_build_new(const struct fleet *fleet)
{
    struct metrics_build *b = util_xcalloc(1, sizeof(*b));
    size_t n = fleet_host_count(fleet);

    b->ids = util_xcalloc(n ? n : 1, sizeof(*b->ids));
    fleet_hosts_each(fleet, collect_id, b);
    reserve_families(b, n, fleet_vm_count(fleet));
    return b;
}

void
metrics_build_destroy(struct metrics_build **build)
{
    struct metrics_build *b = build ? *build : NULL;

    if (!b)
        return;
    for (size_t f = 0; f < FAM_COUNT; f++)
        free(b->fam[f].p);
    free(b->ids);
    free(b);
    *build = NULL;
}

bool
metrics_build_step(struct metrics_build *b, const struct metrics_source *src, size_t max_hosts)
{
    struct fleet_host_info h;

    for (size_t done = 0; b->next < b->n_ids && (done < max_hosts || done == 0); done++) {
        if (fleet_host_get(src->fleet, b->ids[b->next++], &h) == 0)
            write_host(b, src, &h);
    }
    return b->next >= b->n_ids;
}

static void
write_fleet(struct metrics_build *b, const struct metrics_source *src)
{
    struct fleet_totals t;

    fleet_totals(src->fleet, src->now_ms, src->pressure_unused_kib, &t);
    b->labels_len = 0;
    for (int l = 0; l < FLEET_LIVENESS_STATES; l++)
        put_labelled(b, FAM_FLEET_HOSTS, "liveness", fleet_liveness_name((enum fleet_liveness)l),
                     t.hosts_by_liveness[l]);
    put_u64(b, FAM_FLEET_HOSTS_REPORTING, t.hosts_reporting);
    put_u64(b, FAM_FLEET_VMS, t.vms);
    put_u64(b, FAM_FLEET_VMS_UNDER_PRESSURE, t.vms_under_pressure);
    put_kib(b, FAM_FLEET_HOST_MEMORY, t.host_total_kib);
    put_kib(b, FAM_FLEET_HOST_AVAILABLE, t.host_available_kib);
    put_kib(b, FAM_FLEET_VM_ACTUAL, t.vm_actual_kib);
    put_kib(b, FAM_FLEET_VM_MAX, t.vm_max_kib);
    put_double(b, FAM_FLEET_OVERCOMMIT, t.overcommit);
    put_u64(b, FAM_FLEET_DECISIONS_LAST_MINUTE, t.decisions_last_minute);
}

/* HELP and TYPE of family f, then its samples, as one part (the buffer moves into text). */
static void
emit_family(struct metrics_build *b, enum family f, struct metrics_text *text)
{
    struct buf head = {0};

    if (!b->fam[f].len)
        return; /* no sample: leave the family out rather than announce an empty one */
    buf_str(&head, "# HELP ");
    buf_str(&head, families[f].name);
    buf_mem(&head, " ", 1);
    buf_str(&head, families[f].help);
    buf_str(&head, "\n# TYPE ");
    buf_str(&head, families[f].name);
    buf_mem(&head, " ", 1);
    buf_str(&head, families[f].type);
    buf_mem(&head, "\n", 1);
    text->parts[text->n_parts] = head.p;
    text->lens[text->n_parts++] = head.len;
    text->parts[text->n_parts] = b->fam[f].p;
    text->lens[text->n_parts++] = b->fam[f].len;
    text->bytes += head.len + b->fam[f].len;
    b->fam[f] = (struct buf){0};
}

struct metrics_text *
metrics_build_finish(struct metrics_build *b, const struct metrics_source *src)
{
    struct metrics_text *text = util_xcalloc(1, sizeof(*text));

    write_fleet(b, src);
    text->parts = util_xcalloc(2 * FAM_COUNT, sizeof(*text->parts));
    text->lens = util_xcalloc(2 * FAM_COUNT, sizeof(*text->lens));
    for (int f = 0; f < FAM_COUNT; f++)
        emit_family(b, (enum family)f, text);
    return text;
}

void
metrics_text_destroy(struct metrics_text **text)
{
    struct metrics_text *t = text ? *text : NULL;

    if (!t)
        return;
    for (size_t i = 0; i < t->n_parts; i++)
        free(t->parts[i]);
    free(t->parts);
    free(t->lens);
    free(t);
    *text = NULL;
}

struct metrics_text *
metrics_format(const struct metrics_source *src)
{
    struct metrics_build *b = metrics_build_new(src->fleet);

    while (!metrics_build_step(b, src, SIZE_MAX))
        ;
    struct metrics_text *text = metrics_build_finish(b, src);
    metrics_build_destroy(&b);
    return text;
}

char *
metrics_text_join(const struct metrics_text *text)
{
    char *out = util_xcalloc(text->bytes + 1, 1);
    size_t at = 0;

    for (size_t i = 0; i < text->n_parts; i++) {
        memcpy(out + at, text->parts[i], text->lens[i]);
        at += text->lens[i];
    }
    return out;
}

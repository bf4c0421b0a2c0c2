/*
 * metrics.c - the Prometheus text exposition of the fleet (see metrics.h).
 *
 * Owns the build: the host ids taken at its start and a writer (common/prom.h: the family
 * table, one growing buffer per family, the series of a host's report and of a VM, shared with
 * the agent's textfile). What only the coordinator knows is written here: fleet totals,
 * liveness, the policy acks, decisions by reason.
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "sched.h"
#include "util.h"

#define VM_LINE_BYTES   160 /* a VM's sample with usual names: ~140 bytes */
#define HOST_LINE_BYTES 96

struct metrics_build {
    char (*ids)[WIRE_HOST_ID_MAX]; /* the hosts to write, sorted */
    size_t n_ids;
    size_t next;
    size_t n_vms;  /* in the fleet at the start */
    bool reserved; /* the families' room, made at the first step (it depends on the source) */
    struct prom_writer w;
};

/* ---- hosts and VMs ---- */

static void
write_vm(struct metrics_build *b, const char *host_id, const struct fleet_vm *vm)
{
    char uuid[WIRE_UUID_LEN];

    fleet_uuid_format(vm->uuid, uuid);
    prom_write_vm(&b->w, host_id,
                  &(struct prom_vm){
                      .name = vm->name,
                      .uuid = uuid,
                      .max_kib = vm->max_kib,
                      .actual_kib = vm->actual_kib,
                      .target_kib = vm->target_kib,
                      .unused_kib = vm->unused_kib,
                      .usable_kib = vm->usable_kib,
                      .stats_age_ms = vm->stats_age_ms,
                      .state = vm->state,
                      .last_reason = vm->last_reason,
                      .skip_reason = vm->skip_reason,
                      .has_unused = vm->has_unused,
                      .has_usable = vm->has_usable,
                      .managed = vm->managed,
                      .stuck = vm->stuck,
                  });
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
        prom_put_labelled(&b->w, PROM_DECISIONS, "reason", name, h->decisions_by_reason[r]);
        uint64_t kib = h->moved_kib_by_reason[r];
        prom_put_labelled(&b->w, PROM_DECISION_MOVED, "reason", name,
                          kib > UINT64_MAX / 1024 ? UINT64_MAX : kib * 1024);
    }
}

static void
write_report(struct metrics_build *b,
             const struct metrics_source *src,
             const struct fleet_host_info *h)
{
    struct prom_host p = {
        .total_kib = h->host_total_kib,
        .available_kib = h->host_available_kib,
        .vms = h->vms_total,
        .vm_max_kib = h->vm_max_kib,
        .rounds = h->counters.rounds,
        .granted_kib = h->counters.granted_kib,
        .reclaimed_kib = h->counters.reclaimed_kib,
        .apply_failures = h->counters.apply_failures,
        .reports_dropped = h->counters.reports_dropped,
        .messages_rejected = h->counters.messages_rejected,
    };

    p.has_floor = src->host_floor_kib && h->policy_version &&
                  src->host_floor_kib(src->ctx, h->policy_version, &p.floor_kib);
    prom_write_host(&b->w, &p);
}

static void
write_host(struct metrics_build *b,
           const struct metrics_source *src,
           const struct fleet_host_info *h)
{
    prom_labels_clear(&b->w);
    prom_label_add(&b->w, "host", h->host_id);
    for (int l = 0; l < FLEET_LIVENESS_STATES; l++)
        prom_put_labelled(&b->w, PROM_HOST_LIVENESS, "liveness",
                          fleet_liveness_name((enum fleet_liveness)l),
                          h->liveness == (enum fleet_liveness)l);
    prom_put_ms(&b->w, PROM_HOST_LAST_SEEN_AGE, util_sub_sat(src->now_ms, h->last_seen_ms));
    prom_put_u64(&b->w, PROM_HOST_POLICY_VERSION, h->policy_version);
    if (h->last_ack_version) {
        prom_put_u64(&b->w, PROM_HOST_POLICY_ACK_VERSION, h->last_ack_version);
        prom_put_u64(&b->w, PROM_HOST_POLICY_ACK_APPLIED, h->last_ack_applied);
    }
    write_decisions(b, h);
    if (!h->has_report)
        return;
    write_report(b, src, h);
    if (src->omit_vm_series)
        return;
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
reserve_families(struct metrics_build *b, size_t n_hosts, size_t n_vms, bool omit_vm_series)
{
    for (int f = PROM_HOST_LIVENESS; f < PROM_FAMILIES; f++) {
        size_t lines = n_hosts;
        if (f == PROM_AGENT_ROUND_DURATION || f == PROM_AGENT_FAILED_ROUNDS)
            continue; /* the agent's own */
        if (f == PROM_VM_SKIPPED)
            continue; /* few VMs, if any */
        if (f == PROM_HOST_LIVENESS || f == PROM_HOST_AGENT_ERRORS)
            lines = n_hosts * 3;
        else if (f == PROM_DECISIONS || f == PROM_DECISION_MOVED)
            lines = n_hosts * 2;
        else if (f >= PROM_VM_MAX)
            lines = omit_vm_series ? 0 : n_vms;
        prom_reserve(&b->w, (enum prom_family)f,
                     lines * (f >= PROM_VM_MAX ? VM_LINE_BYTES : HOST_LINE_BYTES));
    }
}

struct metrics_build *
metrics_build_new(const struct fleet *fleet)
{
    struct metrics_build *b = util_xcalloc(1, sizeof(*b));
    size_t n = fleet_host_count(fleet);

    b->ids = util_xcalloc(n ? n : 1, sizeof(*b->ids));
    fleet_hosts_each(fleet, collect_id, b);
    b->n_vms = fleet_vm_count(fleet);
    return b;
}

void
metrics_build_destroy(struct metrics_build **build)
{
    struct metrics_build *b = build ? *build : NULL;

    if (!b)
        return;
    prom_writer_clear(&b->w);
    free(b->ids);
    free(b);
    *build = NULL;
}

bool
metrics_build_step(struct metrics_build *b, const struct metrics_source *src, size_t max_hosts)
{
    struct fleet_host_info h;

    if (!b->reserved) {
        reserve_families(b, b->n_ids, b->n_vms, src->omit_vm_series);
        b->reserved = true;
    }
    for (size_t done = 0; b->next < b->n_ids && (done < max_hosts || done == 0); done++) {
        if (fleet_host_get(src->fleet, b->ids[b->next++], &h) == 0)
            write_host(b, src, &h);
    }
    return b->next >= b->n_ids;
}

/* What the history holds and at what resolution: it coarsens as the fleet grows. */
static void
write_history(struct prom_writer *w, const struct history *history)
{
    struct history_stats st;

    history_stats(history, &st);
    prom_put_u64(w, PROM_HISTORY_BYTES, st.bytes);
    prom_put_u64(w, PROM_HISTORY_SERIES, st.series);
    prom_put_labelled(w, PROM_HISTORY_STEP, "tier", "fine", st.fine_step_s);
    prom_put_labelled(w, PROM_HISTORY_STEP, "tier", "coarse", st.coarse_step_s);
    prom_put_u64(w, PROM_HISTORY_REFUSED, st.refused);
}

static void
write_fleet(struct metrics_build *b, const struct metrics_source *src)
{
    struct prom_writer *w = &b->w;
    struct fleet_totals t;

    fleet_totals(src->fleet, src->now_ms, src->pressure_unused_kib, &t);
    prom_labels_clear(w);
    for (int l = 0; l < FLEET_LIVENESS_STATES; l++)
        prom_put_labelled(w, PROM_FLEET_HOSTS, "liveness",
                          fleet_liveness_name((enum fleet_liveness)l), t.hosts_by_liveness[l]);
    prom_put_u64(w, PROM_FLEET_HOSTS_REPORTING, t.hosts_reporting);
    prom_put_u64(w, PROM_FLEET_VMS, t.vms);
    prom_put_u64(w, PROM_FLEET_VMS_UNDER_PRESSURE, t.vms_under_pressure);
    prom_put_kib(w, PROM_FLEET_HOST_MEMORY, t.host_total_kib);
    prom_put_kib(w, PROM_FLEET_HOST_AVAILABLE, t.host_available_kib);
    prom_put_kib(w, PROM_FLEET_VM_ACTUAL, t.vm_actual_kib);
    prom_put_kib(w, PROM_FLEET_VM_MAX, t.vm_max_kib);
    prom_put_double(w, PROM_FLEET_OVERCOMMIT, t.overcommit);
    prom_put_u64(w, PROM_FLEET_DECISIONS_LAST_MINUTE, t.decisions_last_minute);
    if (src->history)
        write_history(w, src->history);
}

struct metrics_text *
metrics_build_finish(struct metrics_build *b, const struct metrics_source *src)
{
    struct metrics_text *text = util_xcalloc(1, sizeof(*text));

    write_fleet(b, src);
    text->parts = util_xcalloc(PROM_PARTS_MAX, sizeof(*text->parts));
    text->lens = util_xcalloc(PROM_PARTS_MAX, sizeof(*text->lens));
    text->n_parts = prom_writer_emit(&b->w, text->parts, text->lens, &text->bytes);
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

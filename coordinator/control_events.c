/*
 * control_events.c - what happened: why a VM's balloon moved (its decisions with their signal,
 * counterpart and policy) and the fleet's events.
 */
#define _GNU_SOURCE
#include "control_reply.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"
#include "util.h"

#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX     1000000

/* ---- why ---- */

/* The VM named by name or uuid on the host; NULL when it has none. */
static const struct fleet_vm *
find_vm(const struct fleet_host_info *h, const char *which)
{
    uint8_t uuid[FLEET_UUID_BYTES];
    bool by_uuid = fleet_uuid_parse(which, uuid) == 0;

    for (size_t i = 0; i < h->n_vms; i++) {
        const struct fleet_vm *vm = &h->vms[i];
        if (by_uuid ? memcmp(vm->uuid, uuid, FLEET_UUID_BYTES) == 0 : strcmp(vm->name, which) == 0)
            return vm;
    }
    return NULL;
}

/* Where a decision's memory came from or went: "host", a VM's name (its uuid when the host no
 * longer reports it), or "-". */
static const char *
counterpart_name(const struct fleet_host_info *h, const struct fleet_decision *d, char *buf)
{
    if (d->counterpart == FLEET_COUNTERPART_HOST)
        return "host";
    if (d->counterpart != FLEET_COUNTERPART_VM)
        return "-";
    for (size_t i = 0; i < h->n_vms; i++)
        if (memcmp(h->vms[i].uuid, d->counterpart_uuid, FLEET_UUID_BYTES) == 0)
            return h->vms[i].name;
    fleet_uuid_format(d->counterpart_uuid, buf);
    return buf;
}

/* The rule behind a decision, with the numbers: "usable 80 - look-ahead 20 = 60 < 100
 * (vm_min_unused): asked 140 MiB". The thresholds are the host's as it last reported them. */
static void
decision_why(const struct fleet_decision *d, const struct policy *p, char *buf, size_t len)
{
    FILE *f = fmemopen(buf, len, "w");
    bool grow = d->reason == SCHED_REASON_GROW;
    uint64_t threshold = !p ? 0 : grow ? p->vm_min_unused_kib : p->vm_excess_unused_kib;

    if (!f) {
        snprintf(buf, len, "-");
        return;
    }
    fprintf(f, "%s %" PRIu32, p ? policy_demand_signal_name(p->demand_signal) : "signal",
            d->signal_mib);
    if (d->lookahead_mib)
        fprintf(f, " - look-ahead %" PRIu32 " = %" PRId64, d->lookahead_mib,
                (int64_t)d->signal_mib - (int64_t)d->lookahead_mib);
    if (p)
        fprintf(f, " %s %" PRIu64 " (%s)", grow ? "<" : ">", threshold / UTIL_KIB_PER_MIB,
                grow ? "vm_min_unused" : "vm_excess_unused");
    if (grow)
        fprintf(f, ": asked %" PRIu32 " MiB", d->need_mib);
    else
        fprintf(f, ": gave %" PRIu32 " MiB to VMs, %" PRIu32 " to the host", d->vm_mib,
                d->host_mib);
    fclose(f);
}

static json_t *
decision_json(const struct fleet_host_info *h, const struct fleet_decision *d, uint64_t now_ms)
{
    char uuid[WIRE_UUID_LEN];
    json_t *o = jobj();

    jset(o, "age_ms", ju64(util_sub_sat(now_ms, d->at_ms)));
    jset(o, "reason", jstr(sched_reason_name((enum sched_reason)d->reason)));
    jset(o, "old_target_kib", ju64(d->old_target_kib));
    jset(o, "new_target_kib", ju64(d->new_target_kib));
    jset(o, "counterpart", jstr(counterpart_name(h, d, uuid)));
    jset(o, "signal_mib", ju64(d->signal_mib));
    jset(o, "need_mib", ju64(d->need_mib));
    jset(o, "lookahead_mib", ju64(d->lookahead_mib));
    jset(o, "from_or_to_vms_mib", ju64(d->vm_mib));
    jset(o, "from_or_to_host_mib", ju64(d->host_mib));
    jset(o, "policy_version", ju64(d->policy_version));
    return o;
}

/* The VM's decisions in the host's ring, newest first. Returns how many; *out is malloc'd. */
static size_t
vm_decisions(const struct control_context *cc,
             const struct fleet_host_info *h,
             const struct fleet_vm *vm,
             struct fleet_decision **out)
{
    struct fleet_decision *all = util_xcalloc(h->n_decisions ? h->n_decisions : 1, sizeof(*all));
    size_t n = fleet_host_decisions(cc->fleet, h->host_id, all, h->n_decisions), kept = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(all[i].uuid, vm->uuid, FLEET_UUID_BYTES) == 0)
            all[kept++] = all[i];
    *out = all;
    return kept;
}

static void
why_text_head(FILE *f,
              const struct control_context *cc,
              const struct fleet_host_info *h,
              const struct fleet_vm *vm)
{
    char a[32], b[32], c[32], d[32], uuid[WIRE_UUID_LEN];
    const struct policy *p = h->policy_in_force;

    fleet_uuid_format(vm->uuid, uuid);
    fprintf(f, "%s on %s (%s): balloon %s MiB of max %s, unused %s MiB, usable %s MiB; %s%s\n",
            vm->name, h->host_id, uuid, fmt_mib(a, sizeof(a), vm->actual_kib),
            fmt_mib(b, sizeof(b), vm->max_kib),
            vm->has_unused ? fmt_mib(c, sizeof(c), vm->unused_kib) : "-",
            vm->has_usable ? fmt_mib(d, sizeof(d), vm->usable_kib) : "-",
            vm->managed ? "managed" : "unmanaged", vm->stuck ? ", balloon stuck" : "");
    fprintf(f, "host %s, last seen %s\n", fleet_liveness_name(h->liveness),
            fmt_age(a, sizeof(a), cc->now_ms, h->last_seen_ms));
    if (!p) {
        fputs("thresholds: not reported by this agent (an older version)\n", f);
        return;
    }
    fprintf(f,
            "thresholds (policy %s, as the agent reported them): demand signal %s; needs below "
            "%" PRIu64 " MiB, grown to leave %" PRIu64 ", gives above %" PRIu64 ", at most %" PRIu64
            " a round; the host keeps %" PRIu64 " MiB\n",
            fmt_version(b, sizeof(b), h->policy_version),
            policy_demand_signal_name(p->demand_signal), p->vm_min_unused_kib / UTIL_KIB_PER_MIB,
            p->vm_grow_target_unused_kib / UTIL_KIB_PER_MIB,
            p->vm_excess_unused_kib / UTIL_KIB_PER_MIB, p->max_release_step_kib / UTIL_KIB_PER_MIB,
            p->host_min_unused_kib / UTIL_KIB_PER_MIB);
}

static enum control_status
why_text(struct call *c,
         const struct fleet_host_info *h,
         const struct fleet_vm *vm,
         const struct fleet_decision *ds,
         size_t n)
{
    static const struct column cols[] = {
        {"WHEN", false}, {"DECISION", false}, {"TARGET MiB", false},
        {"WITH", false}, {"POLICY", false},   {"WHY", false},
    };
    struct table tb = {.cols = cols, .n_cols = ARRAY_SIZE(cols)};
    struct text out;
    FILE *f = text_open(&out);
    char a[32], b[32], when[32], uuid[WIRE_UUID_LEN], why[192];

    why_text_head(f, c->cc, h, vm);
    if (n == 0) {
        fprintf(f, "no decision about it among the host's last %zu\n", h->n_decisions);
        return text_reply(c, &out);
    }
    for (size_t i = 0; i < n; i++) {
        const struct fleet_decision *d = &ds[i];
        decision_why(d, h->policy_in_force, why, sizeof(why));
        table_add(&tb, "%s", fmt_age(when, sizeof(when), c->cc->now_ms, d->at_ms));
        table_add(&tb, "%s", sched_reason_name((enum sched_reason)d->reason));
        table_add(&tb, "%s -> %s", fmt_mib(a, sizeof(a), d->old_target_kib),
                  fmt_mib(b, sizeof(b), d->new_target_kib));
        table_add(&tb, "%s", counterpart_name(h, d, uuid));
        table_add(&tb, "%s", fmt_version(b, sizeof(b), d->policy_version));
        table_add(&tb, "%s", why);
    }
    table_print(f, &tb);
    table_free(&tb);
    return text_reply(c, &out);
}

static enum control_status
why_json(struct call *c,
         const struct fleet_host_info *h,
         const struct fleet_vm *vm,
         const struct fleet_decision *ds,
         size_t n)
{
    json_t *root = jobj(), *list = jarr();
    struct rows r = {.cc = c->cc, .array = jarr()};

    vm_put(&r, h, vm);
    jset(root, "vm", json_incref(json_array_get(r.array, 0)));
    json_decref(r.array);
    jset(root, "host_id", jstr(h->host_id));
    jset(root, "policy_version", ju64(h->policy_version));
    jset(root, "policy_in_force",
         h->policy_in_force ? policy_json(h->policy_in_force, policy_keys_all())
                            : jcheck(json_null()));
    for (size_t i = 0; i < n; i++)
        jpush(list, decision_json(h, &ds[i], c->cc->now_ms));
    jset(root, "decisions", list);
    jset(root, "decisions_kept", ju64(h->n_decisions));
    return json_reply(c, root);
}

enum control_status
cmd_why(struct call *c)
{
    const char *host = opt(c, "host"), *which = opt(c, "vm");
    struct fleet_host_info h;
    struct fleet_decision *ds;
    enum control_status st;

    if (!host || !which)
        return fail(c, CONTROL_USAGE, "why: wants HOST and VM (a name or a uuid)");
    if (fleet_host_get(c->cc->fleet, host, &h) < 0)
        return fail(c, CONTROL_NOT_FOUND, "why: no host '%s' in the fleet", host);
    const struct fleet_vm *vm = find_vm(&h, which);
    if (!vm)
        return fail(c, CONTROL_NOT_FOUND, "why: host '%s' reports no VM named '%s'", host, which);
    size_t n = vm_decisions(c->cc, &h, vm, &ds);
    st = c->req->json ? why_json(c, &h, vm, ds, n) : why_text(c, &h, vm, ds, n);
    free(ds);
    return st;
}

/* ---- events ---- */

/* What happened, in a few words: "stale -> down", "v4: refused because ...". */
static void
event_detail(const struct fleet_event *e, char *buf, size_t len)
{
    switch (e->kind) {
    case FLEET_EVENT_JOINED:
    case FLEET_EVENT_REJOINED:
        snprintf(buf, len, "agent %s, holds policy v%" PRIu64, e->detail, e->policy_version);
        break;
    case FLEET_EVENT_STALE:
    case FLEET_EVENT_DOWN:
    case FLEET_EVENT_BACK:
        snprintf(buf, len, "%s -> %s", fleet_liveness_name(e->from),
                 e->kind == FLEET_EVENT_BACK ? "fresh" : fleet_event_kind_name(e->kind));
        break;
    case FLEET_EVENT_POLICY_APPLIED:
        snprintf(buf, len, "v%" PRIu64, e->policy_version);
        break;
    case FLEET_EVENT_POLICY_REFUSED:
        snprintf(buf, len, "v%" PRIu64 ": %s", e->policy_version, e->detail);
        break;
    default:
        snprintf(buf, len, "%s", e->detail);
        break;
    }
}

static bool
event_is_liveness(enum fleet_event_kind kind)
{
    return kind == FLEET_EVENT_STALE || kind == FLEET_EVENT_DOWN || kind == FLEET_EVENT_BACK;
}

static void
event_put(struct rows *r, const struct fleet_event *e)
{
    char detail[WIRE_REASON_MAX + 64];
    /* An event restored from before a restart has only its wall clock time. */
    uint64_t age_ms = e->at_wall_ms ? util_sub_sat(r->cc->now_wall_ms, e->at_wall_ms)
                                    : util_sub_sat(r->cc->now_ms, e->at_ms);

    row_begin(r);
    put_json(r, "seq", ju64(e->seq));
    put_cell(r, "%" PRIu64, e->seq);
    put_json(r, "kind", jstr(fleet_event_kind_name(e->kind)));
    put_age_ms(r, "age_ms", age_ms);
    put_cell(r, "%s", fleet_event_kind_name(e->kind));
    put_str(r, "host_id", e->host_id);
    put_json(r, "at_wall_ms", ju64(util_sub_sat(r->cc->now_wall_ms, age_ms)));
    if (r->array && event_is_liveness(e->kind))
        put_json(r, "from", jstr(fleet_liveness_name(e->from)));
    if (r->array && e->kind != FLEET_EVENT_REMOVED && !event_is_liveness(e->kind))
        put_json(r, "policy_version", ju64(e->policy_version));
    if (r->array) {
        put_json(r, "detail", jstr(e->detail));
    } else {
        event_detail(e, detail, sizeof(detail));
        put_cell(r, "%s", detail);
    }
    row_end(r);
}

static int
each_event(const struct fleet_event *e, void *ctx)
{
    struct rows *r = ctx;

    if (r->count >= r->limit)
        return 1;
    event_put(r, e);
    return 0;
}

enum control_status
cmd_events(struct call *c)
{
    static const struct column cols[] = {
        {"SEQ", true}, {"WHEN", false}, {"EVENT", false}, {"HOST", false}, {"DETAIL", false},
    };
    struct rows r = {.cc = c->cc, .table = {.cols = cols, .n_cols = 5}};
    uint64_t since, limit, last = fleet_last_event_seq(c->cc->fleet);
    enum control_status st = count_option(c, "since", 0, UINT64_MAX, 0, &since);

    if (st == CONTROL_OK)
        st = count_option(c, "limit", 1, EVENTS_LIMIT_MAX, EVENTS_LIMIT_DEFAULT, &limit);
    if (st != CONTROL_OK)
        return st;
    r.limit = limit;
    /* Without --since, the newest: sequence numbers are 1, 2, ... with no gap. */
    if (!opt(c, "since"))
        since = last > limit ? last - limit : 0;
    r.array = c->req->json ? jarr() : NULL;
    fleet_events(c->cc->fleet, since, each_event, &r);
    if (!r.array)
        return rows_reply(c, &r, "events", "no events");
    json_t *root = jobj();
    jset(root, "events", r.array);
    jset(root, "last_seq", ju64(last));
    return json_reply(c, root);
}

/*
 * control_fleet.c - the fleet as memschedctl sees it: status, hosts (sorted, filtered, paged),
 * hosts forget, and vms (sorted, paged by host/uuid).
 */
#define _GNU_SOURCE /* qsort_r */
#include "control_reply.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prom.h"
#include "sched.h"
#include "util.h"

#define VMS_LIMIT_DEFAULT 1000
#define VMS_LIMIT_MAX     10000

/* ---- status ---- */

static enum control_status
status_json(struct call *c, const struct fleet_totals *t, const struct store_policy_entry *fp)
{
    json_t *root = jobj(), *s = jobj(), *hosts = jobj(), *vms = jobj(), *mem = jobj();

    jset(hosts, "total", ju64(t->hosts));
    for (int l = 0; l < FLEET_LIVENESS_STATES; l++)
        jset(hosts, fleet_liveness_name((enum fleet_liveness)l), ju64(t->hosts_by_liveness[l]));
    jset(hosts, "reporting", ju64(t->hosts_reporting));
    jset(vms, "total", ju64(t->vms));
    jset(vms, "under_pressure", ju64(t->vms_under_pressure));
    jset(vms, "pressure_unused_kib", ju64(c->cc->pressure_unused_kib));
    jset(mem, "host_total_kib", ju64(t->host_total_kib));
    jset(mem, "host_available_kib", ju64(t->host_available_kib));
    jset(mem, "vm_actual_kib", ju64(t->vm_actual_kib));
    jset(mem, "vm_max_kib", ju64(t->vm_max_kib));
    jset(s, "hosts", hosts);
    jset(s, "vms", vms);
    jset(s, "memory", mem);
    jset(s, "overcommit", jcheck(json_real(t->overcommit)));
    jset(s, "decisions_last_minute", ju64(t->decisions_last_minute));
    jset(s, "fleet_policy", fp ? entry_json(fp) : jcheck(json_null()));
    jset(s, "last_event_seq", ju64(fleet_last_event_seq(c->cc->fleet)));
    jset(root, "status", s);
    return json_reply(c, root);
}

static enum control_status
status_table(struct call *c, const struct fleet_totals *t, const struct store_policy_entry *fp)
{
    static const struct column cols[] = {{NULL, false}, {NULL, false}};
    struct table tb = {.cols = cols, .n_cols = 2};
    struct text out;
    FILE *f = text_open(&out);
    char a[32], b[32], line[WIRE_SCOPE_MAX + WIRE_REASON_MAX + STORE_AUTHOR_MAX + 64];

    table_add(&tb, "hosts");
    table_add(&tb, "%zu: %zu fresh, %zu stale, %zu down (%zu reporting)", t->hosts,
              t->hosts_by_liveness[FLEET_LIVENESS_FRESH],
              t->hosts_by_liveness[FLEET_LIVENESS_STALE], t->hosts_by_liveness[FLEET_LIVENESS_DOWN],
              t->hosts_reporting);
    table_add(&tb, "vms");
    table_add(&tb, "%zu: %zu under pressure (unused below %s MiB, or need unmet)", t->vms,
              t->vms_under_pressure, fmt_mib(a, sizeof(a), c->cc->pressure_unused_kib));
    table_add(&tb, "host memory");
    table_add(&tb, "%s MiB total, %s MiB available", fmt_mib(a, sizeof(a), t->host_total_kib),
              fmt_mib(b, sizeof(b), t->host_available_kib));
    table_add(&tb, "vm memory");
    table_add(&tb, "%s MiB actual, %s MiB max", fmt_mib(a, sizeof(a), t->vm_actual_kib),
              fmt_mib(b, sizeof(b), t->vm_max_kib));
    table_add(&tb, "overcommit");
    table_add(&tb, "%.2f (vm max / host total)", t->overcommit);
    table_add(&tb, "decisions/min");
    table_add(&tb, "%" PRIu64, t->decisions_last_minute);
    table_add(&tb, "last event");
    table_add(&tb, "%" PRIu64, fleet_last_event_seq(c->cc->fleet));
    table_add(&tb, "fleet policy");
    table_add(&tb, "%s",
              fp ? fmt_entry(line, sizeof(line), fp)
                 : "none stored (agents keep their own config)");
    table_print(f, &tb);
    table_free(&tb);
    if (fp)
        print_policy_values(f, &fp->policy, fp->keys);
    return text_reply(c, &out);
}

enum control_status
cmd_status(struct call *c)
{
    struct fleet_totals t;
    struct store_policy_entry fp;
    bool found;
    enum control_status st = latest_policy(c, "fleet", &fp, &found);

    if (st != CONTROL_OK)
        return st;
    fleet_totals(c->cc->fleet, c->cc->now_ms, c->cc->pressure_unused_kib, &t);
    if (c->req->json)
        return status_json(c, &t, found ? &fp : NULL);
    return status_table(c, &t, found ? &fp : NULL);
}

/* ---- hosts ---- */

static json_t *
labels_json(const char *const *labels, size_t n)
{
    json_t *a = jarr();

    for (size_t i = 0; i < n; i++)
        jpush(a, jstr(labels[i]));
    return a;
}

/* "rack=r1,zone=a", or "-". */
static void
put_labels_cell(struct rows *r, const char *const *labels, size_t n)
{
    char buf[WIRE_LABELS_MAX * (WIRE_LABEL_KEY_MAX + WIRE_LABEL_VALUE_MAX + 2) + 2] = "-";
    size_t used = 0;

    for (size_t i = 0; i < n && used < sizeof(buf); i++)
        used += (size_t)snprintf(buf + used, sizeof(buf) - used, "%s%s", i ? "," : "", labels[i]);
    put_cell(r, "%s", buf);
}

/* Numbers from a stale or down host are its last report, not the present: every row that shows
 * them says so. */
static bool
liveness_stale(enum fleet_liveness liveness)
{
    return liveness != FLEET_LIVENESS_FRESH;
}

/* The host's last answer to a push: the fleet's, or after a restart (the fleet has not seen
 * one yet) the store's, which is what policy-show shows. Returns false for none. */
static bool
host_ack(const struct control_context *cc,
         const struct fleet_host_info *h,
         uint64_t *version,
         bool *applied)
{
    struct store_ack stored;
    char err[STORE_ERR_MAX];

    if (h->last_ack_version) {
        *version = h->last_ack_version;
        *applied = h->last_ack_applied;
        return true;
    }
    if (store_ack_for_host(cc->store, h->host_id, &stored, err, sizeof(err)) < 0)
        return false;
    *version = stored.version;
    *applied = stored.applied;
    return true;
}

static void
host_put(struct rows *r, const struct fleet_host_info *h)
{
    char a[32];

    row_begin(r);
    put_str(r, "host_id", h->host_id);
    put_str(r, "liveness", fleet_liveness_name(h->liveness));
    put_json(r, "stale", jcheck(json_boolean(liveness_stale(h->liveness))));
    put_age(r, "last_seen_age_ms", h->last_seen_ms);
    put_str(r, "agent_version", h->agent_version);
    put_json(r, "labels", labels_json(h->labels, h->n_labels));
    put_json(r, "has_report", jcheck(json_boolean(h->has_report)));
    if (!h->has_report)
        put_cell(r, "-");
    else if (h->vms_total > h->n_vms) /* its report was cut: say how much is missing */
        put_cell(r, "%zu of %" PRIu64, h->n_vms, h->vms_total);
    else
        put_cell(r, "%zu", h->n_vms);
    put_json(r, "vm_count", ju64(h->n_vms));
    put_json(r, "vms_total", ju64(h->has_report ? h->vms_total : 0));
    put_kib(r, "host_total_kib", h->has_report, h->host_total_kib);
    put_kib(r, "host_available_kib", h->has_report, h->host_available_kib);
    put_json(r, "vm_actual_kib", ju64(h->vm_actual_kib));
    put_json(r, "vm_max_kib", ju64(h->vm_max_kib));
    put_json(r, "policy_version", ju64(h->policy_version));
    put_cell(r, "%s", fmt_version(a, sizeof(a), h->policy_version));
    put_json(r, "decisions_total", ju64(h->decisions_total));
    uint64_t ack_version;
    bool ack_applied;
    if (!host_ack(r->cc, h, &ack_version, &ack_applied)) {
        put_json(r, "last_ack", json_null());
        put_cell(r, "-");
    } else {
        json_t *ack = jobj();
        jset(ack, "version", ju64(ack_version));
        jset(ack, "applied", jcheck(json_boolean(ack_applied)));
        put_json(r, "last_ack", ack);
        put_cell(r, "v%" PRIu64 " %s", ack_version, ack_applied ? "applied" : "refused");
    }
    if (!r->array)
        put_labels_cell(r, h->labels, h->n_labels);
    row_end(r);
}

/* The hosts asked for (--filter): in id order only the page itself (after the cursor, up to
 * the limit) is kept; in another order all of them, sorted (--sort) before the page is cut. */
struct host_list {
    struct fleet_host_info *hosts;
    size_t n, cap;
    const struct scope *filter; /* NULL: all */
    const char *after;          /* --after: skip up to and including it (id order) */
    size_t limit;               /* keep at most this many; 0: all */
    size_t total;               /* matching the filter, cursor or not */
    bool more;                  /* one more matched after the page was full */
    bool stop_when_full;        /* total is known already: no need to walk on */
};

static int
collect_host(const struct fleet_host_info *h, void *ctx)
{
    struct host_list *l = ctx;

    if (l->filter && !scope_matches(l->filter, h->host_id, h->labels, h->n_labels))
        return 0;
    l->total++;
    if (l->after && strcmp(h->host_id, l->after) <= 0)
        return 0;
    if (l->limit && l->n == l->limit) {
        l->more = true;
        return l->stop_when_full ? 1 : 0;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->hosts = util_xrealloc(l->hosts, l->cap, sizeof(*l->hosts));
    }
    l->hosts[l->n++] = *h; /* its pointers stay valid: the fleet holds still during a call */
    return 0;
}

enum host_sort { HOST_SORT_ID, HOST_SORT_LIVENESS, HOST_SORT_SEEN, HOST_SORT_VMS, HOST_SORT_AVAIL };

/* What an operator looks for first: the least live, the longest silent, the most VMs, the
 * least memory left. Ties by id. */
static int
compare_hosts(const void *pa, const void *pb, void *psort)
{
    const struct fleet_host_info *a = pa, *b = pb;
    enum host_sort sort = *(const enum host_sort *)psort;
    int rc = 0;

    if (sort == HOST_SORT_LIVENESS)
        rc = (int)b->liveness - (int)a->liveness;
    else if (sort == HOST_SORT_SEEN)
        rc = (a->last_seen_ms > b->last_seen_ms) - (a->last_seen_ms < b->last_seen_ms);
    else if (sort == HOST_SORT_VMS)
        rc = (b->n_vms > a->n_vms) - (b->n_vms < a->n_vms);
    else if (sort == HOST_SORT_AVAIL && a->has_report != b->has_report)
        return a->has_report ? -1 : 1; /* unknown last */
    else if (sort == HOST_SORT_AVAIL)
        rc = (a->host_available_kib > b->host_available_kib) -
             (a->host_available_kib < b->host_available_kib);
    return rc ? rc : strcmp(a->host_id, b->host_id);
}

static enum control_status
hosts_sort(struct call *c, enum host_sort *sort)
{
    static const char *const names[] = {
        [HOST_SORT_ID] = "host", [HOST_SORT_LIVENESS] = "liveness", [HOST_SORT_SEEN] = "seen",
        [HOST_SORT_VMS] = "vms", [HOST_SORT_AVAIL] = "available",
    };
    const char *name = opt(c, "sort");

    *sort = HOST_SORT_ID;
    for (size_t i = 0; name && i < ARRAY_SIZE(names); i++) {
        if (strcmp(name, names[i]) == 0) {
            *sort = (enum host_sort)i;
            return CONTROL_OK;
        }
    }
    if (!name)
        return CONTROL_OK;
    return fail(c, CONTROL_USAGE,
                "hosts: --sort wants host, liveness, seen, vms or available, not '%s'", name);
}

/* One page of hosts into *l. In id order with no filter the walk starts at the cursor and ends
 * with the page, so a page costs the same at any fleet size; a filter has every host looked at
 * for the total; another order sorts them all. */
static void
hosts_collect(const struct fleet *fleet,
              enum host_sort sort,
              const char *after,
              size_t limit,
              struct host_list *l)
{
    if (sort == HOST_SORT_ID) {
        l->after = after;
        l->limit = limit;
        l->stop_when_full = !l->filter;
        if (l->filter) {
            fleet_hosts_each(fleet, collect_host, l);
        } else {
            fleet_hosts_each_after(fleet, after, collect_host, l);
            l->total = fleet_host_count(fleet);
        }
        return;
    }
    fleet_hosts_each(fleet, collect_host, l);
    if (l->n > 1)
        qsort_r(l->hosts, l->n, sizeof(*l->hosts), compare_hosts, &sort);
    l->more = l->n > limit;
    if (l->more)
        l->n = limit;
}

/* A page of hosts: total matching, and the cursor of the next page (NULL on the last). */
enum control_status
cmd_hosts(struct call *c)
{
    static const struct column cols[] = {
        {"HOST", false}, {"LIVENESS", false}, {"LAST SEEN", false}, {"AGENT", false},
        {"VMS", true},   {"TOTAL MiB", true}, {"AVAIL MiB", true},  {"POLICY", false},
        {"ACK", false},  {"LABELS", false},
    };
    struct column shown[ARRAY_SIZE(cols)];
    char names[ARRAY_SIZE(cols)][32];
    struct rows r = {.cc = c->cc, .table = {.cols = cols, .n_cols = ARRAY_SIZE(cols)}};
    struct host_list l = {0};
    struct scope filter;
    const char *filter_text = opt(c, "filter"), *after = opt(c, "after");
    enum host_sort sort;
    uint64_t limit;
    enum control_status st = hosts_sort(c, &sort);

    if (st == CONTROL_OK && filter_text)
        st = scope_option(c, filter_text, &filter);
    if (st == CONTROL_OK)
        st = unit_option(c, &r, cols, shown, names);
    if (st == CONTROL_OK)
        st = count_option(c, "limit", 1, HOSTS_LIMIT_MAX, HOSTS_LIMIT_DEFAULT, &limit);
    if (st == CONTROL_OK && after && sort != HOST_SORT_ID)
        st = fail(c, CONTROL_USAGE, "hosts: --after pages in host order (--sort host)");
    if (st != CONTROL_OK)
        return st;
    l.filter = filter_text ? &filter : NULL;
    hosts_collect(c->cc->fleet, sort, after, (size_t)limit, &l);
    r.array = c->req->json ? jarr() : NULL;
    for (size_t i = 0; i < l.n; i++)
        host_put(&r, &l.hosts[i]);
    const char *next = l.more ? l.hosts[l.n - 1].host_id : NULL;
    st = rows_reply(c, &r, "hosts", filter_text ? "no host matches" : "no hosts yet",
                    &(struct page){.noun = "hosts", .total = l.total, .next = next});
    free(l.hosts);
    return st;
}

/* ---- hosts forget ---- */

enum control_status
cmd_hosts_forget(struct call *c)
{
    const char *host = opt(c, "host");
    char err[STORE_ERR_MAX] = "";

    if (!host || !wire_host_id_valid(host))
        return fail(c, CONTROL_USAGE, "hosts forget: want a host id ([A-Za-z0-9._-], 1-63)");
    if (!c->cc->forget_host)
        return fail(c, CONTROL_INTERNAL, "hosts forget: not available here");
    int rc = c->cc->forget_host(c->cc->ctx, host, err, sizeof(err));
    if (rc == -ENOENT)
        return fail(c, CONTROL_NOT_FOUND, "hosts forget: no host %s", host);
    if (rc < 0)
        return fail(c, CONTROL_INTERNAL, "hosts forget: %s", err);
    FILE *f;
    struct text out;
    if (c->req->json) {
        json_t *root = jobj();
        jset(root, "forgotten", jstr(host));
        return json_reply(c, root);
    }
    f = text_open(&out);
    fprintf(f, "host %s forgotten (it comes back if it says hello again)\n", host);
    return text_reply(c, &out);
}

/* ---- vms ---- */

struct sort_choice {
    const char *name;
    enum fleet_vm_key key;
    bool descending;
};

/* Largest balloons first; least unused (most pressed) first. */
static const struct sort_choice sorts[] = {
    {"host", FLEET_VM_KEY_HOST, false},
    {"name", FLEET_VM_KEY_NAME, false},
    {"actual", FLEET_VM_KEY_ACTUAL, true},
    {"unused", FLEET_VM_KEY_UNUSED, false},
};

/* Why the agent leaves the VM alone ("no_balloon"; "other" for a newer agent's reason), or NULL
 * when it does not: named as the metrics' skip label names it. */
static const char *
vm_skip_reason(const struct fleet_vm *vm)
{
    if (vm->skip_reason == FLEET_REASON_NONE)
        return NULL;
    return prom_skip_reason_name(vm->skip_reason);
}

/* Append flag to the comma-separated list in buf. */
static void
flag_add(char *buf, size_t len, const char *flag)
{
    size_t used = strlen(buf);

    snprintf(buf + used, len - used, "%s%s", used ? "," : "", flag);
}

/* "down,unmanaged", "skip:no_balloon,stuck", or "-". */
static const char *
vm_flags(enum fleet_liveness host_liveness, const struct fleet_vm *vm, char *buf, size_t len)
{
    const char *skip = vm_skip_reason(vm);
    char skip_flag[WIRE_SKIP_NAME_MAX + 8];

    buf[0] = '\0';
    if (liveness_stale(host_liveness))
        flag_add(buf, len, fleet_liveness_name(host_liveness));
    if (!vm->managed)
        flag_add(buf, len, "unmanaged");
    if (skip && (vm->managed || strcmp(skip, "unmanaged") != 0)) {
        snprintf(skip_flag, sizeof(skip_flag), "skip:%s", skip);
        flag_add(buf, len, skip_flag);
    }
    if (vm->stuck)
        flag_add(buf, len, "stuck");
    return buf[0] ? buf : "-";
}

/* The operator's overrides, as set in the VM's metadata: "min 512 max 4096 w 200", or "-". */
static const char *
vm_overrides(const struct fleet_vm *vm, char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    if (vm->min_mib)
        n += (size_t)snprintf(buf + n, len - n, " min %" PRIu32, vm->min_mib);
    if (vm->cap_mib && n < len)
        n += (size_t)snprintf(buf + n, len - n, " max %" PRIu32, vm->cap_mib);
    if (vm->weight && n < len)
        snprintf(buf + n, len - n, " w %u", (unsigned)vm->weight);
    return buf[0] ? buf + 1 : "-";
}

void
vm_put(struct rows *r, const struct fleet_host_info *host, const struct fleet_vm *vm)
{
    char uuid[WIRE_UUID_LEN], flags[96], overrides[64];
    const char *decision = vm->last_reason == FLEET_REASON_NONE
                               ? ""
                               : sched_reason_name((enum sched_reason)vm->last_reason);

    fleet_uuid_format(vm->uuid, uuid);
    row_begin(r);
    put_str(r, "host_id", host->host_id);
    put_json(r, "uuid", jstr(uuid));
    put_str(r, "name", vm->name);
    put_str(r, "state", vm_state_name(vm->state));
    put_json(r, "managed", jcheck(json_boolean(vm->managed)));
    put_json(r, "stuck", jcheck(json_boolean(vm->stuck)));
    put_json(r, "skip_reason", vm_skip_reason(vm) ? jstr(vm_skip_reason(vm)) : jcheck(json_null()));
    put_json(r, "stale", jcheck(json_boolean(liveness_stale(host->liveness))));
    put_json(r, "host_liveness", jstr(fleet_liveness_name(host->liveness)));
    put_json(r, "host_last_seen_age_ms", ju64(util_sub_sat(r->cc->now_ms, host->last_seen_ms)));
    put_kib(r, "actual_kib", true, vm->actual_kib);
    put_kib(r, "max_kib", true, vm->max_kib);
    put_kib(r, "target_kib", vm->target_kib != 0, vm->target_kib);
    put_kib(r, "unused_kib", vm->has_unused, vm->unused_kib);
    put_json(r, "usable_kib", vm->has_usable ? ju64(vm->usable_kib) : json_null());
    put_json(r, "stats_age_ms", ju64(vm->stats_age_ms));
    put_json(r, "min_kib",
             vm->min_mib ? ju64((uint64_t)vm->min_mib * UTIL_KIB_PER_MIB) : json_null());
    put_json(r, "cap_kib",
             vm->cap_mib ? ju64((uint64_t)vm->cap_mib * UTIL_KIB_PER_MIB) : json_null());
    put_json(r, "weight", vm->weight ? ju64(vm->weight) : json_null());
    if (r->array)
        put_json(r, "last_decision", decision[0] ? jstr(decision) : json_null());
    else
        put_cell(r, "%s", decision[0] ? decision : "-");
    put_cell(r, "%s", vm_overrides(vm, overrides, sizeof(overrides)));
    put_cell(r, "%s", vm_flags(host->liveness, vm, flags, sizeof(flags)));
    put_cell(r, "%s", uuid);
    row_end(r);
}

/* A place in host order (host id, then uuid): where a page of VMs ends and the next begins. */
struct vm_cursor {
    char host_id[WIRE_HOST_ID_MAX];
    uint8_t uuid[FLEET_UUID_BYTES];
};

struct vm_rows {
    struct rows rows;
    struct fleet_host_info host;   /* the host of the last VM put */
    const struct vm_cursor *after; /* --after: skip up to and including it */
    struct vm_cursor last;         /* the last VM put */
    bool more;                     /* a VM after the last one put was offered */
};

static int
cursor_compare(const char *host_id, const uint8_t *uuid, const struct vm_cursor *c)
{
    int rc = strcmp(host_id, c->host_id);
    return rc ? rc : memcmp(uuid, c->uuid, FLEET_UUID_BYTES);
}

static int
each_vm(const char *host_id, const struct fleet_vm *vm, void *ctx)
{
    struct vm_rows *v = ctx;

    if (v->after && cursor_compare(host_id, vm->uuid, v->after) <= 0)
        return 0;
    if (v->rows.limit && v->rows.count >= v->rows.limit) {
        v->more = true;
        return 1;
    }
    if (v->host.host_id != host_id && fleet_host_get(v->rows.cc->fleet, host_id, &v->host) < 0)
        return -ENOENT; /* cannot happen: the walk holds the fleet still */
    vm_put(&v->rows, &v->host, vm);
    snprintf(v->last.host_id, sizeof(v->last.host_id), "%s", host_id);
    memcpy(v->last.uuid, vm->uuid, FLEET_UUID_BYTES);
    return 0;
}

/* --after HOST/UUID (a VM's uuid on that host, as next_after gives it); only in host order. */
static enum control_status
cursor_option(struct call *c, const struct sort_choice *s, struct vm_cursor *cursor, bool *given)
{
    const char *text = opt(c, "after");
    const char *slash = text ? strrchr(text, '/') : NULL;

    *given = text != NULL;
    if (!text)
        return CONTROL_OK;
    if (s->key != FLEET_VM_KEY_HOST || s->descending)
        return fail(c, CONTROL_USAGE, "vms: --after pages in host order (--sort host)");
    if (!slash || (size_t)(slash - text) >= sizeof(cursor->host_id) ||
        fleet_uuid_parse(slash + 1, cursor->uuid) < 0)
        return fail(c, CONTROL_USAGE, "vms: --after wants HOST/UUID (next_after), not '%s'", text);
    snprintf(cursor->host_id, sizeof(cursor->host_id), "%.*s", (int)(slash - text), text);
    return CONTROL_OK;
}

static int
compare_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b;
}

/* One host's VMs in the order of a sort_choice; ties by uuid, as fleet_vms_each() does. */
static int
compare_vms(const void *pa, const void *pb, void *pchoice)
{
    const struct fleet_vm *a = *(const struct fleet_vm *const *)pa;
    const struct fleet_vm *b = *(const struct fleet_vm *const *)pb;
    const struct sort_choice *s = pchoice;
    int rc = 0;

    if (s->key == FLEET_VM_KEY_NAME)
        rc = strcmp(a->name, b->name);
    else if (s->key == FLEET_VM_KEY_ACTUAL)
        rc = compare_u64(a->actual_kib, b->actual_kib);
    else if (s->key == FLEET_VM_KEY_UNUSED && a->has_unused != b->has_unused)
        return a->has_unused ? -1 : 1; /* unknown sorts last either way */
    else if (s->key == FLEET_VM_KEY_UNUSED)
        rc = compare_u64(a->unused_kib, b->unused_kib);
    if (rc)
        return s->descending ? -rc : rc;
    return memcmp(a->uuid, b->uuid, FLEET_UUID_BYTES);
}

static void
host_vms_each(const struct fleet_host_info *h, const struct sort_choice *s, struct vm_rows *v)
{
    const struct fleet_vm **refs = util_xrealloc(NULL, h->n_vms, sizeof(*refs));

    v->host = *h;
    for (size_t i = 0; i < h->n_vms; i++)
        refs[i] = &h->vms[i];
    qsort_r(refs, h->n_vms, sizeof(*refs), compare_vms, (void *)s);
    for (size_t i = 0; i < h->n_vms && each_vm(h->host_id, refs[i], v) == 0; i++)
        ;
    free(refs);
}

static enum control_status
vms_sort(struct call *c, const struct sort_choice **choice)
{
    const char *name = opt(c, "sort");

    *choice = &sorts[0];
    if (!name)
        return CONTROL_OK;
    for (size_t i = 0; i < sizeof(sorts) / sizeof(sorts[0]); i++) {
        if (strcmp(name, sorts[i].name) == 0) {
            *choice = &sorts[i];
            return CONTROL_OK;
        }
    }
    return fail(c, CONTROL_USAGE, "vms: --sort wants host, name, actual or unused, not '%s'", name);
}

/* A page of VMs: how many there are, and in host order the cursor of the next page. */
static enum control_status
vms_render(struct call *c, struct vm_rows *v, size_t total, bool host_order)
{
    char next[WIRE_HOST_ID_MAX + WIRE_UUID_LEN + 1] = "", uuid[WIRE_UUID_LEN], hint[64];
    struct page page = {.noun = "VMs", .total = total};

    if (v->more && host_order) {
        fleet_uuid_format(v->last.uuid, uuid);
        snprintf(next, sizeof(next), "%s/%s", v->last.host_id, uuid);
        page.next = next;
    } else if (!opt(c, "after")) {
        snprintf(hint, sizeof(hint), "--limit N up to %d, or --host H", VMS_LIMIT_MAX);
        page.cut_hint = hint;
    }
    return rows_reply(c, &v->rows, "vms", "no VMs", &page);
}

enum control_status
cmd_vms(struct call *c)
{
    static const struct column cols[] = {
        {"HOST", false},      {"NAME", false},      {"STATE", false},     {"ACTUAL MiB", true},
        {"MAX MiB", true},    {"TARGET MiB", true}, {"UNUSED MiB", true}, {"DECISION", false},
        {"OVERRIDES", false}, {"FLAGS", false},     {"UUID", false},
    };
    struct column shown[ARRAY_SIZE(cols)];
    char names[ARRAY_SIZE(cols)][32];
    struct vm_rows v = {.rows = {.cc = c->cc, .table = {.cols = cols, .n_cols = ARRAY_SIZE(cols)}}};
    const struct sort_choice *s;
    const char *host = opt(c, "host");
    struct fleet_host_info info;
    struct vm_cursor after;
    bool paged;
    uint64_t limit;
    size_t total;
    enum control_status st = vms_sort(c, &s);

    if (st == CONTROL_OK)
        st = count_option(c, "limit", 1, VMS_LIMIT_MAX, VMS_LIMIT_DEFAULT, &limit);
    if (st == CONTROL_OK)
        st = unit_option(c, &v.rows, cols, shown, names);
    if (st == CONTROL_OK)
        st = cursor_option(c, s, &after, &paged);
    if (st != CONTROL_OK)
        return st;
    if (host && fleet_host_get(c->cc->fleet, host, &info) < 0)
        return fail(c, CONTROL_NOT_FOUND, "vms: no host '%s' in the fleet", host);
    v.rows.limit = limit;
    v.rows.array = c->req->json ? jarr() : NULL;
    v.after = paged ? &after : NULL;
    bool host_order = s->key == FLEET_VM_KEY_HOST && !s->descending;
    if (host) {
        total = info.n_vms;
        host_vms_each(&info, s, &v);
    } else if (host_order) {
        /* From the cursor's host, one VM past the page: each_vm tells whether another follows. */
        total = fleet_vm_count(c->cc->fleet);
        fleet_vms_each_from(c->cc->fleet, paged ? after.host_id : NULL, each_vm, &v);
    } else {
        total = fleet_vm_count(c->cc->fleet);
        fleet_vms_each(c->cc->fleet, s->key, s->descending, limit, each_vm, &v);
    }
    return vms_render(c, &v, total, host_order);
}

/*
 * control_policy.c - the policy commands: show (per scope, per host with each value's source),
 * the changes (set, unset, delete, rollback: validated layered for every known host in scope
 * before anything is stored), wait and history.
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

#include "util.h"

#define AUTHOR_DEFAULT        "memschedctl"
#define HISTORY_LIMIT_DEFAULT 50
#define HISTORY_LIMIT_MAX     10000

/* ---- what a change changes ---- */

/* A policy and the keys it holds: a scope's row sets some keys; an effective policy all. */
struct keyed {
    const struct policy *p;
    uint32_t keys;
};

/* Whether key i differs between a and b: set in one only, or set in both to other values. */
static bool
key_differs(const struct keyed *a, const struct keyed *b, const struct config_key *param, size_t i)
{
    char x[64], y[64];

    if (has_key(a->keys, i) != has_key(b->keys, i))
        return true;
    if (!has_key(a->keys, i))
        return false;
    policy_get(a->p, param->name, x, sizeof(x));
    policy_get(b->p, param->name, y, sizeof(y));
    return strcmp(x, y) != 0;
}

/* The keys that differ, as [{key, from, to}] in JSON units (null: not set). */
static json_t *
changes_json(struct keyed from, struct keyed to)
{
    size_t n;
    const struct config_key *params = policy_params(&n);
    json_t *a = jarr();
    char key[64];

    for (size_t i = 0; i < n; i++) {
        if (!key_differs(&from, &to, &params[i], i))
            continue;
        json_t *o = jobj();
        jset(o, "key", jstr(param_json_key(&params[i], key, sizeof(key))));
        jset(o, "from", has_key(from.keys, i) ? param_json_value(from.p, &params[i]) : json_null());
        jset(o, "to", has_key(to.keys, i) ? param_json_value(to.p, &params[i]) : json_null());
        jpush(a, o);
    }
    return a;
}

/* "vm_floor_mib 256 -> 512, reclaim_idle unset, interval_ms set to 500", or "no change".
 * Returns how many keys differ. */
static size_t
print_changes(FILE *f, struct keyed from, struct keyed to)
{
    size_t n, shown = 0;
    const struct config_key *params = policy_params(&n);
    char x[64], y[64];

    for (size_t i = 0; i < n; i++) {
        if (!key_differs(&from, &to, &params[i], i))
            continue;
        policy_get(from.p, params[i].name, x, sizeof(x));
        policy_get(to.p, params[i].name, y, sizeof(y));
        fprintf(f, "%s%s ", shown++ ? ", " : "", params[i].name);
        if (!has_key(to.keys, i))
            fputs("unset", f);
        else if (!has_key(from.keys, i))
            fprintf(f, "set to %s", y);
        else
            fprintf(f, "%s -> %s", x, y);
    }
    if (!shown)
        fputs("no change", f);
    return shown;
}

static struct keyed
all_keys(const struct policy *p)
{
    return (struct keyed){p, policy_keys_all()};
}

static struct keyed
row_keys(const struct store_policy_entry *e)
{
    return (struct keyed){&e->policy, e->keys};
}
/* ---- policy-show ---- */

/* Distinct scopes, the newest policy of each, kept in the order fleet, labels, hosts. */
struct scopes {
    struct store_policy_entry *entries;
    size_t n, cap;
    json_t *seen;     /* scope -> true: a hash set, never dumped */
    const char *only; /* one scope, or NULL */
};

static int
each_history_scope(const struct store_policy_entry *e, void *ctx)
{
    struct scopes *s = ctx;

    if (json_object_get(s->seen, e->scope))
        return 0; /* walked newest first: the first seen of a scope is its newest */
    if (json_object_set_new_nocheck(s->seen, e->scope, json_true()) < 0)
        util_oom();
    if (!e->keys)
        return s->only ? 1 : 0; /* deleted: its newest row sets nothing */
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->entries = util_xrealloc(s->entries, s->cap, sizeof(*s->entries));
    }
    s->entries[s->n++] = *e;
    return s->only ? 1 : 0;
}

static int
scope_rank(const char *scope)
{
    struct scope parsed;

    return scope_parse(scope, &parsed) == 0 ? (int)parsed.kind : 3;
}

static int
compare_entries(const void *pa, const void *pb)
{
    const struct store_policy_entry *a = pa, *b = pb;
    int ra = scope_rank(a->scope), rb = scope_rank(b->scope);

    return ra != rb ? ra - rb : strcmp(a->scope, b->scope);
}

/* A host known to the fleet, the store, or both. */
struct known_host {
    char id[WIRE_HOST_ID_MAX];
    char **labels; /* the store's copy */
    size_t n_labels;
    uint64_t policy_version; /* as the store last recorded it */
};

struct known_hosts {
    struct known_host *hosts;
    size_t n, cap;
};

static struct known_host *
known_add(struct known_hosts *k, const char *id)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 64;
        k->hosts = util_xrealloc(k->hosts, k->cap, sizeof(*k->hosts));
    }
    struct known_host *h = &k->hosts[k->n++];
    memset(h, 0, sizeof(*h));
    snprintf(h->id, sizeof(h->id), "%s", id);
    return h;
}

static int
each_store_host(const struct store_host *sh, void *ctx)
{
    struct known_host *h = known_add(ctx, sh->host_id);

    h->labels = util_xrealloc(NULL, sh->n_labels, sizeof(*h->labels));
    for (size_t i = 0; i < sh->n_labels; i++)
        h->labels[i] = util_xstrdup(sh->labels[i]);
    h->n_labels = sh->n_labels;
    h->policy_version = sh->policy_version;
    return 0;
}

static int
each_fleet_host(const struct fleet_host_info *info, void *ctx)
{
    known_add(ctx, info->host_id);
    return 0;
}

static int
compare_known(const void *pa, const void *pb)
{
    const struct known_host *a = pa, *b = pb;
    int rc = strcmp(a->id, b->id);

    return rc ? rc : (a->labels ? -1 : 0) - (b->labels ? -1 : 0); /* the store's copy first */
}

static void
known_free(struct known_hosts *k)
{
    for (size_t i = 0; i < k->n; i++) {
        for (size_t l = 0; l < k->hosts[i].n_labels; l++)
            free(k->hosts[i].labels[l]);
        free(k->hosts[i].labels);
    }
    free(k->hosts);
    memset(k, 0, sizeof(*k));
}

/* Every host of the store and the fleet, sorted by id, once each. */
static int
known_collect(struct call *c, struct known_hosts *k, char *err, size_t err_len)
{
    int rc = store_hosts_list(c->cc->store, each_store_host, k, err, err_len);
    size_t out = 0;

    if (rc < 0)
        return rc;
    fleet_hosts_each(c->cc->fleet, each_fleet_host, k);
    if (k->n > 1)
        qsort(k->hosts, k->n, sizeof(*k->hosts), compare_known);
    for (size_t i = 0; i < k->n; i++) {
        if (out > 0 && strcmp(k->hosts[out - 1].id, k->hosts[i].id) == 0)
            continue; /* the fleet's duplicate of a stored host: no labels to free */
        k->hosts[out++] = k->hosts[i];
    }
    k->n = out;
    return 0;
}

/* Every host's newest ack, read in one walk of the store, sorted by host id. */
struct ack_list {
    struct store_ack *acks;
    size_t n, cap;
};

static int
each_newest_ack(const struct store_ack *a, void *ctx)
{
    struct ack_list *l = ctx;

    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->acks = util_xrealloc(l->acks, l->cap, sizeof(*l->acks));
    }
    l->acks[l->n++] = *a;
    return 0;
}

static int
compare_ack_host(const void *key, const void *ack)
{
    return strcmp(key, ((const struct store_ack *)ack)->host_id);
}

static const struct store_ack *
ack_find(const struct ack_list *l, const char *host_id)
{
    return l->n ? bsearch(host_id, l->acks, l->n, sizeof(*l->acks), compare_ack_host) : NULL;
}

/* One host's policy standing: what it holds, what it should hold, its last answer. */
struct standing {
    const char *id;
    bool in_fleet;
    enum fleet_liveness liveness;
    uint64_t holds;
    bool has_should;
    struct store_effective should;
    bool has_ack;
    struct store_ack ack;
};

enum standing_kind { STANDING_CURRENT, STANDING_PENDING, STANDING_REFUSED, STANDING_NONE };

/* As policy show counts them; the table shows "-" for a host no scope covers. */
static const char *const standing_names[] = {"current", "pending", "refused", "uncovered"};

static enum standing_kind
standing_kind(const struct standing *s)
{
    if (!s->has_should)
        return STANDING_NONE; /* no scope covers it: the agent keeps its own config */
    if (s->holds == s->should.version)
        return STANDING_CURRENT;
    if (s->has_ack && s->ack.version == s->should.version && !s->ack.applied)
        return STANDING_REFUSED;
    return STANDING_PENDING;
}

static const char *
standing_state(const struct standing *s)
{
    enum standing_kind kind = standing_kind(s);

    return kind == STANDING_NONE ? "-" : standing_names[kind];
}

/* The labels of a known host: the fleet's when it is connected (*info filled), else the
 * store's copy. */
static bool
known_labels(struct call *c,
             const struct known_host *h,
             struct fleet_host_info *info,
             const char *const **labels,
             size_t *n_labels)
{
    bool in_fleet = fleet_host_get(c->cc->fleet, h->id, info) == 0;

    *labels = in_fleet ? info->labels : (const char *const *)h->labels;
    *n_labels = in_fleet ? info->n_labels : h->n_labels;
    return in_fleet;
}

/* Fill *s for h; 1 when it is outside the scope asked for. */
static int
standing_get(struct call *c,
             const struct store_layers *layers,
             const struct ack_list *acks,
             const struct known_host *h,
             const struct scope *only,
             struct standing *s,
             char *err,
             size_t err_len)
{
    struct fleet_host_info info;
    const char *const *labels;
    size_t n_labels;
    int rc;

    memset(s, 0, sizeof(*s));
    s->id = h->id;
    s->holds = h->policy_version;
    s->in_fleet = known_labels(c, h, &info, &labels, &n_labels);
    if (s->in_fleet) {
        s->holds = info.policy_version;
        s->liveness = info.liveness;
    }
    if (only && !scope_matches(only, h->id, labels, n_labels))
        return 1;
    rc = store_layers_for_host(layers, h->id, labels, n_labels, NULL, &s->should, err, err_len);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    s->has_should = rc == 0;
    const struct store_ack *ack = ack_find(acks, h->id);
    s->has_ack = ack != NULL;
    if (ack)
        s->ack = *ack;
    /* A host not connected since the coordinator started: its newest applied ack says more than
     * the version the store noted at its last hello. */
    if (!s->in_fleet && s->has_ack && s->ack.applied && s->ack.version > s->holds)
        s->holds = s->ack.version;
    return 0;
}

static void
standing_put(struct rows *r, const struct standing *s)
{
    char a[32];

    row_begin(r);
    put_str(r, "host_id", s->id);
    put_str(r, "liveness", s->in_fleet ? fleet_liveness_name(s->liveness) : "absent");
    put_json(r, "holds_version", ju64(s->holds));
    put_cell(r, "%s", fmt_version(a, sizeof(a), s->holds));
    put_json(r, "should_hold_version", s->has_should ? ju64(s->should.version) : json_null());
    put_json(r, "should_hold_scope", s->has_should ? jstr(s->should.scope) : json_null());
    if (s->has_should)
        put_cell(r, "v%" PRIu64 " (%s)", s->should.version, s->should.scope);
    else
        put_cell(r, "-");
    put_str(r, "state", standing_state(s));
    if (!s->has_ack) {
        put_json(r, "last_ack", json_null());
        put_cell(r, "-");
    } else {
        json_t *ack = jobj();
        jset(ack, "version", ju64(s->ack.version));
        jset(ack, "applied", jcheck(json_boolean(s->ack.applied)));
        jset(ack, "reason", jstr(s->ack.reason));
        jset(ack, "at_ms", ju64(s->ack.at_ms));
        put_json(r, "last_ack", ack);
        if (s->ack.applied)
            put_cell(r, "v%" PRIu64 " applied", s->ack.version);
        else
            put_cell(r, "v%" PRIu64 " refused: %s", s->ack.version, s->ack.reason);
    }
    row_end(r);
}

/* What policy show gathers: the scopes, every known host's standing counted, and one page of
 * them listed (--after, --limit), so the reply stays small at any fleet size. */
struct show {
    struct scopes scopes;
    struct known_hosts known;
    struct rows hosts;
    const char *after;
    uint64_t limit;
    size_t total; /* hosts in the scope asked for */
    size_t by_kind[ARRAY_SIZE(standing_names)];
    const char *last_put; /* the last id listed */
    const char *next;     /* last_put, when more follow */
};

/* Count s, and list it when it falls in the page. */
static void
show_add(struct show *sh, const struct standing *s)
{
    sh->total++;
    sh->by_kind[standing_kind(s)]++;
    if (sh->after && strcmp(s->id, sh->after) <= 0)
        return;
    if (sh->hosts.count < sh->limit) {
        standing_put(&sh->hosts, s);
        sh->last_put = s->id;
        return;
    }
    if (!sh->next)
        sh->next = sh->last_put;
}

static enum control_status
show_collect(struct call *c, struct show *sh, const struct scope *only)
{
    char err[STORE_ERR_MAX] = "";
    struct standing s;
    struct store_layers *layers = NULL;
    struct ack_list acks = {0};
    int rc = store_policy_history(c->cc->store, sh->scopes.only, each_history_scope, &sh->scopes,
                                  err, sizeof(err));

    if (rc == 0)
        rc = known_collect(c, &sh->known, err, sizeof(err));
    if (rc == 0)
        rc = store_layers_load(c->cc->store, &layers, err, sizeof(err));
    if (rc == 0)
        rc = store_acks_newest(c->cc->store, each_newest_ack, &acks, err, sizeof(err));
    for (size_t i = 0; rc >= 0 && i < sh->known.n; i++) {
        rc = standing_get(c, layers, &acks, &sh->known.hosts[i], only, &s, err, sizeof(err));
        if (rc == 0) /* else outside the scope, or an error that ends the loop */
            show_add(sh, &s);
    }
    store_layers_free(&layers);
    free(acks.acks);
    if (rc < 0)
        return store_failed(c, rc, err);
    if (sh->scopes.n > 1)
        qsort(sh->scopes.entries, sh->scopes.n, sizeof(*sh->scopes.entries), compare_entries);
    return CONTROL_OK;
}

/* The newest policy's fan-out: hosts still to be looked at, and answers still to come. */
static uint64_t
fanout_pending(const struct control_fanout *fo)
{
    return fo->hosts > fo->visited ? fo->hosts - fo->visited : 0;
}

static uint64_t
fanout_unanswered(const struct control_fanout *fo)
{
    uint64_t answered = fo->acked + fo->refused;
    return fo->pushed > answered ? fo->pushed - answered : 0;
}

static json_t *
fanout_json(const struct control_fanout *fo)
{
    json_t *o = jobj();

    jset(o, "version", ju64(fo->version));
    jset(o, "scope", jstr(fo->scope));
    jset(o, "done", jcheck(json_boolean(fo->done)));
    jset(o, "hosts", ju64(fo->hosts));
    jset(o, "visited", ju64(fo->visited));
    jset(o, "pending", ju64(fanout_pending(fo)));
    jset(o, "in_scope", ju64(fo->in_scope));
    jset(o, "pushed", ju64(fo->pushed));
    jset(o, "acked", ju64(fo->acked));
    jset(o, "refused", ju64(fo->refused));
    jset(o, "unanswered", ju64(fanout_unanswered(fo)));
    return o;
}

static void
fanout_print(FILE *f, const struct control_fanout *fo)
{
    fprintf(f,
            "fan-out of v%" PRIu64 " (%s): %s; %" PRIu64 " of %" PRIu64 " hosts looked at (%" PRIu64
            " pending), %" PRIu64 " in scope, %" PRIu64 " pushed, %" PRIu64 " acked, %" PRIu64
            " refused, %" PRIu64 " unanswered\n\n",
            fo->version, fo->scope, fo->done ? "done" : "under way", fo->visited, fo->hosts,
            fanout_pending(fo), fo->in_scope, fo->pushed, fo->acked, fo->refused,
            fanout_unanswered(fo));
}

/* The fan-out, when the coordinator has one to show (a policy stored since it started). */
static bool
fanout_get(struct call *c, struct control_fanout *fo)
{
    memset(fo, 0, sizeof(*fo));
    if (c->cc->fanout_progress)
        c->cc->fanout_progress(c->cc->ctx, fo);
    return fo->version != 0;
}

/* How many hosts in the scope stand where: the whole answer at a glance, at any fleet size. */
static json_t *
states_json(const struct show *sh)
{
    json_t *o = jobj();

    for (size_t i = 0; i < ARRAY_SIZE(standing_names); i++)
        jset(o, standing_names[i], ju64(sh->by_kind[i]));
    return o;
}

static void
states_print(FILE *f, const struct show *sh)
{
    fprintf(f, "%zu hosts:", sh->total);
    for (size_t i = 0; i < ARRAY_SIZE(standing_names); i++)
        fprintf(f, "%s %zu %s", i ? "," : "", sh->by_kind[i], standing_names[i]);
    fputs("\n\n", f);
}

static enum control_status
show_render(struct call *c, struct show *sh)
{
    struct control_fanout fo;
    bool has_fanout = fanout_get(c, &fo);
    char line[WIRE_SCOPE_MAX + WIRE_REASON_MAX + STORE_AUTHOR_MAX + 64];
    struct text out;

    if (sh->hosts.array) {
        json_t *root = jobj(), *policies = jarr();
        for (size_t i = 0; i < sh->scopes.n; i++)
            jpush(policies, entry_json(&sh->scopes.entries[i]));
        jset(root, "policies", policies);
        jset(root, "fanout", has_fanout ? fanout_json(&fo) : json_null());
        jset(root, "states", states_json(sh));
        jset(root, "hosts", json_incref(sh->hosts.array));
        jset(root, "total", ju64(sh->total));
        jset(root, "next_after", sh->next ? jstr(sh->next) : jcheck(json_null()));
        return json_reply(c, root);
    }
    FILE *f = text_open(&out);
    if (!sh->scopes.n)
        fprintf(f, "no policy stored%s%s (agents keep their own config)\n",
                sh->scopes.only ? " under " : "", sh->scopes.only ? sh->scopes.only : "");
    for (size_t i = 0; i < sh->scopes.n; i++) {
        fprintf(f, "%s\n", fmt_entry(line, sizeof(line), &sh->scopes.entries[i]));
        print_policy_values(f, &sh->scopes.entries[i].policy, sh->scopes.entries[i].keys);
        fputc('\n', f);
    }
    if (has_fanout)
        fanout_print(f, &fo);
    states_print(f, sh);
    if (sh->hosts.count)
        table_print(f, &sh->hosts.table);
    else
        fputs("no hosts\n", f);
    if (sh->next)
        fprintf(f, "(%zu of %zu hosts shown: --after %s for the next page)\n", sh->hosts.count,
                sh->total, sh->next);
    return text_reply(c, &out);
}

/* ---- policy-show --host ---- */

/* One known host by id (the fleet's or the store's), with its labels. */
static enum control_status
find_known(struct call *c, const char *id, struct known_hosts *k, struct known_host **h)
{
    char err[STORE_ERR_MAX] = "";
    int rc = known_collect(c, k, err, sizeof(err));

    if (rc < 0)
        return store_failed(c, rc, err);
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->hosts[i].id, id) == 0) {
            *h = &k->hosts[i];
            return CONTROL_OK;
        }
    }
    return fail(c, CONTROL_NOT_FOUND, "%s: no host %s", c->cmd->name, id);
}

static json_t *
sources_json(const struct store_effective *e)
{
    size_t n;
    const struct config_key *params = policy_params(&n);
    json_t *a = jarr();
    char key[64];

    for (size_t i = 0; i < n; i++) {
        json_t *o = jobj();
        jset(o, "key", jstr(param_json_key(&params[i], key, sizeof(key))));
        jset(o, "value", param_json_value(&e->policy, &params[i]));
        jset(o, "scope", jstr(e->sources[i].scope));
        jset(o, "version", e->sources[i].version ? ju64(e->sources[i].version) : json_null());
        jpush(a, o);
    }
    return a;
}

/* KEY VALUE SCOPE VERSION: where each value of the host's effective policy comes from. */
static enum control_status
host_sources_render(struct call *c, const char *id, const struct store_effective *e)
{
    static const struct column cols[] = {
        {"KEY", false}, {"VALUE", false}, {"SCOPE", false}, {"VERSION", false}};
    struct table t = {.cols = cols, .n_cols = 4};
    size_t n;
    const struct config_key *params = policy_params(&n);
    char v[64];
    struct text out;

    if (c->req->json) {
        json_t *root = jobj(), *o = jobj();
        jset(o, "host_id", jstr(id));
        jset(o, "version", ju64(e->version));
        jset(o, "scope", jstr(e->scope));
        jset(o, "policy", policy_json(&e->policy, policy_keys_all()));
        jset(o, "sources", sources_json(e));
        jset(root, "host", o);
        return json_reply(c, root);
    }
    FILE *f = text_open(&out);
    fprintf(f, "host %s: effective policy v%" PRIu64 " (newest layer: %s)\n", id, e->version,
            e->scope);
    for (size_t i = 0; i < n; i++) {
        policy_get(&e->policy, params[i].name, v, sizeof(v));
        table_add(&t, "%s", params[i].name);
        table_add(&t, "%s", v);
        table_add(&t, "%s", e->sources[i].scope);
        if (e->sources[i].version)
            table_add(&t, "v%" PRIu64, e->sources[i].version);
        else
            table_add(&t, "-");
    }
    table_print(f, &t);
    table_free(&t);
    return text_reply(c, &out);
}

/* policy show --host H: the host's effective policy, each value with the scope that set it. */
static enum control_status
show_host(struct call *c, const char *id)
{
    struct known_hosts k = {0};
    struct known_host *h = NULL;
    struct fleet_host_info info;
    struct store_effective e;
    const char *const *labels;
    size_t n_labels;
    char err[STORE_ERR_MAX] = "";
    enum control_status st = find_known(c, id, &k, &h);

    if (st == CONTROL_OK) {
        known_labels(c, h, &info, &labels, &n_labels);
        int rc = store_policy_for_host(c->cc->store, h->id, labels, n_labels, NULL, &e, err,
                                       sizeof(err));
        if (rc == -ENOENT)
            st = fail(c, CONTROL_NOT_FOUND,
                      "policy-show: no policy covers host %s (its agent keeps its own config)", id);
        else if (rc < 0)
            st = store_failed(c, rc, err);
        else
            st = host_sources_render(c, h->id, &e);
    }
    known_free(&k);
    return st;
}

enum control_status
cmd_policy_show(struct call *c)
{
    static const struct column cols[] = {
        {"HOST", false},        {"LIVENESS", false}, {"HOLDS", false},
        {"SHOULD HOLD", false}, {"STATE", false},    {"LAST ACK", false},
    };
    struct show sh = {.hosts = {.cc = c->cc, .table = {.cols = cols, .n_cols = 6}}};
    struct scope scope;
    const char *text = opt(c, "scope");
    enum control_status st = text ? scope_option(c, text, &scope) : CONTROL_OK;

    if (st == CONTROL_OK && opt(c, "host"))
        return text ? fail(c, CONTROL_USAGE, "policy-show: --host or --scope, not both")
                    : show_host(c, opt(c, "host"));
    if (st != CONTROL_OK)
        return st;
    st = count_option(c, "limit", 1, HOSTS_LIMIT_MAX, HOSTS_LIMIT_DEFAULT, &sh.limit);
    if (st != CONTROL_OK)
        return st;
    sh.after = opt(c, "after");
    sh.scopes.seen = jobj();
    sh.scopes.only = text;
    sh.hosts.array = c->req->json ? jarr() : NULL;
    st = show_collect(c, &sh, text ? &scope : NULL);
    if (st == CONTROL_OK && text && !sh.scopes.n && !sh.hosts.count)
        st = fail(c, CONTROL_NOT_FOUND, "policy-show: no policy stored under %s and no host in it",
                  text);
    if (st == CONTROL_OK)
        st = show_render(c, &sh);
    json_decref(sh.scopes.seen);
    json_decref(sh.hosts.array);
    free(sh.scopes.entries);
    known_free(&sh.known);
    table_free(&sh.hosts.table);
    return st;
}

/* ---- policy changes: set, unset, delete, rollback ----
 *
 * Each stores one new row for its scope (a new version, with who, why and what was done) and
 * pushes: set adds or changes keys, unset drops keys, delete drops them all (a row that sets
 * nothing), rollback copies an older row of the same scope. Before anything is stored, the
 * layered policy of every known host in the scope, and of the scope on its own, must pass
 * policy_validate(): a refusal names the host and the key. A change that changes nothing is
 * answered "no change" and spends no version. */

#define EFFECTS_LISTED_MAX 100 /* hosts listed by name in an answer; the counts cover all */

struct policy_change {
    const char *scope;
    struct scope parsed;
    bool has_current;
    struct store_policy_entry current; /* the scope's newest row (keys 0 when none) */
    struct store_policy_entry next;    /* the row to store */
    uint64_t version;                  /* as stored */
    size_t hosts_in_scope, hosts_changing, changing_connected, listed;
    bool host_known;             /* for a host:ID scope */
    struct store_layers *layers; /* every scope's newest row, read once for all the hosts */
    json_t *hosts_json;
    struct text hosts_text;
};

static const char *
change_author(const struct call *c)
{
    return c->req->author[0] ? c->req->author : AUTHOR_DEFAULT;
}

/* --scope (parsed) and --reason, both required; the scope's newest row. */
static enum control_status
change_begin(struct call *c, struct policy_change *pc)
{
    const char *reason = opt(c, "reason");

    pc->scope = opt(c, "scope");
    if (!pc->scope)
        return fail(c, CONTROL_USAGE, "%s: --scope is required\nusage: %s", c->cmd->name,
                    c->cmd->usage);
    if (!reason || !reason[0])
        return fail(c, CONTROL_USAGE,
                    "%s: --reason is required: say why, it is kept in the history\nusage: %s",
                    c->cmd->name, c->cmd->usage);
    enum control_status st = scope_option(c, pc->scope, &pc->parsed);
    if (st == CONTROL_OK)
        st = latest_policy(c, pc->scope, &pc->current, &pc->has_current);
    if (!pc->has_current)
        policy_init_defaults(&pc->current.policy);
    pc->next = pc->current;
    pc->next.version = 0;
    snprintf(pc->next.scope, sizeof(pc->next.scope), "%s", pc->scope);
    return st;
}

/* What the scope holds in force now, key by key: for a host scope of a known host its effective
 * policy, else the scope's layers on their own (the defaults when nothing is stored). */
static enum control_status
in_force(struct call *c, const struct policy_change *pc, struct store_effective *e)
{
    const char *label = pc->parsed.label;
    const char *const *labels = &label;
    size_t n_labels = pc->parsed.kind == SCOPE_LABEL;
    const char *host = pc->parsed.kind == SCOPE_HOST ? pc->parsed.host_id : NULL;
    struct fleet_host_info info;
    char err[STORE_ERR_MAX] = "";

    if (host && fleet_host_get(c->cc->fleet, host, &info) == 0) {
        labels = info.labels;
        n_labels = info.n_labels;
    }
    int rc = store_policy_for_host(c->cc->store, host, labels, n_labels, NULL, e, err, sizeof(err));
    if (rc == -ENOENT || rc == -EINVAL) {
        memset(e, 0, sizeof(*e)); /* nothing stored (or nothing usable): the defaults */
        policy_init_defaults(&e->policy);
        for (size_t i = 0; i < POLICY_KEYS_MAX; i++)
            snprintf(e->sources[i].scope, sizeof(e->sources[i].scope), "defaults");
        return CONTROL_OK;
    }
    return rc < 0 ? store_failed(c, rc, err) : CONTROL_OK;
}

static enum control_status
unknown_key(struct call *c, const char *key)
{
    size_t n;
    const struct config_key *params = policy_params(&n);
    struct text known;
    FILE *f = text_open(&known);

    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? ", " : "", params[i].name);
    if (fclose(f) != 0)
        util_oom();
    fail(c, CONTROL_USAGE, "%s: unknown policy key '%s'; the keys are: %s", c->cmd->name, key,
         known.buf);
    free(known.buf);
    return CONTROL_USAGE;
}

/* Apply every KEY=VALUE to pc->next; *given receives the keys named. */
static enum control_status
set_apply(struct call *c, struct policy_change *pc, uint32_t *given)
{
    char err[POLICY_ERR_MAX], key[WIRE_ARG_MAX];

    if (!c->n_pos)
        return fail(c, CONTROL_USAGE, "policy-set: nothing to set: give KEY=VALUE...\nusage: %s",
                    c->cmd->usage);
    *given = 0;
    for (size_t i = 0; i < c->n_pos; i++) {
        const char *eq = strchr(c->pos[i], '=');
        if (!eq || eq == c->pos[i])
            return usage_error(c, "expected KEY=VALUE, got", c->pos[i]);
        snprintf(key, sizeof(key), "%.*s", (int)(eq - c->pos[i]), c->pos[i]);
        int rc = policy_set(&pc->next.policy, key, eq + 1, err, sizeof(err));
        if (rc == -ENOENT)
            return unknown_key(c, key);
        if (rc < 0)
            return fail(c, CONTROL_REFUSED, "policy-set: %s", err);
        *given |= policy_key_bit(key);
    }
    pc->next.keys |= *given;
    return CONTROL_OK;
}

/* Every value asked for is already in force: nothing is stored, no version is spent and no
 * host is pushed to, and the operator is told which version already holds them. */
static enum control_status
set_no_change(struct call *c, const struct policy_change *pc, const struct store_source *from)
{
    struct text out;

    if (c->req->json) {
        json_t *root = jobj();
        jset(root, "policy", json_null());
        jset(root, "no_change", jcheck(json_true()));
        jset(root, "in_force_scope", jstr(from->scope));
        jset(root, "in_force_version", from->version ? ju64(from->version) : json_null());
        return json_reply(c, root);
    }
    FILE *f = text_open(&out);
    fprintf(f, "no change: %s already holds these values (from %s", pc->scope, from->scope);
    if (from->version)
        fprintf(f, " v%" PRIu64, from->version);
    fputs("); nothing stored\n", f);
    return text_reply(c, &out);
}

/* The source of the first key in given whose value in e differs from next's, or NULL when none
 * does; *first receives the source of the first key given. */
static const struct store_source *
set_differs(const struct store_effective *e,
            const struct policy *next,
            uint32_t given,
            const struct store_source **first)
{
    size_t n;
    const struct config_key *params = policy_params(&n);
    char x[64], y[64];

    *first = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!has_key(given, i))
            continue;
        if (!*first)
            *first = &e->sources[i];
        policy_get(&e->policy, params[i].name, x, sizeof(x));
        policy_get(next, params[i].name, y, sizeof(y));
        if (strcmp(x, y) != 0)
            return &e->sources[i];
    }
    return NULL;
}

/* A plain answer for a change that changes nothing. */
static enum control_status
no_change(struct call *c, const char *why)
{
    struct text out;

    if (c->req->json) {
        json_t *root = jobj();
        jset(root, "policy", json_null());
        jset(root, "no_change", jcheck(json_true()));
        jset(root, "why", jstr(why));
        return json_reply(c, root);
    }
    FILE *f = text_open(&out);
    fprintf(f, "no change: %s; nothing stored\n", why);
    return text_reply(c, &out);
}

/* One host in scope: its effective policy now and with pc->next, refused when invalid. */
static enum control_status
effect_host(struct call *c, struct policy_change *pc, const struct known_host *h, FILE *f)
{
    struct fleet_host_info info;
    const char *const *labels;
    size_t n_labels;
    struct store_effective before, after;
    char err[STORE_ERR_MAX] = "";
    bool in_fleet = known_labels(c, h, &info, &labels, &n_labels);

    if (!scope_matches(&pc->parsed, h->id, labels, n_labels))
        return CONTROL_OK;
    pc->hosts_in_scope++;
    pc->host_known = true;
    int rc = store_layers_for_host(pc->layers, h->id, labels, n_labels, &pc->next, &after, err,
                                   sizeof(err));
    if (rc == -EINVAL)
        return fail(c, CONTROL_REFUSED, "%s: refused: %s", c->cmd->name, err);
    if (rc < 0 && rc != -ENOENT)
        return store_failed(c, rc, err);
    bool governed = rc == 0;
    rc =
        store_layers_for_host(pc->layers, h->id, labels, n_labels, NULL, &before, err, sizeof(err));
    bool was = rc == 0;
    if (!was) /* not governed (or not validly): its agent's own config, shown as the defaults */
        policy_init_defaults(&before.policy);
    if (!governed)
        policy_init_defaults(&after.policy);
    bool changes = was != governed || !policy_equal(&before.policy, &after.policy);
    bool connected = in_fleet && info.liveness != FLEET_LIVENESS_DOWN;
    if (!changes)
        return CONTROL_OK;
    pc->hosts_changing++;
    pc->changing_connected += connected;
    if (pc->listed++ >= EFFECTS_LISTED_MAX)
        return CONTROL_OK;
    if (pc->hosts_json) {
        json_t *o = jobj();
        jset(o, "host_id", jstr(h->id));
        jset(o, "connected", jcheck(json_boolean(connected)));
        jset(o, "from_version", was ? ju64(before.version) : json_null());
        /* to_version: the version stored, set by change_render (the newest row is in scope) */
        jset(o, "changes", changes_json(all_keys(&before.policy), all_keys(&after.policy)));
        jpush(pc->hosts_json, o);
    } else {
        fprintf(f, "  %s%s: %s", h->id, connected ? "" : " (not connected)",
                was ? "" : "from its own config: ");
        print_changes(f, all_keys(&before.policy), all_keys(&after.policy));
        fputc('\n', f);
    }
    return CONTROL_OK;
}

/* The scope on its own (no host, or a host not known yet) must layer into a valid policy too. */
static enum control_status
effect_scope(struct call *c, struct policy_change *pc)
{
    const char *label = pc->parsed.label;
    const char *host = pc->parsed.kind == SCOPE_HOST ? pc->parsed.host_id : NULL;
    struct store_effective e;
    char err[STORE_ERR_MAX] = "";
    int rc = store_policy_for_host(c->cc->store, host, &label, pc->parsed.kind == SCOPE_LABEL,
                                   &pc->next, &e, err, sizeof(err));

    if (rc == -EINVAL)
        return fail(c, CONTROL_REFUSED, "%s: refused: %s%s", c->cmd->name,
                    host ? "" : "scope: ", err);
    if (rc < 0 && rc != -ENOENT)
        return store_failed(c, rc, err);
    return CONTROL_OK;
}

/* Every known host in scope: checked, counted, and the changes listed (EFFECTS_LISTED_MAX). */
static enum control_status
change_effects(struct call *c, struct policy_change *pc)
{
    struct known_hosts k = {0};
    char err[STORE_ERR_MAX] = "";
    enum control_status st = effect_scope(c, pc);
    FILE *f = text_open(&pc->hosts_text);
    int rc = st == CONTROL_OK ? known_collect(c, &k, err, sizeof(err)) : 0;

    if (rc == 0 && st == CONTROL_OK)
        rc = store_layers_load(c->cc->store, &pc->layers, err, sizeof(err));

    if (rc < 0)
        st = store_failed(c, rc, err);
    pc->hosts_json = c->req->json ? jarr() : NULL;
    for (size_t i = 0; st == CONTROL_OK && i < k.n; i++)
        st = effect_host(c, pc, &k.hosts[i], f);
    if (fclose(f) != 0)
        util_oom();
    known_free(&k);
    return st;
}

static enum control_status
change_store(struct call *c, struct policy_change *pc)
{
    char err[STORE_ERR_MAX] = "";
    int rc = store_policy_add(c->cc->store, pc->scope, &pc->next.policy, pc->next.keys,
                              pc->next.action, change_author(c), opt(c, "reason"),
                              c->cc->now_wall_ms, &pc->version, err, sizeof(err));

    if (rc == -EINVAL)
        return fail(c, CONTROL_REFUSED, "%s: refused: %s", c->cmd->name, err);
    if (rc < 0)
        return store_failed(c, rc, err);
    if (c->cc->on_policy_added)
        c->cc->on_policy_added(c->cc->ctx, pc->version, pc->scope);
    return CONTROL_OK;
}

static enum control_status
change_render(struct call *c, const struct policy_change *pc)
{
    bool unknown_host = pc->parsed.kind == SCOPE_HOST && !pc->host_known;
    struct text out;

    if (c->req->json) {
        json_t *root = jobj(), *o = jobj();
        jset(o, "version", ju64(pc->version));
        jset(o, "scope", jstr(pc->scope));
        jset(o, "action", jstr(pc->next.action));
        jset(o, "author", jstr(change_author(c)));
        jset(o, "reason", jstr(opt(c, "reason")));
        jset(o, "based_on_version", pc->has_current ? ju64(pc->current.version) : json_null());
        jset(o, "changes", changes_json(row_keys(&pc->current), row_keys(&pc->next)));
        jset(o, "policy", policy_json(&pc->next.policy, pc->next.keys));
        jset(o, "hosts_in_scope", ju64(pc->hosts_in_scope));
        jset(o, "hosts_changing", ju64(pc->hosts_changing));
        jset(o, "hosts_changing_connected", ju64(pc->changing_connected));
        for (size_t i = 0; i < json_array_size(pc->hosts_json); i++)
            jset(json_array_get(pc->hosts_json, i), "to_version", ju64(pc->version));
        jset(o, "hosts", json_incref(pc->hosts_json));
        if (pc->parsed.kind == SCOPE_HOST)
            jset(o, "host_known", jcheck(json_boolean(pc->host_known)));
        jset(root, "policy", o);
        return json_reply(c, root);
    }
    FILE *f = text_open(&out);
    fprintf(f, "policy v%" PRIu64 " stored for %s by %s (%s): ", pc->version, pc->scope,
            change_author(c), pc->next.action);
    print_changes(f, row_keys(&pc->current), row_keys(&pc->next));
    fprintf(f, "\n%s", pc->hosts_text.buf);
    if (pc->listed > EFFECTS_LISTED_MAX)
        fprintf(f, "  ... and %zu more\n", pc->listed - EFFECTS_LISTED_MAX);
    fprintf(f, "%zu host%s will change (%zu connected); %zu in scope\n", pc->hosts_changing,
            pc->hosts_changing == 1 ? "" : "s", pc->changing_connected, pc->hosts_in_scope);
    if (unknown_host)
        fprintf(f, "note: host %s is not known yet; it gets this policy when it says hello\n",
                pc->parsed.host_id);
    return text_reply(c, &out);
}

/* Check, store, push and answer: the common end of every change. */
static enum control_status
change_finish(struct call *c, struct policy_change *pc)
{
    enum control_status st = change_effects(c, pc);

    if (st == CONTROL_OK)
        st = change_store(c, pc);
    if (st == CONTROL_OK)
        st = change_render(c, pc);
    free(pc->hosts_text.buf);
    json_decref(pc->hosts_json);
    store_layers_free(&pc->layers);
    return st;
}

enum control_status
cmd_policy_set(struct call *c)
{
    struct policy_change pc = {0};
    struct store_effective now;
    const struct store_source *first;
    uint32_t given = 0;
    enum control_status st = change_begin(c, &pc);

    if (st == CONTROL_OK)
        st = set_apply(c, &pc, &given);
    if (st == CONTROL_OK)
        st = in_force(c, &pc, &now);
    if (st != CONTROL_OK)
        return st;
    if (!set_differs(&now, &pc.next.policy, given, &first))
        return set_no_change(c, &pc, first);
    snprintf(pc.next.action, sizeof(pc.next.action), "set");
    return change_finish(c, &pc);
}

enum control_status
cmd_policy_unset(struct call *c)
{
    struct policy_change pc = {0};
    enum control_status st = change_begin(c, &pc);
    uint32_t given = 0;

    if (st == CONTROL_OK && !c->n_pos)
        st = fail(c, CONTROL_USAGE, "policy-unset: nothing to unset: give KEY...\nusage: %s",
                  c->cmd->usage);
    for (size_t i = 0; st == CONTROL_OK && i < c->n_pos; i++) {
        uint32_t bit = policy_key_bit(c->pos[i]);
        if (!bit)
            return unknown_key(c, c->pos[i]);
        given |= bit;
    }
    if (st != CONTROL_OK)
        return st;
    if (!(pc.current.keys & given))
        return no_change(c, "the scope sets none of these keys");
    struct policy defaults;
    policy_init_defaults(&defaults);
    pc.next.keys &= ~given;
    policy_overlay(&pc.next.policy, &defaults, given); /* as a row reads back: unset = default */
    snprintf(pc.next.action, sizeof(pc.next.action), "unset");
    return change_finish(c, &pc);
}

enum control_status
cmd_policy_delete(struct call *c)
{
    struct policy_change pc = {0};
    enum control_status st = change_begin(c, &pc);

    if (st != CONTROL_OK)
        return st;
    if (!pc.current.keys)
        return fail(c, CONTROL_NOT_FOUND, "policy-delete: no policy stored under %s", pc.scope);
    pc.next.keys = 0;
    policy_init_defaults(&pc.next.policy);
    snprintf(pc.next.action, sizeof(pc.next.action), "delete");
    return change_finish(c, &pc);
}

/* --to vN (or N): a version stored under the same scope. */
static enum control_status
rollback_target(struct call *c, const struct policy_change *pc, struct store_policy_entry *e)
{
    const char *to = opt(c, "to");
    char err[STORE_ERR_MAX] = "";
    uint64_t v;

    if (!to || parse_count(to + (to[0] == 'v'), 1, INT64_MAX, &v) < 0)
        return fail(c, CONTROL_USAGE, "policy-rollback: --to wants a version (vN)\nusage: %s",
                    c->cmd->usage);
    int rc = store_policy_get(c->cc->store, v, e, err, sizeof(err));
    if (rc == -ENOENT)
        return fail(c, CONTROL_NOT_FOUND, "policy-rollback: no version v%" PRIu64, v);
    if (rc < 0)
        return store_failed(c, rc, err);
    if (strcmp(e->scope, pc->scope) != 0)
        return fail(c, CONTROL_USAGE, "policy-rollback: v%" PRIu64 " is a policy of %s, not of %s",
                    v, e->scope, pc->scope);
    return CONTROL_OK;
}

enum control_status
cmd_policy_rollback(struct call *c)
{
    struct policy_change pc = {0};
    struct store_policy_entry target;
    enum control_status st = change_begin(c, &pc);

    if (st == CONTROL_OK)
        st = rollback_target(c, &pc, &target);
    if (st != CONTROL_OK)
        return st;
    pc.next.keys = target.keys;
    pc.next.policy = target.policy;
    struct keyed now = row_keys(&pc.current), then = row_keys(&pc.next);
    size_t n;
    const struct config_key *params = policy_params(&n);
    bool same = true;
    for (size_t i = 0; i < n && same; i++)
        same = !key_differs(&now, &then, &params[i], i);
    if (same)
        return no_change(c, "the scope already holds that version's values");
    snprintf(pc.next.action, sizeof(pc.next.action), "rollback to v%" PRIu64, target.version);
    return change_finish(c, &pc);
}

/* ---- policy-wait ---- */

/* memschedctl --wait asks this again and again: which hosts in the scope do not hold their
 * effective policy yet. Every host the fleet knows counts, down ones too (they cannot ack: the
 * wait names them). Answers CONTROL_OK when all hold it, CONTROL_PENDING while some have not
 * answered, CONTROL_REFUSED when all answered and some refused. */
struct waiting {
    struct call *c;
    struct scope scope;
    size_t in_scope, acked, refused, pending;
    struct store_layers *layers;
    FILE *f;
    int rc;
    char err[STORE_ERR_MAX];
};

static int
wait_host(const struct fleet_host_info *h, void *ctx)
{
    struct waiting *w = ctx;
    struct store_effective e;
    struct store_ack ack;

    if (!scope_matches(&w->scope, h->host_id, h->labels, h->n_labels))
        return 0;
    w->rc = store_layers_for_host(w->layers, h->host_id, h->labels, h->n_labels, NULL, &e, w->err,
                                  sizeof(w->err));
    if (w->rc == -ENOENT)
        return w->rc = 0; /* nothing governs it: nothing to wait for */
    if (w->rc < 0)
        return w->rc;
    w->in_scope++;
    if (h->policy_version == e.version) {
        w->acked++;
        return 0;
    }
    bool refused =
        store_ack_for_host(w->c->cc->store, h->host_id, &ack, w->err, sizeof(w->err)) == 0 &&
        ack.version == e.version && !ack.applied;
    if (refused) {
        w->refused++;
        fprintf(w->f, "%s: refused v%" PRIu64 ": %s\n", h->host_id, e.version, ack.reason);
    } else {
        w->pending++;
        fprintf(w->f, "%s: no ack of v%" PRIu64 " yet (holds v%" PRIu64 ", %s)\n", h->host_id,
                e.version, h->policy_version, fleet_liveness_name(h->liveness));
    }
    return 0;
}

enum control_status
cmd_policy_wait(struct call *c)
{
    struct waiting w = {.c = c};
    const char *text = opt(c, "scope");
    struct text out;

    if (!text)
        return fail(c, CONTROL_USAGE, "policy-wait: --scope is required");
    enum control_status st = scope_option(c, text, &w.scope);
    if (st != CONTROL_OK)
        return st;
    w.rc = store_layers_load(c->cc->store, &w.layers, w.err, sizeof(w.err));
    if (w.rc < 0)
        return store_failed(c, w.rc, w.err);
    w.f = text_open(&out);
    fleet_hosts_each(c->cc->fleet, wait_host, &w);
    store_layers_free(&w.layers);
    fprintf(w.f, "%zu of %zu host%s in %s %s policy; %zu refused, %zu not acked\n", w.acked,
            w.in_scope, w.in_scope == 1 ? "" : "s", text,
            w.in_scope == 1 ? "holds its" : "hold their", w.refused, w.pending);
    st = text_reply(c, &out);
    if (w.rc < 0)
        return store_failed(c, w.rc, w.err);
    if (w.pending)
        return CONTROL_PENDING;
    return w.refused ? CONTROL_REFUSED : st;
}

/* ---- policy-history ---- */

/* A shown entry and the one before it in its scope, found further down the history. */
struct past {
    struct store_policy_entry entry;
    bool has_previous;
    struct store_policy_entry previous;
};

struct history {
    struct past *items;
    size_t n, cap, limit;
    size_t waiting; /* shown entries whose previous is not found yet */
};

static int
each_history(const struct store_policy_entry *e, void *ctx)
{
    struct history *h = ctx;

    /* The newest shown entry of this scope still waiting gets e as its previous. */
    for (size_t i = h->n; h->waiting && i-- > 0;) {
        if (strcmp(h->items[i].entry.scope, e->scope) == 0) {
            if (!h->items[i].has_previous) {
                h->items[i].has_previous = true;
                h->items[i].previous = *e;
                h->waiting--;
            }
            break;
        }
    }
    if (h->n < h->limit) {
        if (h->n == h->cap) {
            h->cap = h->cap ? 2 * h->cap : 16;
            h->items = util_xrealloc(h->items, h->cap, sizeof(*h->items));
        }
        memset(&h->items[h->n], 0, sizeof(h->items[h->n]));
        h->items[h->n++].entry = *e;
        h->waiting++;
    }
    return h->n >= h->limit && !h->waiting ? 1 : 0;
}

static json_t *
past_json(const struct past *p)
{
    json_t *o = entry_json(&p->entry);

    jset(o, "previous_version", p->has_previous ? ju64(p->previous.version) : json_null());
    if (p->has_previous)
        jset(o, "changes", changes_json(row_keys(&p->previous), row_keys(&p->entry)));
    else
        jset(o, "changes", jcheck(json_null()));
    return o;
}

static void
past_row(struct table *t, const struct past *p)
{
    char when[64];
    char *changes = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&changes, &len);

    if (!f)
        util_oom();
    if (strcmp(p->entry.action, "set") != 0)
        fprintf(f, "%s: ", p->entry.action); /* unset, delete, rollback to vN */
    if (p->has_previous)
        print_changes(f, row_keys(&p->previous), row_keys(&p->entry));
    else
        fputs("first in scope", f);
    if (fclose(f) != 0)
        util_oom();
    table_add(t, "v%" PRIu64, p->entry.version);
    table_add(t, "%s", p->entry.scope);
    table_add(t, "%s", fmt_wall(when, sizeof(when), p->entry.created_at_ms));
    table_add(t, "%s", p->entry.author);
    table_add(t, "%s", p->entry.reason[0] ? p->entry.reason : "-");
    table_add(t, "%s", changes);
    free(changes);
}

static enum control_status
history_render(struct call *c, const struct history *h)
{
    static const struct column cols[] = {
        {"VERSION", false}, {"SCOPE", false},  {"CREATED", false},
        {"AUTHOR", false},  {"REASON", false}, {"CHANGES", false},
    };
    struct table t = {.cols = cols, .n_cols = 6};
    struct text out;

    if (c->req->json) {
        json_t *root = jobj(), *a = jarr();
        for (size_t i = 0; i < h->n; i++)
            jpush(a, past_json(&h->items[i]));
        jset(root, "history", a);
        return json_reply(c, root);
    }
    FILE *f = text_open(&out);
    for (size_t i = 0; i < h->n; i++)
        past_row(&t, &h->items[i]);
    if (h->n)
        table_print(f, &t);
    else
        fputs("no policy stored yet\n", f);
    table_free(&t);
    return text_reply(c, &out);
}

enum control_status
cmd_policy_history(struct call *c)
{
    struct history h = {0};
    struct scope scope;
    const char *text = opt(c, "scope");
    char err[STORE_ERR_MAX] = "";
    uint64_t limit;
    enum control_status st = text ? scope_option(c, text, &scope) : CONTROL_OK;

    if (st == CONTROL_OK)
        st = count_option(c, "limit", 1, HISTORY_LIMIT_MAX, HISTORY_LIMIT_DEFAULT, &limit);
    if (st != CONTROL_OK)
        return st;
    h.limit = limit;
    int rc = store_policy_history(c->cc->store, text, each_history, &h, err, sizeof(err));
    if (rc < 0)
        st = store_failed(c, rc, err);
    else if (text && !h.n)
        st = fail(c, CONTROL_NOT_FOUND, "policy-history: no policy stored under %s", text);
    else
        st = history_render(c, &h);
    free(h.items);
    return st;
}

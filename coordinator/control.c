/*
 * control.c - the coordinator's answers to memschedctl (control.h): fleet state and policy as
 * aligned tables or JSON documents, and policy changes.
 *
 * It owns nothing between calls: each request is parsed against its command's row in the
 * command table (options it accepts, whether KEY=VALUE arguments are allowed, its usage line),
 * answered from the fleet (in memory) and the store (SQLite), and rendered into one new string.
 * JSON goes through jansson only (no JSON is ever assembled by hand): numbers are numbers,
 * memory is KiB in fields named *_kib, every command answers one top-level object. Tables speak
 * MiB with one decimal and ages ("3s ago"); wall-clock times are UTC.
 *
 * Invariants: the fleet is read, never changed; the store is written only by the policy changes
 * (set, unset, delete, rollback), and only after policy_set() per key and policy_validate() of
 * the layered policy of every known host in the scope and of the scope on its own; a request
 * that fails leaves no trace.
 */
#define _GNU_SOURCE /* qsort_r, vasprintf */
#include "control.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "policy.h"
#include "sched.h"
#include "scope.h"
#include "util.h"

#define OPTIONS_MAX           5
#define AUTHOR_DEFAULT        "memschedctl"
#define HOSTS_LIMIT_DEFAULT   5000 /* ~1.5 MiB of JSON: far below the 4 MiB reply limit */
#define HOSTS_LIMIT_MAX       10000
#define VMS_LIMIT_DEFAULT     1000
#define VMS_LIMIT_MAX         10000
#define EVENTS_LIMIT_DEFAULT  100
#define EVENTS_LIMIT_MAX      1000000
#define HISTORY_LIMIT_DEFAULT 50
#define HISTORY_LIMIT_MAX     10000
#define TABLE_COLS_MAX        16
#define ARRAY_SIZE(a)         (sizeof(a) / sizeof((a)[0]))

/* ---- memory: out of memory aborts (util.h; systemd restarts the daemon) ---- */

static char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static char *
xvasprintf(const char *fmt, va_list ap)
{
    char *s;

    if (vasprintf(&s, fmt, ap) < 0)
        util_oom();
    return s;
}

/* ---- one request being answered ---- */

struct call;

struct command {
    const char *name;
    const char *usage;
    const char *options[OPTIONS_MAX]; /* "--NAME VALUE" (or --NAME=VALUE), all take a value */
    bool positional;                  /* accepts KEY=VALUE arguments */
    bool writes;                      /* changes something: not for read-only operators */
    enum control_status (*run)(struct call *c);
};

struct call {
    const struct control_context *cc;
    const struct wire_control_request *req;
    const struct command *cmd;
    const char *opt[OPTIONS_MAX]; /* values, indexed like cmd->options; NULL when not given */
    const char *pos[WIRE_ARGS_MAX];
    size_t n_pos;
    char **body;
};

static enum control_status fail(struct call *c, enum control_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Set the body to an error message and return status. */
static enum control_status
fail(struct call *c, enum control_status status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    free(*c->body);
    *c->body = xvasprintf(fmt, ap);
    va_end(ap);
    return status;
}

static enum control_status
store_failed(struct call *c, int rc, const char *err)
{
    return fail(c, CONTROL_INTERNAL, "%s: store: %s (%s)", c->cmd->name, err, strerror(-rc));
}

static const char *
opt(const struct call *c, const char *name)
{
    for (size_t i = 0; i < OPTIONS_MAX && c->cmd->options[i]; i++) {
        if (strcmp(c->cmd->options[i], name) == 0)
            return c->opt[i];
    }
    return NULL;
}

/* ---- text: tables and formatting ---- */

struct text {
    FILE *f;
    char *buf;
    size_t len;
};

static FILE *
text_open(struct text *t)
{
    t->buf = NULL;
    t->len = 0;
    t->f = open_memstream(&t->buf, &t->len);
    if (!t->f)
        util_oom();
    return t->f;
}

/* Close the stream and hand its text over as the body. */
static enum control_status
text_reply(struct call *c, struct text *t)
{
    if (fclose(t->f) != 0)
        util_oom();
    free(*c->body);
    *c->body = t->buf;
    return CONTROL_OK;
}

struct column {
    const char *header; /* NULL everywhere: no header line */
    bool right;         /* numbers are right-aligned */
};

struct table {
    const struct column *cols;
    size_t n_cols;
    char **cells; /* row after row */
    size_t n_cells;
    size_t cap_cells;
};

static void table_vadd(struct table *t, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
table_vadd(struct table *t, const char *fmt, va_list ap)
{
    if (t->n_cells == t->cap_cells) {
        t->cap_cells = t->cap_cells ? 2 * t->cap_cells : 64;
        t->cells = util_xrealloc(t->cells, t->cap_cells, sizeof(*t->cells));
    }
    t->cells[t->n_cells++] = xvasprintf(fmt, ap);
}

static void table_add(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
table_add(struct table *t, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    table_vadd(t, fmt, ap);
    va_end(ap);
}

/* Columns as seen on a terminal: UTF-8 continuation bytes take no room. */
static size_t
display_width(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void
table_cell(FILE *f, const char *s, size_t width, bool right, bool last)
{
    size_t pad = width - display_width(s);

    if (right)
        fprintf(f, "%*s%s", (int)pad, "", s);
    else if (last)
        fputs(s, f);
    else
        fprintf(f, "%s%*s", s, (int)pad, "");
}

static void
table_row(FILE *f, const struct table *t, const char *const *row, const size_t *widths)
{
    for (size_t i = 0; i < t->n_cols; i++) {
        if (i > 0)
            fputs("  ", f);
        table_cell(f, row[i], widths[i], t->cols[i].right, i + 1 == t->n_cols);
    }
    fputc('\n', f);
}

static void
table_print(FILE *f, const struct table *t)
{
    size_t widths[TABLE_COLS_MAX] = {0};
    const char *headers[TABLE_COLS_MAX];
    bool has_header = t->cols[0].header != NULL;

    assert(t->n_cols > 0 && t->n_cols <= TABLE_COLS_MAX);
    for (size_t i = 0; i < t->n_cols; i++) {
        headers[i] = has_header ? t->cols[i].header : "";
        widths[i] = display_width(headers[i]);
    }
    for (size_t i = 0; i < t->n_cells; i++) {
        size_t w = display_width(t->cells[i]);
        if (w > widths[i % t->n_cols])
            widths[i % t->n_cols] = w;
    }
    if (has_header)
        table_row(f, t, headers, widths);
    for (size_t r = 0; r + t->n_cols <= t->n_cells; r += t->n_cols)
        table_row(f, t, (const char *const *)&t->cells[r], widths);
}

static void
table_free(struct table *t)
{
    for (size_t i = 0; i < t->n_cells; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->n_cells = t->cap_cells = 0;
}

/* KiB as MiB with one decimal. */
static const char *
fmt_mib(char *buf, size_t len, uint64_t kib)
{
    snprintf(buf, len, "%.1f", util_kib_to_mib(kib));
    return buf;
}

/* "3s ago", "4m ago", "2h ago", "5d ago". */
static const char *
fmt_age(char *buf, size_t len, uint64_t now_ms, uint64_t then_ms)
{
    uint64_t s = now_ms > then_ms ? (now_ms - then_ms) / 1000 : 0;

    if (s < 60)
        snprintf(buf, len, "%" PRIu64 "s ago", s);
    else if (s < 3600)
        snprintf(buf, len, "%" PRIu64 "m ago", s / 60);
    else if (s < 86400)
        snprintf(buf, len, "%" PRIu64 "h ago", s / 3600);
    else
        snprintf(buf, len, "%" PRIu64 "d ago", s / 86400);
    return buf;
}

/* Wall-clock milliseconds as UTC: "2024-05-01 12:00:00Z". */
static const char *
fmt_wall(char *buf, size_t len, uint64_t wall_ms)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "@%" PRIu64 "ms", wall_ms);
    return buf;
}

/* "v3", or "none" for version 0. */
static const char *
fmt_version(char *buf, size_t len, uint64_t version)
{
    if (version)
        snprintf(buf, len, "v%" PRIu64, version);
    else
        snprintf(buf, len, "none");
    return buf;
}

static const char *
vm_state_name(uint8_t state)
{
    static const char *const names[] = {
        [SCHED_VM_RUNNING] = "running",
        [SCHED_VM_PAUSED] = "paused",
        [SCHED_VM_MIGRATING] = "migrating",
        [SCHED_VM_OTHER] = "other",
    };
    return state < sizeof(names) / sizeof(names[0]) ? names[state] : "other";
}

/* ---- JSON (jansson) ---- */

static json_t *
jcheck(json_t *v)
{
    if (!v)
        util_oom();
    return v;
}

static json_t *
jobj(void)
{
    return jcheck(json_object());
}

static json_t *
jarr(void)
{
    return jcheck(json_array());
}

static json_t *
ju64(uint64_t v)
{
    return jcheck(json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v));
}

/* A string; bytes that are not UTF-8 (agents send names as they find them) become '?'. */
static json_t *
jstr(const char *s)
{
    json_t *v = json_string(s);

    if (!v) {
        char *copy = util_xstrdup(s);
        for (char *p = copy; *p; p++) {
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        }
        v = json_string(copy);
        free(copy);
    }
    return jcheck(v);
}

static void
jset(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, jcheck(v)) < 0)
        util_oom();
}

static void
jpush(json_t *arr, json_t *v)
{
    if (json_array_append_new(arr, jcheck(v)) < 0)
        util_oom();
}

/* Dump root (consumed) as the body. */
static enum control_status
json_reply(struct call *c, json_t *root)
{
    char *s = json_dumps(root, JSON_COMPACT);

    json_decref(root);
    if (!s)
        util_oom();
    free(*c->body);
    *c->body = s;
    return CONTROL_OK;
}

/* ---- policies ---- */

static const void *
param_field(const struct policy *p, const struct config_key *param)
{
    return (const char *)p + param->offset;
}

/* The JSON key of a parameter: MiB at the edge, KiB in JSON ("vm_floor_mib" -> "vm_floor_kib"). */
static const char *
param_json_key(const struct config_key *param, char *buf, size_t len)
{
    size_t n = strlen(param->name);

    if (param->kind == CONFIG_KIND_MIB && n > 4 && strcmp(param->name + n - 4, "_mib") == 0)
        snprintf(buf, len, "%.*s_kib", (int)(n - 4), param->name);
    else
        snprintf(buf, len, "%s", param->name);
    return buf;
}

static json_t *
param_json_value(const struct policy *p, const struct config_key *param)
{
    const void *field = param_field(p, param);

    switch (param->kind) {
    case CONFIG_KIND_MIB:
        return ju64(*(const uint64_t *)field);
    case CONFIG_KIND_U32:
        return ju64(*(const uint32_t *)field);
    case CONFIG_KIND_BOOL:
        return jcheck(json_boolean(*(const bool *)field));
    case CONFIG_KIND_ENUM:
        return jstr(policy_demand_signal_name(*(const enum policy_demand_signal *)field));
    case CONFIG_KIND_U64:
    case CONFIG_KIND_STRING:
        break; /* no policy parameter has these kinds */
    }
    return jcheck(json_null());
}

static bool
has_key(uint32_t keys, size_t i)
{
    return keys & (UINT32_C(1) << i);
}

/* The values of the keys in keys, as one JSON object. */
static json_t *
policy_json(const struct policy *p, uint32_t keys)
{
    size_t n;
    const struct config_key *params = policy_params(&n);
    json_t *o = jobj();
    char key[64];

    for (size_t i = 0; i < n; i++) {
        if (has_key(keys, i))
            jset(o, param_json_key(&params[i], key, sizeof(key)), param_json_value(p, &params[i]));
    }
    return o;
}

/* version, scope, action, author, reason, created_at_ms and the keys one stored row sets. */
static json_t *
entry_json(const struct store_policy_entry *e)
{
    json_t *o = jobj();

    jset(o, "version", ju64(e->version));
    jset(o, "scope", jstr(e->scope));
    jset(o, "action", jstr(e->action));
    jset(o, "author", jstr(e->author));
    jset(o, "reason", jstr(e->reason));
    jset(o, "created_at_ms", ju64(e->created_at_ms));
    jset(o, "policy", policy_json(&e->policy, e->keys));
    return o;
}

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

/* The values of the keys set, one "  key  value" line each, keys aligned. */
static void
print_policy_values(FILE *f, const struct policy *p, uint32_t keys)
{
    static const struct column cols[] = {{NULL, false}, {NULL, false}, {NULL, false}};
    struct table t = {.cols = cols, .n_cols = 3};
    size_t n;
    const struct config_key *params = policy_params(&n);
    char v[64];

    for (size_t i = 0; i < n; i++) {
        if (!has_key(keys, i))
            continue;
        policy_get(p, params[i].name, v, sizeof(v));
        table_add(&t, "%s", ""); /* the indent */
        table_add(&t, "%s", params[i].name);
        table_add(&t, "%s", v);
    }
    table_print(f, &t);
    table_free(&t);
}

/* "v3 fleet, by alice at 2024-05-01 12:00:00Z: raise floors" */
static const char *
fmt_entry(char *buf, size_t len, const struct store_policy_entry *e)
{
    char when[64];

    snprintf(buf, len, "v%" PRIu64 " %s, by %s at %s%s%s", e->version, e->scope, e->author,
             fmt_wall(when, sizeof(when), e->created_at_ms), e->reason[0] ? ": " : "", e->reason);
    return buf;
}

/* ---- arguments ---- */

/* A decimal count in [min, max]. */
static int
parse_count(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;

    if (!text || text[0] < '0' || text[0] > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* The value of a --NAME count option, or dflt when not given. */
static enum control_status
count_option(
    struct call *c, const char *name, uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out)
{
    const char *text = opt(c, name);

    *out = dflt;
    if (text && parse_count(text, min, max, out) < 0)
        return fail(c, CONTROL_USAGE,
                    "%s: --%s wants a whole number from %" PRIu64 " to %" PRIu64 ", not '%s'",
                    c->cmd->name, name, min, max, text);
    return CONTROL_OK;
}

/* Parse a --scope value. */
static enum control_status
scope_option(struct call *c, const char *text, struct scope *scope)
{
    if (scope_parse(text, scope) < 0)
        return fail(c, CONTROL_USAGE,
                    "%s: bad scope '%s': expected fleet, label:KEY=VALUE or host:ID", c->cmd->name,
                    text);
    return CONTROL_OK;
}

static int
option_index(const struct command *cmd, const char *name, size_t len)
{
    for (int i = 0; i < OPTIONS_MAX && cmd->options[i]; i++) {
        if (strlen(cmd->options[i]) == len && strncmp(cmd->options[i], name, len) == 0)
            return i;
    }
    return -1;
}

static enum control_status
usage_error(struct call *c, const char *what, const char *arg)
{
    return fail(c, CONTROL_USAGE, "%s: %s '%s'\nusage: %s", c->cmd->name, what, arg, c->cmd->usage);
}

/* Split the request's arguments into the command's options and KEY=VALUE arguments. */
static enum control_status
parse_args(struct call *c)
{
    const struct wire_control_request *req = c->req;

    for (size_t i = 0; i < req->n_args; i++) {
        const char *arg = req->args[i];
        if (strncmp(arg, "--", 2) != 0) {
            if (!c->cmd->positional)
                return usage_error(c, "unexpected argument", arg);
            c->pos[c->n_pos++] = arg;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        int k = option_index(c->cmd, arg + 2, len);
        if (k < 0)
            return usage_error(c, "unknown option", arg);
        if (eq)
            c->opt[k] = eq + 1;
        else if (i + 1 < req->n_args)
            c->opt[k] = req->args[++i];
        else
            return usage_error(c, "missing value for", arg);
    }
    return CONTROL_OK;
}

/* ---- status ---- */

/* The newest policy of scope into *e; *found says whether there is one. */
static enum control_status
latest_policy(struct call *c, const char *scope, struct store_policy_entry *e, bool *found)
{
    char err[STORE_ERR_MAX] = "";
    int rc = store_policy_latest(c->cc->store, scope, e, err, sizeof(err));

    *found = rc == 0;
    if (rc < 0 && rc != -ENOENT)
        return store_failed(c, rc, err);
    return CONTROL_OK;
}

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

static enum control_status
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

/* ---- rows: one model, two renderings ---- */

/* A listing (hosts, VMs, events) is built row by row with the put_*() calls below, each naming a
 * value once: as a JSON member (key) and as a table cell. So the table and the JSON document
 * cannot drift apart; only one of the two is being built per request. */
struct rows {
    const struct control_context *cc;
    struct table table;
    json_t *array; /* JSON when not NULL */
    json_t *obj;   /* the JSON row being built */
    size_t count;
    size_t limit;      /* 0 = all */
    uint64_t unit_kib; /* the table's memory unit: MiB (0 too) or GiB */
};

static void
row_begin(struct rows *r)
{
    if (r->array)
        r->obj = jobj();
}

static void
row_end(struct rows *r)
{
    if (r->array)
        jpush(r->array, r->obj);
    r->obj = NULL;
    r->count++;
}

/* A JSON member only (value consumed). */
static void
put_json(struct rows *r, const char *key, json_t *value)
{
    if (r->obj)
        jset(r->obj, key, value);
    else
        json_decref(value);
}

static void put_cell(struct rows *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A table cell only. */
static void
put_cell(struct rows *r, const char *fmt, ...)
{
    va_list ap;

    if (r->array)
        return;
    va_start(ap, fmt);
    table_vadd(&r->table, fmt, ap);
    va_end(ap);
}

/* A string, both ways ("-" in the table when empty). */
static void
put_str(struct rows *r, const char *key, const char *value)
{
    if (r->array)
        put_json(r, key, jstr(value));
    else
        put_cell(r, "%s", value[0] ? value : "-");
}

/* Memory: KiB in JSON (null when unknown), MiB or GiB in the table ("-"). */
static void
put_kib(struct rows *r, const char *key, bool known, uint64_t kib)
{
    uint64_t unit = r->unit_kib ? r->unit_kib : UTIL_KIB_PER_MIB;

    if (r->array)
        put_json(r, key, known ? ju64(kib) : json_null());
    else if (known)
        put_cell(r, "%.1f", (double)kib / (double)unit);
    else
        put_cell(r, "-");
}

struct unit_choice {
    const char *name;
    uint64_t kib;
};

static const struct unit_choice units[] = {{"MiB", UTIL_KIB_PER_MIB},
                                           {"GiB", UTIL_KIB_PER_MIB * 1024}};

/* --unit MiB|GiB: the table's memory unit, and its columns' headers ("TOTAL GiB") in names. */
static enum control_status
unit_option(struct call *c,
            struct rows *r,
            const struct column *cols,
            struct column *out,
            char (*names)[32])
{
    const char *text = opt(c, "unit");
    const struct unit_choice *u = &units[0];

    for (size_t i = 0; text && i < ARRAY_SIZE(units) && u == &units[0]; i++)
        if (strcasecmp(text, units[i].name) == 0)
            u = &units[i];
    if (text && strcasecmp(text, u->name) != 0)
        return fail(c, CONTROL_USAGE, "%s: --unit wants MiB or GiB, not '%s'", c->cmd->name, text);
    r->unit_kib = u->kib;
    for (size_t i = 0; i < r->table.n_cols; i++) {
        const char *h = cols[i].header, *mib = strstr(h, "MiB");
        out[i] = cols[i];
        if (!mib)
            continue;
        snprintf(names[i], sizeof(names[i]), "%.*s%s", (int)(mib - h), h, u->name);
        out[i].header = names[i];
    }
    r->table.cols = out;
    return CONTROL_OK;
}

/* An age: milliseconds in JSON, "3s ago" in the table. */
static void
put_age_ms(struct rows *r, const char *key, uint64_t age_ms)
{
    char a[32];

    if (r->array)
        put_json(r, key, ju64(age_ms));
    else
        put_cell(r, "%s", fmt_age(a, sizeof(a), age_ms, 0));
}

/* The age of a moment on the fleet's (monotonic) clock. */
static void
put_age(struct rows *r, const char *key, uint64_t then_ms)
{
    put_age_ms(r, key, util_sub_sat(r->cc->now_ms, then_ms));
}

/* Render the listing: the JSON document under key, or the table (or none_text when empty). */
static enum control_status
rows_reply(struct call *c, struct rows *r, const char *key, const char *none_text)
{
    struct text out;

    if (r->array) {
        json_t *root = jobj();
        jset(root, key, r->array);
        return json_reply(c, root);
    }
    FILE *f = text_open(&out);
    if (r->count)
        table_print(f, &r->table);
    else
        fprintf(f, "%s\n", none_text);
    table_free(&r->table);
    return text_reply(c, &out);
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

/* The hosts asked for (--filter), to be sorted (--sort) before they are put. */
struct host_list {
    struct fleet_host_info *hosts;
    size_t n, cap;
    const struct scope *filter; /* NULL: all */
};

static int
collect_host(const struct fleet_host_info *h, void *ctx)
{
    struct host_list *l = ctx;

    if (l->filter && !scope_matches(l->filter, h->host_id, h->labels, h->n_labels))
        return 0;
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

/* A page of hosts: total matching, and the cursor of the next page (NULL on the last). */
static enum control_status
hosts_render(struct call *c, struct rows *r, size_t total, const char *next, const char *none_text)
{
    struct text out;

    if (r->array) {
        json_t *root = jobj();
        jset(root, "hosts", r->array);
        jset(root, "total", ju64(total));
        jset(root, "next_after", next ? jstr(next) : jcheck(json_null()));
        return json_reply(c, root);
    }
    FILE *f = text_open(&out);
    if (r->count)
        table_print(f, &r->table);
    else
        fprintf(f, "%s\n", none_text);
    if (next)
        fprintf(f, "(%zu of %zu hosts shown: --after %s for the next page)\n", r->count, total,
                next);
    table_free(&r->table);
    return text_reply(c, &out);
}

static enum control_status
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
    fleet_hosts_each(c->cc->fleet, collect_host, &l);
    if (l.n > 1)
        qsort_r(l.hosts, l.n, sizeof(*l.hosts), compare_hosts, &sort);
    size_t first = 0, end;
    while (after && first < l.n && strcmp(l.hosts[first].host_id, after) <= 0)
        first++; /* the page after the cursor: host ids are unique and sorted */
    end = l.n - first > limit ? first + limit : l.n;
    r.array = c->req->json ? jarr() : NULL;
    for (size_t i = first; i < end; i++)
        host_put(&r, &l.hosts[i]);
    const char *next = end < l.n ? l.hosts[end - 1].host_id : NULL;
    st = hosts_render(c, &r, l.n, next, filter_text ? "no host matches" : "no hosts yet");
    free(l.hosts);
    return st;
}

/* ---- hosts forget ---- */

static enum control_status
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

/* "-", or the words that qualify a VM's row: "down,unmanaged,stuck". */
static const char *
vm_flags(enum fleet_liveness host_liveness, const struct fleet_vm *vm, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s",
             liveness_stale(host_liveness) ? fleet_liveness_name(host_liveness) : "",
             liveness_stale(host_liveness) && (!vm->managed || vm->stuck) ? "," : "",
             vm->managed ? "" : "unmanaged", !vm->managed && vm->stuck ? "," : "",
             vm->stuck ? "stuck" : "");
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

static void
vm_put(struct rows *r, const struct fleet_host_info *host, const struct fleet_vm *vm)
{
    char uuid[WIRE_UUID_LEN], flags[48], overrides[64];
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
    struct rows *r = &v->rows;
    struct text out;
    char next[WIRE_HOST_ID_MAX + WIRE_UUID_LEN + 1] = "", uuid[WIRE_UUID_LEN];

    if (v->more && host_order) {
        fleet_uuid_format(v->last.uuid, uuid);
        snprintf(next, sizeof(next), "%s/%s", v->last.host_id, uuid);
    }
    if (r->array) {
        json_t *root = jobj();
        jset(root, "vms", r->array);
        jset(root, "total", ju64(total));
        jset(root, "next_after", next[0] ? jstr(next) : jcheck(json_null()));
        return json_reply(c, root);
    }
    FILE *f = text_open(&out);
    if (r->count)
        table_print(f, &r->table);
    else
        fputs("no VMs\n", f);
    if (next[0])
        fprintf(f, "(%zu of %zu VMs shown: --after %s for the next page)\n", r->count, total, next);
    else if (r->count < total && !opt(c, "after"))
        fprintf(f, "(%zu of %zu VMs shown: --limit N up to %d, or --host H)\n", r->count, total,
                VMS_LIMIT_MAX);
    table_free(&r->table);
    return text_reply(c, &out);
}

static enum control_status
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
    } else {
        /* In host order the walk goes past the page by one, to know whether another follows. */
        total = fleet_vm_count(c->cc->fleet);
        fleet_vms_each(c->cc->fleet, s->key, s->descending,
                       paged ? 0 : (host_order ? limit + 1 : limit), each_vm, &v);
    }
    return vms_render(c, &v, total, host_order);
}

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

static enum control_status
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

static enum control_status
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

static const char *
standing_state(const struct standing *s)
{
    if (!s->has_should)
        return "-"; /* no scope covers it: the agent keeps its own config */
    if (s->holds == s->should.version)
        return "current";
    if (s->has_ack && s->ack.version == s->should.version && !s->ack.applied)
        return "refused";
    return "pending";
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
    rc = store_ack_for_host(c->cc->store, h->id, &s->ack, err, err_len);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    s->has_ack = rc == 0;
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

struct show {
    struct scopes scopes;
    struct known_hosts known;
    struct rows hosts;
};

static enum control_status
show_collect(struct call *c, struct show *sh, const struct scope *only)
{
    char err[STORE_ERR_MAX] = "";
    struct standing s;
    struct store_layers *layers = NULL;
    int rc = store_policy_history(c->cc->store, sh->scopes.only, each_history_scope, &sh->scopes,
                                  err, sizeof(err));

    if (rc == 0)
        rc = known_collect(c, &sh->known, err, sizeof(err));
    if (rc == 0)
        rc = store_layers_load(c->cc->store, &layers, err, sizeof(err));
    for (size_t i = 0; rc >= 0 && i < sh->known.n; i++) {
        rc = standing_get(c, layers, &sh->known.hosts[i], only, &s, err, sizeof(err));
        if (rc == 0) /* else outside the scope, or an error that ends the loop */
            standing_put(&sh->hosts, &s);
    }
    store_layers_free(&layers);
    if (rc < 0)
        return store_failed(c, rc, err);
    if (sh->scopes.n > 1)
        qsort(sh->scopes.entries, sh->scopes.n, sizeof(*sh->scopes.entries), compare_entries);
    return CONTROL_OK;
}

static enum control_status
show_render(struct call *c, struct show *sh)
{
    char line[WIRE_SCOPE_MAX + WIRE_REASON_MAX + STORE_AUTHOR_MAX + 64];
    struct text out;

    if (sh->hosts.array) {
        json_t *root = jobj(), *policies = jarr();
        for (size_t i = 0; i < sh->scopes.n; i++)
            jpush(policies, entry_json(&sh->scopes.entries[i]));
        jset(root, "policies", policies);
        jset(root, "hosts", json_incref(sh->hosts.array));
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
    if (sh->hosts.count)
        table_print(f, &sh->hosts.table);
    else
        fputs("no hosts\n", f);
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

static enum control_status
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

static enum control_status
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

static enum control_status
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

static enum control_status
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

static enum control_status
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

static enum control_status
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

static enum control_status
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

/* ---- dispatch ---- */

static const struct command commands[] = {
    {"status", "status", {NULL}, false, false, cmd_status},
    {"hosts",
     "hosts [--sort host|liveness|seen|vms|available] [--filter SCOPE] [--unit MiB|GiB] "
     "[--limit N] [--after HOST]",
     {"sort", "filter", "unit", "limit", "after"},
     false,
     false,
     cmd_hosts},
    {"hosts-forget", "hosts forget HOST", {"host"}, false, true, cmd_hosts_forget},
    {"vms",
     "vms [--host H] [--sort host|name|actual|unused] [--limit N] [--unit MiB|GiB] "
     "[--after HOST/UUID]",
     {"host", "sort", "limit", "unit", "after"},
     false,
     false,
     cmd_vms},
    {"events", "events [--since SEQ] [--limit N]", {"since", "limit"}, false, false, cmd_events},
    {"why", "why HOST VM", {"host", "vm"}, false, false, cmd_why},
    {"policy-show",
     "policy show [--scope S | --host H]",
     {"scope", "host"},
     false,
     false,
     cmd_policy_show},
    {"policy-set",
     "policy set --scope S --reason TEXT KEY=VALUE...",
     {"scope", "reason"},
     true,
     true,
     cmd_policy_set},
    {"policy-unset",
     "policy unset --scope S --reason TEXT KEY...",
     {"scope", "reason"},
     true,
     true,
     cmd_policy_unset},
    {"policy-delete",
     "policy delete --scope S --reason TEXT",
     {"scope", "reason"},
     false,
     true,
     cmd_policy_delete},
    {"policy-rollback",
     "policy rollback --scope S --to vN --reason TEXT",
     {"scope", "to", "reason"},
     false,
     true,
     cmd_policy_rollback},
    {"policy-wait", "policy wait --scope S", {"scope"}, false, false, cmd_policy_wait},
    {"policy-history",
     "policy history [--scope S] [--limit N]",
     {"scope", "limit"},
     false,
     false,
     cmd_policy_history},
};

static const struct command *
command_find(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

/* A reply the transport cannot carry becomes an error that says how to narrow it. */
static enum control_status
check_size(struct call *c, enum control_status st)
{
    size_t len = strlen(*c->body);

    if (len <= WIRE_BODY_MAX)
        return st;
    return fail(c, CONTROL_USAGE,
                "%s: the answer (%zu bytes) is larger than a reply can be (%d bytes): narrow "
                "it (--limit, --host, --scope)",
                c->cmd->name, len, WIRE_BODY_MAX);
}

enum control_status
control_handle(const struct control_context *cc,
               const struct wire_control_request *req,
               char **body)
{
    struct call c = {.cc = cc, .req = req, .body = body};
    enum control_status st;

    *body = NULL;
    c.cmd = command_find(req->command);
    if (!c.cmd) {
        *body =
            util_xstrdup("unknown command: the coordinator answers status, hosts, hosts-forget, "
                         "vms, events, policy-show, policy-set, policy-unset, policy-delete, "
                         "policy-rollback, policy-wait and policy-history");
        return CONTROL_USAGE;
    }
    st = parse_args(&c);
    if (st == CONTROL_OK && c.cmd->writes && cc->read_only)
        st = fail(&c, CONTROL_DENIED, "%s: this operator key is read-only (admin_read_dir)",
                  c.cmd->name);
    if (st == CONTROL_OK)
        st = c.cmd->run(&c);
    if (!*body)
        *body = util_xstrdup("");
    return check_size(&c, st);
}

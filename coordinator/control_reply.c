/*
 * control_reply.c - the parts every control command shares (control_reply.h): failures and
 * options, tables, JSON, rows, and the policy renderings several commands print.
 */
#define _GNU_SOURCE /* vasprintf, open_memstream */
#include "control_reply.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched.h"
#include "util.h"

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

/* Set the body to an error message and return status. */
enum control_status
fail(struct call *c, enum control_status status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    free(*c->body);
    *c->body = xvasprintf(fmt, ap);
    va_end(ap);
    return status;
}

enum control_status
store_failed(struct call *c, int rc, const char *err)
{
    return fail(c, CONTROL_INTERNAL, "%s: store: %s (%s)", c->cmd->name, err, strerror(-rc));
}

const char *
opt(const struct call *c, const char *name)
{
    for (size_t i = 0; i < OPTIONS_MAX && c->cmd->options[i]; i++) {
        if (strcmp(c->cmd->options[i], name) == 0)
            return c->opt[i];
    }
    return NULL;
}

/* ---- text: tables and formatting ---- */

FILE *
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
enum control_status
text_reply(struct call *c, struct text *t)
{
    if (fclose(t->f) != 0)
        util_oom();
    free(*c->body);
    *c->body = t->buf;
    return CONTROL_OK;
}

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

void
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

void
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

void
table_free(struct table *t)
{
    for (size_t i = 0; i < t->n_cells; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->n_cells = t->cap_cells = 0;
}

/* KiB as MiB with one decimal. */
const char *
fmt_mib(char *buf, size_t len, uint64_t kib)
{
    snprintf(buf, len, "%.1f", util_kib_to_mib(kib));
    return buf;
}

/* "3s ago", "4m ago", "2h ago", "5d ago". */
const char *
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
const char *
fmt_wall(char *buf, size_t len, uint64_t wall_ms)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "@%" PRIu64 "ms", wall_ms);
    return buf;
}

/* "v3", or "none" for version 0. */
const char *
fmt_version(char *buf, size_t len, uint64_t version)
{
    if (version)
        snprintf(buf, len, "v%" PRIu64, version);
    else
        snprintf(buf, len, "none");
    return buf;
}

const char *
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

json_t *
jcheck(json_t *v)
{
    if (!v)
        util_oom();
    return v;
}

json_t *
jobj(void)
{
    return jcheck(json_object());
}

json_t *
jarr(void)
{
    return jcheck(json_array());
}

json_t *
ju64(uint64_t v)
{
    return jcheck(json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v));
}

/* A string; bytes that are not UTF-8 (agents send names as they find them) become '?'. */
json_t *
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

void
jset(json_t *obj, const char *key, json_t *v)
{
    if (json_object_set_new(obj, key, jcheck(v)) < 0)
        util_oom();
}

void
jpush(json_t *arr, json_t *v)
{
    if (json_array_append_new(arr, jcheck(v)) < 0)
        util_oom();
}

/* Dump root (consumed) as the body. */
enum control_status
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
const char *
param_json_key(const struct config_key *param, char *buf, size_t len)
{
    size_t n = strlen(param->name);

    if (param->kind == CONFIG_KIND_MIB && n > 4 && strcmp(param->name + n - 4, "_mib") == 0)
        snprintf(buf, len, "%.*s_kib", (int)(n - 4), param->name);
    else
        snprintf(buf, len, "%s", param->name);
    return buf;
}

json_t *
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

bool
has_key(uint32_t keys, size_t i)
{
    return keys & (UINT32_C(1) << i);
}

/* The values of the keys in keys, as one JSON object. */
json_t *
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
json_t *
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

/* The values of the keys set, one "  key  value" line each, keys aligned. */
void
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
const char *
fmt_entry(char *buf, size_t len, const struct store_policy_entry *e)
{
    char when[64];

    snprintf(buf, len, "v%" PRIu64 " %s, by %s at %s%s%s", e->version, e->scope, e->author,
             fmt_wall(when, sizeof(when), e->created_at_ms), e->reason[0] ? ": " : "", e->reason);
    return buf;
}

/* The newest policy of scope into *e; *found says whether there is one. */
enum control_status
latest_policy(struct call *c, const char *scope, struct store_policy_entry *e, bool *found)
{
    char err[STORE_ERR_MAX] = "";
    int rc = store_policy_latest(c->cc->store, scope, e, err, sizeof(err));

    *found = rc == 0;
    if (rc < 0 && rc != -ENOENT)
        return store_failed(c, rc, err);
    return CONTROL_OK;
}

/* ---- arguments ---- */

/* A decimal count in [min, max]. */
int
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
enum control_status
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
enum control_status
scope_option(struct call *c, const char *text, struct scope *scope)
{
    if (scope_parse(text, scope) < 0)
        return fail(c, CONTROL_USAGE,
                    "%s: bad scope '%s': expected fleet, label:KEY=VALUE or host:ID", c->cmd->name,
                    text);
    return CONTROL_OK;
}

enum control_status
usage_error(struct call *c, const char *what, const char *arg)
{
    return fail(c, CONTROL_USAGE, "%s: %s '%s'\nusage: %s", c->cmd->name, what, arg, c->cmd->usage);
}

/* ---- rows: one model, two renderings ---- */

void
row_begin(struct rows *r)
{
    if (r->array)
        r->obj = jobj();
}

void
row_end(struct rows *r)
{
    if (r->array)
        jpush(r->array, r->obj);
    r->obj = NULL;
    r->count++;
}

/* A JSON member only (value consumed). */
void
put_json(struct rows *r, const char *key, json_t *value)
{
    if (r->obj)
        jset(r->obj, key, value);
    else
        json_decref(value);
}

/* A table cell only. */
void
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
void
put_str(struct rows *r, const char *key, const char *value)
{
    if (r->array)
        put_json(r, key, jstr(value));
    else
        put_cell(r, "%s", value[0] ? value : "-");
}

/* Memory: KiB in JSON (null when unknown), MiB or GiB in the table ("-"). */
void
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
enum control_status
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
void
put_age_ms(struct rows *r, const char *key, uint64_t age_ms)
{
    char a[32];

    if (r->array)
        put_json(r, key, ju64(age_ms));
    else
        put_cell(r, "%s", fmt_age(a, sizeof(a), age_ms, 0));
}

/* The age of a moment on the fleet's (monotonic) clock. */
void
put_age(struct rows *r, const char *key, uint64_t then_ms)
{
    put_age_ms(r, key, util_sub_sat(r->cc->now_ms, then_ms));
}

/* Render the listing: the JSON document under key, or the table (or none_text when empty). */
enum control_status
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

/*
 * control_reply.h - what every control command shares (inside memsched_control only): the
 * request being answered (struct call), its options, and the ways a reply is built: aligned
 * tables, JSON through jansson, and rows (one model rendered as either).
 *
 * The commands live by subject: control_fleet.c (status, hosts, vms), control_events.c (why,
 * events), control_policy.c (policy show, changes, wait, history); control.c holds the command
 * table and dispatches. Every reply is one new string in *call->body; out of memory aborts.
 */
#ifndef MEMSCHED_COORDINATOR_CONTROL_REPLY_H
#define MEMSCHED_COORDINATOR_CONTROL_REPLY_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config_table.h"
#include "control.h"
#include "fleet.h"
#include "policy.h"
#include "scope.h"
#include "store.h"

#define OPTIONS_MAX    5
#define TABLE_COLS_MAX 16
/* A page of hosts (hosts, policy show): the default keeps the reply far below its limit. */
#define HOSTS_LIMIT_DEFAULT 5000 /* ~1.5 MiB of JSON: far below the 4 MiB reply limit */
#define HOSTS_LIMIT_MAX     10000
#define ARRAY_SIZE(a)       (sizeof(a) / sizeof((a)[0]))

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

struct text {
    FILE *f;
    char *buf;
    size_t len;
};

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

/* ---- a call: its options, its failures ---- */

/* Set the body to an error message and return status. */
enum control_status fail(struct call *c, enum control_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum control_status store_failed(struct call *c, int rc, const char *err);
enum control_status usage_error(struct call *c, const char *what, const char *arg);
/* The value of option --name, or NULL when not given. */
const char *opt(const struct call *c, const char *name);
/* A decimal count in [min, max]. */
int parse_count(const char *text, uint64_t min, uint64_t max, uint64_t *out);
/* The value of a --NAME count option, or dflt when not given. */
enum control_status count_option(
    struct call *c, const char *name, uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out);
/* Parse a --scope value. */
enum control_status scope_option(struct call *c, const char *text, struct scope *scope);

/* ---- text: tables and formatting ---- */

FILE *text_open(struct text *t);
/* Close the stream and hand its text over as the body. */
enum control_status text_reply(struct call *c, struct text *t);
void table_add(struct table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void table_print(FILE *f, const struct table *t);
void table_free(struct table *t);
/* KiB as MiB with one decimal. */
const char *fmt_mib(char *buf, size_t len, uint64_t kib);
/* "3s ago", "4m ago", "2h ago", "5d ago". */
const char *fmt_age(char *buf, size_t len, uint64_t now_ms, uint64_t then_ms);
/* Wall-clock milliseconds as UTC: "2024-05-01 12:00:00Z". */
const char *fmt_wall(char *buf, size_t len, uint64_t wall_ms);
/* "v3", or "none" for version 0. */
const char *fmt_version(char *buf, size_t len, uint64_t version);
const char *vm_state_name(uint8_t state);

/* ---- JSON (jansson); each aborts on out of memory ---- */

json_t *jcheck(json_t *v);
json_t *jobj(void);
json_t *jarr(void);
json_t *ju64(uint64_t v);
/* A string; bytes that are not UTF-8 (agents send names as they find them) become '?'. */
json_t *jstr(const char *s);
void jset(json_t *obj, const char *key, json_t *v);
void jpush(json_t *arr, json_t *v);
/* Dump root (consumed) as the body. */
enum control_status json_reply(struct call *c, json_t *root);

/* ---- policies ---- */

/* The JSON key of a parameter: MiB at the edge, KiB in JSON ("vm_floor_mib" -> "vm_floor_kib"). */
const char *param_json_key(const struct config_key *param, char *buf, size_t len);
json_t *param_json_value(const struct policy *p, const struct config_key *param);
bool has_key(uint32_t keys, size_t i);
/* The values of the keys in keys, as one JSON object. */
json_t *policy_json(const struct policy *p, uint32_t keys);
/* version, scope, action, author, reason, created_at_ms and the keys one stored row sets. */
json_t *entry_json(const struct store_policy_entry *e);
/* The values of the keys set, one "  key  value" line each, keys aligned. */
void print_policy_values(FILE *f, const struct policy *p, uint32_t keys);
/* "v3 fleet, by alice at 2024-05-01 12:00:00Z: raise floors" */
const char *fmt_entry(char *buf, size_t len, const struct store_policy_entry *e);
/* The newest policy of scope into *e; *found says whether there is one. */
enum control_status
latest_policy(struct call *c, const char *scope, struct store_policy_entry *e, bool *found);

/* ---- rows ---- */

void row_begin(struct rows *r);
void row_end(struct rows *r);
/* A JSON member only (value consumed). */
void put_json(struct rows *r, const char *key, json_t *value);
/* A table cell only. */
void put_cell(struct rows *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A string, both ways ("-" in the table when empty). */
void put_str(struct rows *r, const char *key, const char *value);
/* Memory: KiB in JSON (null when unknown), MiB or GiB in the table ("-"). */
void put_kib(struct rows *r, const char *key, bool known, uint64_t kib);
/* --unit MiB|GiB: the table's memory unit, and its columns' headers ("TOTAL GiB") in names. */
enum control_status unit_option(struct call *c,
                                struct rows *r,
                                const struct column *cols,
                                struct column *out,
                                char (*names)[32]);
/* An age: milliseconds in JSON, "3s ago" in the table. */
void put_age_ms(struct rows *r, const char *key, uint64_t age_ms);
/* The age of a moment on the fleet's (monotonic) clock. */
void put_age(struct rows *r, const char *key, uint64_t then_ms);
/* Which page of a listing the rows are: how many there are in all, the cursor of the next page
 * (NULL: this is the last), and what to say when rows were left out with no next page. */
struct page {
    const char *noun; /* "hosts" */
    size_t total;
    const char *next;
    const char *cut_hint;
};

/* Render the listing: the JSON document with the rows under key (and with a page, "total" and
 * "next_after"), or the table (none_text when empty) and a line on what the page left out. */
enum control_status rows_reply(struct call *c,
                               struct rows *r,
                               const char *key,
                               const char *none_text,
                               const struct page *page);

/* ---- the commands (control.c's table runs them) ---- */

/* control_fleet.c */
enum control_status cmd_status(struct call *c);
enum control_status cmd_hosts(struct call *c);
enum control_status cmd_hosts_forget(struct call *c);
enum control_status cmd_vms(struct call *c);
/* One VM's row, as `vms` lists it (why shows it too). */
void vm_put(struct rows *r, const struct fleet_host_info *host, const struct fleet_vm *vm);

/* control_events.c */
enum control_status cmd_why(struct call *c);
enum control_status cmd_events(struct call *c);
enum control_status cmd_history(struct call *c);

/* control_policy.c */
enum control_status cmd_policy_show(struct call *c);
enum control_status cmd_policy_set(struct call *c);
enum control_status cmd_policy_unset(struct call *c);
enum control_status cmd_policy_delete(struct call *c);
enum control_status cmd_policy_rollback(struct call *c);
enum control_status cmd_policy_wait(struct call *c);
enum control_status cmd_policy_history(struct call *c);

#endif /* MEMSCHED_COORDINATOR_CONTROL_REPLY_H */

/*
 * config_table.h - one engine for every table of keys bound to a struct: the policy's
 * parameters, the agent's keys, the coordinator's settings.
 *
 * A table is an array of rows (name, kind, offset, default, bounds, help). The engine fills a
 * struct with the defaults, sets one key from its text form (parsing, bounds, and no change on
 * failure), formats a value back in the same text form (so set(get(x)) == x), checks every
 * field against its bounds, and compares two structs field by field. Printing a whole table as
 * a config file is config_print() in config.h: this part does no I/O and links nothing, so the
 * pure core (policy.c) can use it.
 *
 * Values have an inside and an edge form. Defaults and bounds are written in edge units (what
 * a config file says); CONFIG_KIND_MIB is the one kind whose units differ (KiB inside, whole
 * MiB at the edge). Numbers are plain decimals: digits only, no sign, no suffix.
 */
#ifndef MEMSCHED_COMMON_CONFIG_TABLE_H
#define MEMSCHED_COMMON_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h" /* UTIL_KIB_PER_MIB: KiB inside, MiB outside */

enum config_kind {
    CONFIG_KIND_STRING, /* char[size]; bounds are the length (max 0: what the field holds) */
    CONFIG_KIND_BOOL,   /* bool: true/false, yes/no, on/off, 1/0 (any case) */
    CONFIG_KIND_U64,    /* uint64_t, same unit inside and out (the name carries it) */
    CONFIG_KIND_U32,    /* uint32_t, same unit inside and out */
    CONFIG_KIND_MIB,    /* uint64_t KiB inside, whole MiB outside */
    CONFIG_KIND_ENUM,   /* an int-sized enum; names[value] outside */
};

/* One row. Numbers, booleans (0/1) and enums have their default and inclusive bounds in
 * default_value/min_value/max_value (edge units); strings their default in default_text and
 * their length bounds in min_value/max_value. */
struct config_key {
    const char *name;
    enum config_kind kind;
    size_t offset;
    size_t size; /* STRING: the field's size, NUL included */
    uint64_t default_value;
    const char *default_text;
    uint64_t min_value;
    uint64_t max_value;
    const char *const *names; /* ENUM: the edge names, indexed by value, min..max */
    const char *help;
};

/* A table: its rows and the word its messages start with ("policy" gives "policy: ..."; NULL
 * for none). */
struct config_table {
    const struct config_key *keys;
    size_t n_keys;
    const char *what;
};

/* The row named name, or NULL. */
const struct config_key *config_key_find(const struct config_table *table, const char *name);

/* Write every row's default into obj (other bytes are left as they are). */
void config_defaults(const struct config_table *table, void *obj);

/* Parse value (edge form) into the key named name. Bounds of that key are checked here; rules
 * between keys are the caller's. Returns 0, -ENOENT for an unknown key or -EINVAL for a bad
 * value, with err saying which; obj is unchanged on failure. */
int config_set(const struct config_table *table,
               void *obj,
               const char *name,
               const char *value,
               char *err,
               size_t err_len);

/* The same for a row already found. */
int config_set_key(const struct config_table *table,
                   const struct config_key *key,
                   void *obj,
                   const char *value,
                   char *err,
                   size_t err_len);

/* The field's value in edge form ("200", "true", "usable"; a MiB field that is not whole MiB
 * prints as "N KiB", which set refuses). */
void config_format(const struct config_key *key, const void *obj, char *buf, size_t buf_len);

/* The row's default in edge form. */
void config_format_default(const struct config_key *key, char *buf, size_t buf_len);

/* 0 when every field is within its row's bounds (MiB fields: whole MiB too); otherwise -EINVAL
 * with err naming the first field outside, its value and the bounds. */
int
config_check_bounds(const struct config_table *table, const void *obj, char *err, size_t err_len);

/* True when a and b hold the same value in every field of the table (padding and bytes
 * outside the table do not count). */
bool config_equal(const struct config_table *table, const void *a, const void *b);

/* Copy the field of one row from src to dst (objects of the table's struct). */
void config_copy_key(const struct config_key *key, void *dst, const void *src);

/* The one number parser: a plain decimal (digits only, no sign, no suffix, no overflow).
 * Returns 0 or -EINVAL. */
int config_parse_u64(const char *text, uint64_t *out);

/* true/false, yes/no, on/off, 1/0, in any case. Returns 0 or -EINVAL. */
int config_parse_bool(const char *text, bool *out);

#endif /* MEMSCHED_COMMON_CONFIG_TABLE_H */

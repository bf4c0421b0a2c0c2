/*
 * config_table.c - set, format, defaults, bounds and equality over a table of keys.
 *
 * Fields are read and written through memcpy at the row's offset with the kind's own type, so
 * the engine never aliases a struct through a pointer of another type. A set parses into a
 * local value and checks it before it writes anything: a failed set leaves obj as it was.
 */
#include "config_table.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The field's value as stored (KiB for MIB, the enum's number, 0/1). */
static uint64_t
load_raw(const struct config_key *key, const void *obj)
{
    const char *field = (const char *)obj + key->offset;

    switch (key->kind) {
    case CONFIG_KIND_BOOL: {
        bool v;
        memcpy(&v, field, sizeof(v));
        return v;
    }
    case CONFIG_KIND_U64:
    case CONFIG_KIND_MIB: {
        uint64_t v;
        memcpy(&v, field, sizeof(v));
        return v;
    }
    case CONFIG_KIND_U32: {
        uint32_t v;
        memcpy(&v, field, sizeof(v));
        return v;
    }
    case CONFIG_KIND_ENUM: {
        unsigned int v;
        memcpy(&v, field, sizeof(v));
        return v;
    }
    case CONFIG_KIND_STRING:
        break;
    }
    return 0;
}

/* Store an edge value (already checked) into a number, boolean or enum field. */
static void
store_value(const struct config_key *key, void *obj, uint64_t value)
{
    char *field = (char *)obj + key->offset;

    switch (key->kind) {
    case CONFIG_KIND_BOOL: {
        bool v = value != 0;
        memcpy(field, &v, sizeof(v));
        break;
    }
    case CONFIG_KIND_U64:
        memcpy(field, &value, sizeof(value));
        break;
    case CONFIG_KIND_MIB: {
        uint64_t kib = value * UTIL_KIB_PER_MIB;
        memcpy(field, &kib, sizeof(kib));
        break;
    }
    case CONFIG_KIND_U32: {
        uint32_t v = (uint32_t)value;
        memcpy(field, &v, sizeof(v));
        break;
    }
    case CONFIG_KIND_ENUM: {
        unsigned int v = (unsigned int)value;
        memcpy(field, &v, sizeof(v));
        break;
    }
    case CONFIG_KIND_STRING:
        break;
    }
}

/* Callers checked the length (set) or wrote the table (defaults): the bound is a backstop. */
static void
store_text(const struct config_key *key, void *obj, const char *text)
{
    snprintf((char *)obj + key->offset, key->size, "%s", text);
}

/* A string row's longest value: max_value, or what the field holds when that is 0 or more. */
static uint64_t
string_max(const struct config_key *key)
{
    uint64_t room = key->size - 1;
    return key->max_value && key->max_value < room ? key->max_value : room;
}

static const char *
prefix(const struct config_table *table)
{
    return table->what ? table->what : "";
}

static const char *
separator(const struct config_table *table)
{
    return table->what ? ": " : "";
}

const struct config_key *
config_key_find(const struct config_table *table, const char *name)
{
    for (size_t i = 0; i < table->n_keys; i++) {
        if (strcmp(table->keys[i].name, name) == 0)
            return &table->keys[i];
    }
    return NULL;
}

void
config_defaults(const struct config_table *table, void *obj)
{
    for (size_t i = 0; i < table->n_keys; i++) {
        const struct config_key *key = &table->keys[i];
        if (key->kind == CONFIG_KIND_STRING)
            store_text(key, obj, key->default_text ? key->default_text : "");
        else
            store_value(key, obj, key->default_value);
    }
}

int
config_parse_u64(const char *text, uint64_t *out)
{
    uint64_t v = 0;

    if (*text == '\0')
        return -EINVAL;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        unsigned digit = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -EINVAL;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

int
config_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* "a, b or c": the names an enum row accepts. */
static void
format_names(const struct config_key *key, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (uint64_t i = key->min_value; i <= key->max_value && used < len; i++) {
        const char *sep = i == key->min_value ? "" : i == key->max_value ? " or " : ", ";
        int n = snprintf(buf + used, len - used, "%s%s", sep, key->names[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

static int
parse_enum(const struct config_key *key, const char *text, uint64_t *out)
{
    for (uint64_t i = key->min_value; i <= key->max_value; i++) {
        if (strcmp(text, key->names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -EINVAL;
}

static int
set_string(const struct config_table *table,
           const struct config_key *key,
           void *obj,
           const char *value,
           char *err,
           size_t err_len)
{
    size_t len = strlen(value);
    uint64_t max = string_max(key);

    if (len < key->min_value || len > max) {
        if (key->min_value)
            snprintf(err, err_len, "%s%s%s: must be %" PRIu64 " to %" PRIu64 " characters",
                     prefix(table), separator(table), key->name, key->min_value, max);
        else
            snprintf(err, err_len, "%s%s%s: longer than %" PRIu64 " characters", prefix(table),
                     separator(table), key->name, max);
        return -EINVAL;
    }
    store_text(key, obj, value);
    return 0;
}

int
config_set_key(const struct config_table *table,
               const struct config_key *key,
               void *obj,
               const char *value,
               char *err,
               size_t err_len)
{
    char names[128];
    uint64_t v = 0;
    int rc;

    switch (key->kind) {
    case CONFIG_KIND_STRING:
        return set_string(table, key, obj, value, err, err_len);
    case CONFIG_KIND_BOOL: {
        bool b = false;
        rc = config_parse_bool(value, &b);
        v = b;
        if (rc < 0)
            snprintf(err, err_len, "%s%s%s='%s' is not a valid boolean", prefix(table),
                     separator(table), key->name, value);
        break;
    }
    case CONFIG_KIND_ENUM:
        rc = parse_enum(key, value, &v);
        if (rc < 0) {
            format_names(key, names, sizeof(names));
            snprintf(err, err_len, "%s%s%s='%s' must be %s", prefix(table), separator(table),
                     key->name, value, names);
        }
        break;
    default:
        rc = config_parse_u64(value, &v);
        if (rc < 0)
            snprintf(err, err_len, "%s%s%s='%s' is not a valid whole number", prefix(table),
                     separator(table), key->name, value);
        break;
    }
    if (rc < 0)
        return rc;
    if (v < key->min_value || v > key->max_value ||
        (key->kind == CONFIG_KIND_MIB && v > UINT64_MAX / UTIL_KIB_PER_MIB)) {
        snprintf(err, err_len, "%s%s%s='%s' out of range [%" PRIu64 ", %" PRIu64 "]", prefix(table),
                 separator(table), key->name, value, key->min_value, key->max_value);
        return -EINVAL;
    }
    store_value(key, obj, v);
    return 0;
}

int
config_set(const struct config_table *table,
           void *obj,
           const char *name,
           const char *value,
           char *err,
           size_t err_len)
{
    const struct config_key *key = config_key_find(table, name);

    if (!key) {
        snprintf(err, err_len, "%s%sunknown %s '%s'", prefix(table), separator(table),
                 table->what ? "parameter" : "key", name);
        return -ENOENT;
    }
    return config_set_key(table, key, obj, value, err, err_len);
}

/* Format an edge-unit or stored value of a non-string row. */
static void
format_value(const struct config_key *key, uint64_t raw, char *buf, size_t len)
{
    switch (key->kind) {
    case CONFIG_KIND_BOOL:
        snprintf(buf, len, "%s", raw ? "true" : "false");
        break;
    case CONFIG_KIND_ENUM:
        if (raw >= key->min_value && raw <= key->max_value)
            snprintf(buf, len, "%s", key->names[raw]);
        else
            snprintf(buf, len, "%" PRIu64, raw);
        break;
    case CONFIG_KIND_MIB:
        /* Whole MiB, or the KiB when it is not (the edges speak MiB, so set refuses it). */
        if (raw % UTIL_KIB_PER_MIB == 0)
            snprintf(buf, len, "%" PRIu64, raw / UTIL_KIB_PER_MIB);
        else
            snprintf(buf, len, "%" PRIu64 " KiB", raw);
        break;
    default:
        snprintf(buf, len, "%" PRIu64, raw);
        break;
    }
}

void
config_format(const struct config_key *key, const void *obj, char *buf, size_t buf_len)
{
    if (key->kind == CONFIG_KIND_STRING)
        snprintf(buf, buf_len, "%s", (const char *)obj + key->offset);
    else
        format_value(key, load_raw(key, obj), buf, buf_len);
}

void
config_format_default(const struct config_key *key, char *buf, size_t buf_len)
{
    if (key->kind == CONFIG_KIND_STRING)
        snprintf(buf, buf_len, "%s", key->default_text ? key->default_text : "");
    else if (key->kind == CONFIG_KIND_MIB)
        format_value(key, key->default_value * UTIL_KIB_PER_MIB, buf, buf_len);
    else
        format_value(key, key->default_value, buf, buf_len);
}

static bool
in_bounds(const struct config_key *key, const void *obj)
{
    if (key->kind == CONFIG_KIND_STRING) {
        const char *field = (const char *)obj + key->offset;
        size_t len = strnlen(field, key->size);
        return len < key->size && len >= key->min_value && len <= string_max(key);
    }
    uint64_t raw = load_raw(key, obj);
    if (key->kind == CONFIG_KIND_MIB)
        return raw % UTIL_KIB_PER_MIB == 0 && raw >= key->min_value * UTIL_KIB_PER_MIB &&
               raw <= key->max_value * UTIL_KIB_PER_MIB;
    return raw >= key->min_value && raw <= key->max_value;
}

int
config_check_bounds(const struct config_table *table, const void *obj, char *err, size_t err_len)
{
    char value[64];

    for (size_t i = 0; i < table->n_keys; i++) {
        const struct config_key *key = &table->keys[i];
        if (in_bounds(key, obj))
            continue;
        if (key->kind == CONFIG_KIND_STRING) {
            snprintf(err, err_len, "%s%s%s: length out of range [%" PRIu64 ", %" PRIu64 "]",
                     prefix(table), separator(table), key->name, key->min_value, string_max(key));
            return -EINVAL;
        }
        config_format(key, obj, value, sizeof(value));
        snprintf(err, err_len, "%s%s%s=%s out of range [%" PRIu64 ", %" PRIu64 "]%s", prefix(table),
                 separator(table), key->name, value, key->min_value, key->max_value,
                 key->kind == CONFIG_KIND_MIB ? " (whole MiB)" : "");
        return -EINVAL;
    }
    return 0;
}

bool
config_equal(const struct config_table *table, const void *a, const void *b)
{
    for (size_t i = 0; i < table->n_keys; i++) {
        const struct config_key *key = &table->keys[i];
        if (key->kind == CONFIG_KIND_STRING) {
            if (strncmp((const char *)a + key->offset, (const char *)b + key->offset, key->size))
                return false;
        } else if (load_raw(key, a) != load_raw(key, b)) {
            return false;
        }
    }
    return true;
}

/* Bytes of the field a row describes. */
static size_t
field_size(const struct config_key *key)
{
    switch (key->kind) {
    case CONFIG_KIND_BOOL:
        return sizeof(bool);
    case CONFIG_KIND_U64:
    case CONFIG_KIND_MIB:
        return sizeof(uint64_t);
    case CONFIG_KIND_U32:
        return sizeof(uint32_t);
    case CONFIG_KIND_ENUM:
        return sizeof(unsigned int);
    case CONFIG_KIND_STRING:
        return key->size;
    }
    return 0;
}

void
config_copy_key(const struct config_key *key, void *dst, const void *src)
{
    memcpy((char *)dst + key->offset, (const char *)src + key->offset, field_size(key));
}

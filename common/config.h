/*
 * config.h - reading "key = value" files: the line format shared by every memsched config.
 *
 * A line is blank, a comment (# ...), or `key = value` (spaces around either side are dropped,
 * the value runs to the end of the line; quotes are not special). What the keys mean belongs to
 * the caller's table: config_parse_* hands each pair to a setter and stops at the first error,
 * which it reports as "FILE:LINE: message". Tables of keys (config_table.h) plug in through
 * config_bound_set, and config_print writes a table back in this format.
 */
#ifndef MEMSCHED_COMMON_CONFIG_H
#define MEMSCHED_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config_table.h"

#define CONFIG_ERR_MAX 512

/* Called for each pair; returns 0, or a negative errno with err set (no file or line needed). */
typedef int (*config_setter)(
    void *ctx, const char *key, const char *value, char *err, size_t err_len);

/* Parse text (name is used in messages). Returns 0 or the first error (-EINVAL for syntax). */
int config_parse_text(
    const char *text, const char *name, config_setter set, void *ctx, char *err, size_t err_len);

/* Read and parse the file at path. Returns 0, the first error, or -errno if it cannot be read. */
int config_parse_file(const char *path, config_setter set, void *ctx, char *err, size_t err_len);

/* Write every key of table with obj's value as a file this parser reads back: a blank line, the
 * help as a comment (with the default when with_defaults), then `key = value`. */
void config_print(const struct config_table *table, const void *obj, bool with_defaults, FILE *out);

/* A table bound to a struct, for config_parse_*: pass config_bound_set as the setter and a
 * struct config_binding as its ctx. */
struct config_binding {
    const struct config_table *table;
    void *obj;
};

int config_bound_set(void *ctx, const char *key, const char *value, char *err, size_t err_len);

#endif /* MEMSCHED_COMMON_CONFIG_H */

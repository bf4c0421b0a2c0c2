/*
 * config.h - reading "key = value" files: the line format shared by every memsched config.
 *
 * A line is blank, a comment (# ...), or `key = value` (spaces around either side are dropped,
 * the value runs to the end of the line; quotes are not special). What the keys mean belongs to
 * the caller's table: config_parse_* hands each pair to a setter and stops at the first error,
 * which it reports as "FILE:LINE: message".
 */
#ifndef MEMSCHED_COMMON_CONFIG_H
#define MEMSCHED_COMMON_CONFIG_H

#include <stddef.h>

#define CONFIG_ERR_MAX 512

/* Called for each pair; returns 0, or a negative errno with err set (no file or line needed). */
typedef int (*config_setter)(
    void *ctx, const char *key, const char *value, char *err, size_t err_len);

/* Parse text (name is used in messages). Returns 0 or the first error (-EINVAL for syntax). */
int config_parse_text(
    const char *text, const char *name, config_setter set, void *ctx, char *err, size_t err_len);

/* Read and parse the file at path. Returns 0, the first error, or -errno if it cannot be read. */
int config_parse_file(const char *path, config_setter set, void *ctx, char *err, size_t err_len);

#endif /* MEMSCHED_COMMON_CONFIG_H */

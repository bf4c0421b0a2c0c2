/*
 * config.c - the "key = value" line format, and a table of keys printed in it.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define LINE_MAX_LEN 4096
#define FILE_MAX_LEN (1024 * 1024) /* a config file is small; refuse to slurp anything else */

static char *
trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int
parse_line(char *line,
           const char *name,
           unsigned lineno,
           config_setter set,
           void *ctx,
           char *err,
           size_t err_len)
{
    char msg[CONFIG_ERR_MAX];
    char *text = trim(line);

    if (*text == '\0' || *text == '#')
        return 0;
    char *eq = strchr(text, '=');
    if (!eq) {
        snprintf(err, err_len, "%s:%u: expected 'key = value', got '%.64s'", name, lineno, text);
        return -EINVAL;
    }
    *eq = '\0';
    char *key = trim(text);
    char *value = trim(eq + 1);
    if (*key == '\0') {
        snprintf(err, err_len, "%s:%u: missing key before '='", name, lineno);
        return -EINVAL;
    }
    msg[0] = '\0';
    int rc = set(ctx, key, value, msg, sizeof(msg));
    if (rc < 0)
        snprintf(err, err_len, "%s:%u: %s", name, lineno, msg);
    return rc;
}

int
config_parse_text(
    const char *text, const char *name, config_setter set, void *ctx, char *err, size_t err_len)
{
    char line[LINE_MAX_LEN];
    unsigned lineno = 0;

    while (*text) {
        size_t len = strcspn(text, "\n");
        lineno++;
        if (len >= sizeof(line)) {
            snprintf(err, err_len, "%s:%u: line longer than %d bytes", name, lineno,
                     LINE_MAX_LEN - 1);
            return -EINVAL;
        }
        memcpy(line, text, len);
        line[len] = '\0';
        int rc = parse_line(line, name, lineno, set, ctx, err, err_len);
        if (rc < 0)
            return rc;
        text += len + (text[len] == '\n');
    }
    return 0;
}

int
config_parse_file(const char *path, config_setter set, void *ctx, char *err, size_t err_len)
{
    char *text = NULL;
    size_t len = 0;
    int rc = util_read_file(path, FILE_MAX_LEN, &text, &len, err, err_len);

    if (rc < 0)
        return rc;
    if (strlen(text) != len) {
        rc = -EINVAL;
        snprintf(err, err_len, "%s: contains a NUL byte", path);
    } else {
        rc = config_parse_text(text, path, set, ctx, err, err_len);
    }
    free(text);
    return rc;
}

void
config_print(const struct config_table *table, const void *obj, bool with_defaults, FILE *out)
{
    char value[4096], def[256];

    for (size_t i = 0; i < table->n_keys; i++) {
        const struct config_key *key = &table->keys[i];
        config_format(key, obj, value, sizeof(value));
        if (with_defaults) {
            config_format_default(key, def, sizeof(def));
            fprintf(out, "\n# %s (default %s)\n", key->help, def);
        } else {
            fprintf(out, "\n# %s\n", key->help);
        }
        fprintf(out, "%s = %s\n", key->name, value);
    }
}

int
config_bound_set(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    const struct config_binding *b = ctx;

    return config_set(b->table, b->obj, key, value, err, err_len);
}

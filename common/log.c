/*
 * log.c - leveled key=value lines on stderr, and the rate limit for recurring failures.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define BACKOFF_FIRST_MS 1000

static enum log_level max_level = LOG_LEVEL_INFO;

const char *const log_level_names[LOG_LEVEL_DEBUG + 1] = {
    [LOG_LEVEL_ERR] = "err",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

void
log_set_level(enum log_level level)
{
    max_level = level;
}

int
log_parse_level(const char *name, enum log_level *level)
{
    for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
        if (strcmp(name, log_level_names[i]) == 0) {
            *level = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *
log_level_name(enum log_level level)
{
    if ((unsigned)level < sizeof(log_level_names) / sizeof(log_level_names[0]))
        return log_level_names[level];
    return "invalid";
}

bool
log_enabled(enum log_level level)
{
    return level <= max_level;
}

void
log_write(enum log_level level, const char *module, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line keeps lines whole when several threads log. */
    fprintf(stderr, "%s %s: %s\n", log_level_names[level], module, line);
}

bool
log_limit_failure(struct log_limit *limit, uint64_t now_ms, uint64_t max_ms)
{
    limit->failures++;
    if (!limit->failing) {
        limit->failing = true;
        limit->backoff_ms = BACKOFF_FIRST_MS;
        limit->next_ms = now_ms + limit->backoff_ms;
        return true;
    }
    if (now_ms < limit->next_ms)
        return false;
    limit->backoff_ms = limit->backoff_ms * 2 > max_ms ? max_ms : limit->backoff_ms * 2;
    limit->next_ms = now_ms + limit->backoff_ms;
    return true;
}

uint64_t
log_limit_success(struct log_limit *limit)
{
    uint64_t failures = limit->failing ? limit->failures : 0;

    limit->failing = false;
    limit->failures = 0;
    limit->backoff_ms = 0;
    return failures;
}

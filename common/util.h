/*
 * util.h - the few helpers every module needs: allocation that aborts on out-of-memory (the
 * daemons are restarted by systemd; STYLE.md), saturating 64-bit arithmetic, a string hash,
 * clocks in ms, the one way to write an error message for the caller, and a whole file read
 * into memory (util.c, the only part that is not inline).
 */
#ifndef MEMSCHED_COMMON_UTIL_H
#define MEMSCHED_COMMON_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline void *
util_oom(void)
{
    fputs("memsched: out of memory\n", stderr);
    abort();
}

static inline void *
util_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    return p ? p : util_oom();
}

static inline void *
util_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : util_oom();
}

static inline void *
util_xrealloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return util_oom();
    size_t bytes = n * size;
    p = realloc(p, bytes ? bytes : 1);
    return p ? p : util_oom();
}

static inline char *
util_xstrdup(const char *s)
{
    char *p = strdup(s);
    return p ? p : util_oom();
}

static inline char *
util_xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    return p ? p : util_oom();
}

static inline uint64_t
util_min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static inline uint64_t
util_max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* a - b, or 0 when b is larger. */
static inline uint64_t
util_sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* a + b, or UINT64_MAX when that would overflow. */
static inline uint64_t
util_add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

#define UTIL_KIB_PER_MIB 1024u /* every memory field is KiB; people read MiB */

/* KiB as MiB, for tables and log lines. */
static inline double
util_kib_to_mib(uint64_t kib)
{
    return (double)kib / UTIL_KIB_PER_MIB;
}

#define UTIL_HASH_SEED UINT64_C(14695981039346656037) /* FNV-1a's offset basis */

/* One FNV-1a step: fold value into hash. */
static inline uint64_t
util_hash_mix(uint64_t hash, uint64_t value)
{
    return (hash ^ value) * UINT64_C(1099511628211);
}

/* FNV-1a of a NUL-terminated string: the hash of every id-keyed table. */
static inline uint64_t
util_hash_str(const char *s)
{
    uint64_t h = UTIL_HASH_SEED;
    for (; *s; s++)
        h = util_hash_mix(h, (unsigned char)*s);
    return h;
}

/* Milliseconds on clock id: CLOCK_MONOTONIC inside, CLOCK_REALTIME for what people read. */
static inline uint64_t
util_clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes the message into err (unless err_len is 0) and returns rc, so that a failure reads
 * `return util_fail(-EINVAL, err, err_len, "...", ...);`. */
__attribute__((format(printf, 4, 5))) static inline int
util_fail(int rc, char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;

    if (err && err_len > 0) {
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* The whole of the file at path, at most max_bytes of it, into a new NUL-terminated buffer
 * (*text, the caller's to free; *len excludes the NUL: a file may hold NUL bytes). Returns 0,
 * or -errno with err set ("PATH: why"): the file cannot be opened, a read fails (-EIO), or it is
 * larger than max_bytes (-EFBIG). On failure *text and *len are left alone. In util.c
 * (memsched_util): unlike the rest of this header it needs linking. */
int util_read_file(
    const char *path, size_t max_bytes, char **text, size_t *len, char *err, size_t err_len);

#endif /* MEMSCHED_COMMON_UTIL_H */

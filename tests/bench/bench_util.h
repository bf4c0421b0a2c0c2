/*
 * bench_util.h - what every benchmark needs: a monotonic clock in ns, the process's memory, a
 * seeded xorshift generator. Header-only; benchmarks print numbers and assert none.
 */
#ifndef MEMSCHED_BENCH_UTIL_H
#define MEMSCHED_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The process's CPU time (user + system), ns. */
static inline uint64_t
bench_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* calloc that ends the benchmark when memory runs out (n = 0 still gives a block). */
static inline void *
bench_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    if (!p) {
        fputs("bench: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* qsort's comparison of two uint64_t. */
static inline int
bench_compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return (x > y) - (x < y);
}

/* The peak resident set so far (getrusage), MiB. */
static inline double
bench_peak_rss_mib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* The resident set now (/proc/self/statm), MiB; 0 when unreadable. */
static inline double
bench_rss_mib(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    int n = f ? fscanf(f, "%lu %lu", &size, &resident) : 0;

    if (f)
        fclose(f);
    return n == 2 ? resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0) : 0;
}

/* xorshift64: a seeded, repeatable stream (never seed with 0). */
static inline uint64_t
bench_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#endif /* MEMSCHED_BENCH_UTIL_H */

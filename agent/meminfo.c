/*
 * meminfo.c - MemAvailable, or free + buffers + cached - shmem, from /proc/meminfo.
 *
 * The file is one "Name:   value kB" per line; sscanf takes each line's name and number.
 */
#include "meminfo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum field { F_AVAILABLE, F_FREE, F_BUFFERS, F_CACHED, F_SHMEM, F_COUNT };

static const char *const names[F_COUNT] = {"MemAvailable", "MemFree", "Buffers", "Cached", "Shmem"};

int
meminfo_available_kib(const char *path, uint64_t *available_kib)
{
    unsigned long long value[F_COUNT] = {0};
    bool seen[F_COUNT] = {false};
    char line[256], name[64];
    unsigned long long v;
    FILE *f = fopen(path, "re");

    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%63[^:]: %llu", name, &v) != 2)
            continue;
        for (int i = 0; i < F_COUNT; i++) {
            if (strcmp(name, names[i]) == 0) {
                value[i] = v;
                seen[i] = true;
            }
        }
    }
    fclose(f);
    if (seen[F_AVAILABLE]) {
        *available_kib = value[F_AVAILABLE];
        return 0;
    }
    if (!seen[F_FREE] || !seen[F_BUFFERS] || !seen[F_CACHED] || !seen[F_SHMEM])
        return -ENODATA;
    unsigned long long sum = value[F_FREE] + value[F_BUFFERS] + value[F_CACHED];
    *available_kib = sum > value[F_SHMEM] ? sum - value[F_SHMEM] : 0;
    return 0;
}

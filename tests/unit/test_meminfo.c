/*
 * test_meminfo.c - the host's available memory from /proc/meminfo (agent/meminfo.c): the
 * kernel's MemAvailable, else free + buffers + cached - shmem; shared memory (guest RAM in
 * memfd or /dev/shm) is never counted as free.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "meminfo.h"

static char dir[] = "/tmp/memsched-meminfo-XXXXXX";

static const char *
write_file(const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/meminfo", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* 8 GiB of guest RAM in shared memory: the old sum (free + buffers + cached) called it free. */
static void
test_shmem_is_not_available(void **state)
{
    uint64_t kib = 0;
    (void)state;

    const char *path = write_file("MemTotal:       16384000 kB\n"
                                  "MemFree:         1000000 kB\n"
                                  "MemAvailable:    1500000 kB\n"
                                  "Buffers:          100000 kB\n"
                                  "Cached:          9000000 kB\n"
                                  "Shmem:           8388608 kB\n");
    assert_int_equal(meminfo_available_kib(path, &kib), 0);
    assert_int_equal(kib, 1500000);

    /* No MemAvailable (an old kernel): shmem is taken off the sum. */
    path = write_file("MemTotal:       16384000 kB\nMemFree:         1000000 kB\n"
                      "Buffers:          100000 kB\nCached:          9000000 kB\n"
                      "Shmem:           8388608 kB\n");
    assert_int_equal(meminfo_available_kib(path, &kib), 0);
    assert_int_equal(kib, 1000000 + 100000 + 9000000 - 8388608);
}

static void
test_missing_fields_and_file(void **state)
{
    uint64_t kib = 42;
    (void)state;

    const char *path = write_file("MemTotal: 100 kB\nMemFree: 50 kB\n");
    assert_int_equal(meminfo_available_kib(path, &kib), -ENODATA);
    assert_int_equal(kib, 42);
    assert_int_equal(meminfo_available_kib("/nonexistent/meminfo", &kib), -ENOENT);
    /* This machine's own file has it (Linux >= 3.14). */
    assert_int_equal(meminfo_available_kib(MEMINFO_PATH, &kib), 0);
}

static int
setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    char path[128];
    (void)state;
    snprintf(path, sizeof(path), "%s/meminfo", dir);
    unlink(path);
    return rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shmem_is_not_available),
        cmocka_unit_test(test_missing_fields_and_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

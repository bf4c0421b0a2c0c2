/*
 * test_util.c - util_read_file (common/util.c) on files in a temp dir: the whole text with its
 * length (NUL bytes counted, an empty file empty), a file of exactly the bound taken and one byte
 * more refused before reading, a missing file and a directory errors that name the path, and
 * files that do not say their size (a FIFO, a pipe) read whole across more than one buffer or
 * refused once past the bound. A failure leaves the out-parameters alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define BIG 10000 /* more than the first buffer when the size is unknown (4 KiB) */

struct tmp {
    char dir[64];
    char path[128];
};

static void
tmp_make(struct tmp *t, const char *name)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/test_util-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
}

static void
tmp_remove(struct tmp *t)
{
    unlink(t->path);
    assert_int_equal(rmdir(t->dir), 0);
}

static void
write_bytes(const char *path, const char *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void
test_read_whole(void **state)
{
    struct tmp t;
    char *text = NULL, err[256];
    size_t len = 99;
    (void)state;

    tmp_make(&t, "file");
    write_bytes(t.path, "a = 1\nb = 2\n", 12);
    assert_int_equal(util_read_file(t.path, 100, &text, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 12);
    assert_string_equal(text, "a = 1\nb = 2\n"); /* NUL-terminated */
    free(text);

    /* NUL bytes are content: the length counts them. */
    write_bytes(t.path, "a\0b", 3);
    assert_int_equal(util_read_file(t.path, 100, &text, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(text, "a\0b", 4);
    free(text);

    write_bytes(t.path, "", 0);
    assert_int_equal(util_read_file(t.path, 100, &text, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
    tmp_remove(&t);
}

static void
test_bound(void **state)
{
    struct tmp t;
    char *text = NULL, err[256], bytes[BIG];
    size_t len = 0;
    (void)state;

    memset(bytes, 'x', sizeof(bytes));
    tmp_make(&t, "file");
    write_bytes(t.path, bytes, 64);
    assert_int_equal(util_read_file(t.path, 64, &text, &len, err, sizeof(err)), 0);
    assert_int_equal(len, 64);
    free(text);

    /* One byte over: refused, naming the file and the bound; out-parameters untouched. */
    text = (char *)"untouched";
    len = 7;
    write_bytes(t.path, bytes, 65);
    err[0] = '\0';
    assert_int_equal(util_read_file(t.path, 64, &text, &len, err, sizeof(err)), -EFBIG);
    assert_non_null(strstr(err, t.path));
    assert_non_null(strstr(err, "larger than 64 bytes"));
    assert_string_equal(text, "untouched");
    assert_int_equal(len, 7);
    /* A sparse file far over the bound is refused by its size, not read. */
    int fd = open(t.path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)1 << 40), 0);
    close(fd);
    assert_int_equal(util_read_file(t.path, 64, &text, &len, err, sizeof(err)), -EFBIG);
    assert_string_equal(text, "untouched");
    tmp_remove(&t);
}

static void
test_errors(void **state)
{
    struct tmp t;
    char *text = (char *)"untouched", err[256];
    size_t len = 7;
    (void)state;

    tmp_make(&t, "missing");
    assert_int_equal(util_read_file(t.path, 64, &text, &len, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, t.path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    /* A directory opens but does not read. */
    assert_int_equal(util_read_file(t.dir, 64, &text, &len, err, sizeof(err)), -EIO);
    assert_non_null(strstr(err, t.dir));
    assert_string_equal(text, "untouched");
    assert_int_equal(len, 7);
    /* err_len 0: no message, the same code. */
    assert_int_equal(util_read_file(t.path, 64, &text, &len, NULL, 0), -ENOENT);
    assert_int_equal(rmdir(t.dir), 0);
}

/* A FIFO says size 0: a writer child sends BIG bytes and closes, the read takes them all. */
static void
test_unsized(void **state)
{
    struct tmp t;
    char *text = NULL, err[256];
    size_t len = 0;
    int status;
    (void)state;

    tmp_make(&t, "fifo");
    assert_int_equal(mkfifo(t.path, 0600), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char bytes[BIG];
        FILE *f = fopen(t.path, "wb");
        for (size_t i = 0; i < sizeof(bytes); i++)
            bytes[i] = (char)('a' + i % 26);
        _exit(f && fwrite(bytes, 1, sizeof(bytes), f) == sizeof(bytes) && fclose(f) == 0 ? 0 : 1);
    }
    int rc = util_read_file(t.path, 2 * BIG, &text, &len, err, sizeof(err));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (rc != 0)
        fail_msg("want 0, got %d (%s)", rc, err);
    assert_int_equal(len, BIG);
    for (size_t i = 0; i < BIG; i++) {
        if (text[i] != (char)('a' + i % 26))
            fail_msg("byte %zu: want '%c', got '%c'", i, 'a' + (int)(i % 26), text[i]);
    }
    assert_int_equal(text[BIG], '\0');
    free(text);
    tmp_remove(&t);
}

/* A pipe whose writer stays open: the read stops one byte past the bound and refuses it
 * (it never waits for an end that would not come). */
static void
test_unsized_over_bound(void **state)
{
    char path[64], bytes[BIG], err[256];
    char *text = (char *)"untouched";
    size_t len = 7;
    int fds[2];
    (void)state;

    memset(bytes, 'y', sizeof(bytes));
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], bytes, sizeof(bytes)), (ssize_t)sizeof(bytes));
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
    assert_int_equal(util_read_file(path, BIG / 2, &text, &len, err, sizeof(err)), -EFBIG);
    assert_non_null(strstr(err, "larger than 5000 bytes"));
    assert_string_equal(text, "untouched");
    close(fds[0]);
    close(fds[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_whole),
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_unsized),
        cmocka_unit_test(test_unsized_over_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

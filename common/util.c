/*
 * util.c - the helpers of util.h that touch the file system (the rest of util.h is inline and
 * needs no library): reading a whole, bounded file into memory.
 */
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>

#define READ_CHUNK 4096 /* the first allocation when the size is not known (a pipe, /proc) */

int
util_read_file(
    const char *path, size_t max_bytes, char **text, size_t *len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    size_t cap, n = 0;
    char *buf;
    int rc = 0;

    assert(max_bytes < SIZE_MAX - 1);
    if (!f) {
        int e = errno;
        return util_fail(-e, err, err_len, "%s: %s", path, strerror(e));
    }
    /* A regular file's size is only a hint (the file may change while it is read, /proc says
     * 0), but one already over the bound is refused before a byte of it is read. */
    bool sized = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
    if (sized && (uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return util_fail(-EFBIG, err, err_len, "%s: larger than %zu bytes", path, max_bytes);
    }
    cap = sized ? (size_t)st.st_size + 1 : READ_CHUNK;
    cap = cap > max_bytes + 1 ? max_bytes + 1 : cap; /* room to see one byte past the bound */
    buf = util_xmalloc(cap + 1);
    while (!feof(f) && !ferror(f) && n <= max_bytes) {
        if (n == cap) {
            cap = cap > (max_bytes + 1) / 2 ? max_bytes + 1 : cap * 2;
            buf = util_xrealloc(buf, cap + 1, 1);
        }
        n += fread(buf + n, 1, cap - n, f);
    }
    if (ferror(f))
        rc = util_fail(-EIO, err, err_len, "%s: read error", path);
    else if (n > max_bytes)
        rc = util_fail(-EFBIG, err, err_len, "%s: larger than %zu bytes", path, max_bytes);
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

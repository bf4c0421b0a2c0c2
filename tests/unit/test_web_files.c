/*
 * test_web_files.c - web_root read into memory (coordinator/web_files.c) from a temp dir: known
 * types taken with their bytes and content type, other names (hidden, unknown extension,
 * subdirectories) left out, a missing directory an error, a file over the size bound refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "web_files.h"

static void
write_file(const char *dir, const char *name, const char *text)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static const struct http_file *
find(const struct http_file *t, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(t[i].path, path) == 0)
            return &t[i];
    }
    return NULL;
}

static void
remove_tree(const char *dir)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void
test_load(void **state)
{
    char dir[] = "/tmp/test_web_files-XXXXXX", sub[600];
    struct web_files *w = NULL;
    char err[256];
    size_t n;
    (void)state;

    assert_non_null(mkdtemp(dir));
    write_file(dir, "index.html", "<p>hi</p>");
    write_file(dir, "app.js", "go()");
    write_file(dir, "uPlot.min.css", ".u{}");
    write_file(dir, ".hidden.js", "no");
    write_file(dir, "notes.md", "no");
    snprintf(sub, sizeof(sub), "%s/sub.js", dir);
    assert_int_equal(mkdir(sub, 0700), 0); /* a directory with a page's name */

    assert_int_equal(web_files_load(dir, &w, err, sizeof(err)), 0);
    const struct http_file *t = web_files_table(w, &n);
    assert_int_equal(n, 3);
    const struct http_file *f = find(t, n, "/index.html");
    assert_non_null(f);
    assert_string_equal(f->content_type, "text/html; charset=utf-8");
    assert_int_equal(f->len, strlen("<p>hi</p>"));
    assert_memory_equal(f->bytes, "<p>hi</p>", f->len);
    assert_non_null(f = find(t, n, "/app.js"));
    assert_string_equal(f->content_type, "text/javascript; charset=utf-8");
    assert_non_null(f = find(t, n, "/uPlot.min.css"));
    assert_string_equal(f->content_type, "text/css; charset=utf-8");
    web_files_destroy(&w);
    assert_null(w);
    web_files_destroy(&w);

    /* Over the size bound: refused, naming the file. */
    char big[600];
    snprintf(big, sizeof(big), "%s/big.js", dir);
    FILE *fb = fopen(big, "w");
    assert_non_null(fb);
    assert_int_equal(ftruncate(fileno(fb), (off_t)WEB_FILE_MAX_BYTES + 1), 0);
    fclose(fb);
    assert_int_equal(web_files_load(dir, &w, err, sizeof(err)), -EFBIG);
    assert_non_null(strstr(err, "big.js"));
    assert_null(w);
    remove_tree(dir);

    assert_int_equal(web_files_load(dir, &w, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, dir));
    n = 99;
    assert_null(web_files_table(NULL, &n));
    assert_int_equal(n, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * web_files.c - web_root read into memory (see web_files.h).
 */
#include "web_files.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

#define NAME_MAX_LEN 128

struct web_files {
    struct http_file table[WEB_FILES_MAX];
    size_t n;
};

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".json", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *
type_of(const char *name)
{
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    }
    return NULL;
}

static bool
name_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len >= NAME_MAX_LEN || name[0] == '.')
        return false;
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

static int
add_file(struct web_files *w, const char *dir, const char *name, char *err, size_t err_len)
{
    char path[4096];
    struct stat st;
    char *bytes = NULL; /* set by util_read_file() when it succeeds */
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
        return 0; /* a directory or a dangling link: not a page */
    if (w->n == WEB_FILES_MAX) {
        snprintf(err, err_len, "%s: more than %d files", dir, WEB_FILES_MAX);
        return -E2BIG;
    }
    int rc = util_read_file(path, WEB_FILE_MAX_BYTES, &bytes, &len, err, err_len);
    if (rc < 0)
        return rc;
    char *url = util_xcalloc(1, strlen(name) + 2);
    snprintf(url, strlen(name) + 2, "/%s", name);
    w->table[w->n++] =
        (struct http_file){.path = url, .content_type = type_of(name), .bytes = bytes, .len = len};
    return 0;
}

int
web_files_load(const char *dir, struct web_files **out, char *err, size_t err_len)
{
    struct web_files *w = util_xcalloc(1, sizeof(*w));
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (!d) {
        rc = -errno;
        snprintf(err, err_len, "%s: %s", dir, strerror(errno));
        free(w);
        return rc;
    }
    while (rc == 0 && (e = readdir(d))) {
        if (name_ok(e->d_name) && type_of(e->d_name))
            rc = add_file(w, dir, e->d_name, err, err_len);
    }
    closedir(d);
    if (rc < 0) {
        web_files_destroy(&w);
        return rc;
    }
    *out = w;
    return 0;
}

void
web_files_destroy(struct web_files **files)
{
    struct web_files *w = files ? *files : NULL;

    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++) {
        free((void *)w->table[i].path);
        free((void *)w->table[i].bytes);
    }
    free(w);
    *files = NULL;
}

const struct http_file *
web_files_table(const struct web_files *w, size_t *n)
{
    *n = w ? w->n : 0;
    return w ? w->table : NULL;
}

/*
 * web_files.h - the dashboard's files (web_root), read once at start and held in memory.
 *
 * Why a directory read at start, not files embedded at build time or read per request: the
 * package installs the pages (and the pinned chart library) under /usr/share/memsched/web,
 * where an operator can see and audit them, and a build without npm still makes a working
 * daemon. Read once, the HTTP thread serves only bytes in memory, by exact name: no path from a
 * URL ever reaches the file system, so there is nothing to traverse, and a file changed on disk
 * is seen after a restart, which keeps pages and daemon of one version together.
 *
 * Only regular files directly in the directory whose names are [A-Za-z0-9._-] and whose type is
 * known by extension (.html .js .css .svg .png .ico .json .txt) are taken; at most
 * WEB_FILES_MAX, each at most WEB_FILE_MAX_BYTES.
 */
#ifndef MEMSCHED_COORDINATOR_WEB_FILES_H
#define MEMSCHED_COORDINATOR_WEB_FILES_H

#include <stddef.h>

#include "http.h"

#define WEB_FILES_MAX      64
#define WEB_FILE_MAX_BYTES (4u << 20)

struct web_files;

/* Read dir's files. Returns 0, or -errno with err (no such directory, a file unreadable or too
 * large, too many files). An empty directory is not an error. */
int web_files_load(const char *dir, struct web_files **out, char *err, size_t err_len);

/* NULL-safe; nulls *files. */
void web_files_destroy(struct web_files **files);

/* The files as http_server_open_with() takes them; borrowed until web_files_destroy(). */
const struct http_file *web_files_table(const struct web_files *files, size_t *n);

#endif /* MEMSCHED_COORDINATOR_WEB_FILES_H */

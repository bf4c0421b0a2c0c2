/*
 * textfile.c - this host's metrics as a node_exporter textfile (see textfile.h).
 */
#include "textfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prom.h"
#include "util.h"

static void
write_host(struct prom_writer *w,
           const struct round_view *view,
           const struct round_counters *c,
           const struct textfile_extra *extra)
{
    struct prom_host h = {
        .total_kib = view->host->total_kib,
        .available_kib = view->host->available_kib,
        .has_floor = view->policy != NULL,
        .floor_kib = view->policy ? view->policy->host_min_unused_kib : 0,
        .vms = view->n_vms,
        .rounds = c->rounds,
        .granted_kib = c->granted_kib,
        .reclaimed_kib = c->reclaimed_kib,
        .apply_failures = c->apply_failures,
        .reports_dropped = extra->reports_dropped,
        .messages_rejected = extra->messages_rejected,
    };

    for (size_t i = 0; i < view->n_vms; i++)
        h.vm_max_kib += view->vms[i].max_kib;
    prom_labels_clear(w);
    prom_label_add(w, "host", extra->host_id);
    prom_put_u64(w, PROM_HOST_POLICY_VERSION, extra->policy_version);
    prom_write_host(w, &h);
    /* The agent counts only its own decisions, from its start: grows and shrinks. */
    prom_put_labelled(w, PROM_DECISIONS, "reason", sched_reason_name(SCHED_REASON_GROW), c->grows);
    prom_put_labelled(w, PROM_DECISIONS, "reason", sched_reason_name(SCHED_REASON_SHRINK),
                      c->shrinks);
    prom_put_double(w, PROM_AGENT_ROUND_DURATION, (double)extra->round_us / 1e6);
    prom_put_u64(w, PROM_AGENT_FAILED_ROUNDS, c->failed_rounds);
}

static void
write_vm(struct prom_writer *w, const struct round_view *view, size_t i, const char *host_id)
{
    const struct hv_vm *vm = &view->vms[i];
    const struct sched_entry *e = view->entry_of ? view->entry_of[i] : NULL;

    prom_write_vm(
        w, host_id,
        &(struct prom_vm){
            .name = vm->name,
            .uuid = vm->uuid,
            .max_kib = vm->max_kib,
            .actual_kib = vm->actual_kib,
            .target_kib = view->snapshot[i].target_kib,
            .unused_kib = vm->unused_kib,
            .usable_kib = vm->usable_kib,
            .stats_age_ms = vm->stats_age_ms,
            .state = vm->state,
            /* The newest decision is the coordinator's to remember across rounds. */
            .last_reason = SCHED_REASON_COUNT,
            .skip_reason = e && sched_reason_is_skip(e->reason) ? e->reason : SCHED_REASON_IN_BAND,
            .has_unused = vm->has_unused,
            .has_usable = vm->has_usable,
            .managed = vm->managed,
            .stuck = view->snapshot[i].stuck,
        });
}

char *
textfile_format(const struct round_view *view,
                const struct round_counters *c,
                const struct textfile_extra *extra,
                size_t *len)
{
    struct prom_writer w;
    char *parts[PROM_PARTS_MAX];
    size_t lens[PROM_PARTS_MAX], bytes, at = 0;

    prom_writer_init(&w);
    write_host(&w, view, c, extra);
    for (size_t i = 0; i < view->n_vms; i++)
        write_vm(&w, view, i, extra->host_id);
    size_t n = prom_writer_emit(&w, parts, lens, &bytes);
    char *text = util_xcalloc(bytes + 1, 1);
    for (size_t k = 0; k < n; k++) {
        memcpy(text + at, parts[k], lens[k]);
        at += lens[k];
        free(parts[k]);
    }
    *len = bytes;
    return text;
}

/* All of buf to fd, through short writes and interruptions. */
static int
write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

int
textfile_write(const char *path, const char *text, size_t len, char *err, size_t err_len)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path + 1) : 0;
    char tmp[4096];
    int rc, fd;

    /* Hidden and without the .prom suffix: node_exporter never reads it, finished or not. */
    if (snprintf(tmp, sizeof(tmp), "%.*s.%s.XXXXXX", dir_len, path, path + dir_len) >=
        (int)sizeof(tmp))
        return util_fail(-ENAMETOOLONG, err, err_len, "metrics_textfile: %.200s: path too long",
                         path);
    fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        return util_fail(rc, err, err_len, "metrics_textfile: creating %.200s: %s", tmp,
                         strerror(-rc));
    }
    rc = fchmod(fd, 0644) < 0 ? -errno : 0;
    if (rc == 0)
        rc = write_all(fd, text, len);
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return util_fail(rc, err, err_len, "metrics_textfile: writing %.200s: %s", path,
                         strerror(-rc));
    }
    return 0;
}

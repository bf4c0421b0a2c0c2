/*
 * textfile.h - this host's metrics for node_exporter's textfile collector (metrics_textfile).
 *
 * After a round the agent writes its host's series in the Prometheus text format: the same
 * names and labels as the coordinator's host and VM series (common/prom.h writes both), so one
 * dashboard fits a host scraped directly and the fleet behind a coordinator, plus the agent's
 * own (round duration, failed rounds). The file is replaced atomically: the text goes to a
 * temporary file in the same directory (a hidden name node_exporter does not read: it reads
 * *.prom), which is then renamed over PATH, so a reader sees the old file or the new one, never
 * part of one.
 *
 * textfile_format() is pure; textfile_write() is the only I/O, and never logs (the caller
 * rate-limits its complaints: a full disk must not stop scheduling, nor flood the journal).
 */
#ifndef MEMSCHED_AGENT_TEXTFILE_H
#define MEMSCHED_AGENT_TEXTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "round.h"

/* What the agent knows besides the round's view and counters. */
struct textfile_extra {
    const char *host_id;        /* the `host` label */
    uint64_t policy_version;    /* the fleet policy version held (0: none) */
    uint64_t round_us;          /* how long the last round took */
    uint64_t reports_dropped;   /* the coordinator link's, 0 without one */
    uint64_t messages_rejected; /* likewise */
};

/* The whole text for the last round (view and c as round_get_view() and round_get_counters()
 * give them); the caller frees it. *len receives its length (it is NUL-terminated too). */
char *textfile_format(const struct round_view *view,
                      const struct round_counters *c,
                      const struct textfile_extra *extra,
                      size_t *len);

/* Replace the file at path with text, atomically (see above); mode 0644 so node_exporter may
 * read it. Returns 0, or a negative errno with err naming the step and the file; a failure
 * leaves no temporary file behind and the old file in place. */
int textfile_write(const char *path, const char *text, size_t len, char *err, size_t err_len);

#endif /* MEMSCHED_AGENT_TEXTFILE_H */

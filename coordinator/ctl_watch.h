/*
 * ctl_watch.h - memschedctl's live views: `events --follow` and `top`.
 *
 * Both are loops of ordinary control requests (the coordinator keeps no subscription and no
 * per-client state): `events --follow` asks for the events after the last one it printed, once
 * a second; `top` redraws status, hosts and VMs every few seconds on a plain terminal (ANSI
 * clear, nothing else), so it works over ssh. The tables are the coordinator's own text replies.
 */
#ifndef MEMSCHED_COORDINATOR_CTL_WATCH_H
#define MEMSCHED_COORDINATOR_CTL_WATCH_H

#include <stdbool.h>

#include "wire.h"

/* Send req and fill reply (the caller clears it). Returns 0 on an answer of any status, or the
 * exit code to give up with (the coordinator did not answer). */
typedef int (*ctl_ask_fn)(void *ctx,
                          const struct wire_control_request *req,
                          struct wire_control_reply *reply);

struct ctl_watch {
    ctl_ask_fn ask;
    void *ctx;
    const char *author;
    unsigned interval_ms; /* between polls */
    bool once;            /* one poll (tests, scripts), then return */
    bool json;            /* events --follow: each new batch as the coordinator's JSON */
};

/* `events --follow [--since SEQ]`: the newest events (or those after SEQ), then every new one as
 * it comes. args/n_args are the user's events options. Returns an exit code: only on an error,
 * or after one poll with once. */
int ctl_follow_events(const struct ctl_watch *w, char args[][WIRE_ARG_MAX], size_t n_args);

/* `top [--sort host|name|actual|unused] [--limit N]`: status, hosts (down first) and the VMs
 * (least unused first, or --sort), redrawn every interval. Returns an exit code. */
int ctl_top(const struct ctl_watch *w, char args[][WIRE_ARG_MAX], size_t n_args);

#endif /* MEMSCHED_COORDINATOR_CTL_WATCH_H */

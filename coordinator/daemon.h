/*
 * daemon.h - memsched-coordinator's daemon: the store, the fleet, the agents' endpoint (CURVE),
 * the control endpoint and the protocol engine, wired into one loop.
 *
 * It owns every one of them from daemon_open() to daemon_close() (opened in that order, closed
 * in the mirrored one), the signals (SIGHUP reloads both allowlists, SIGTERM/SIGINT stop the
 * loop; blocked from daemon_open() on and read between polls), the control dispatch (a
 * memschedctl request decoded, its author taken from what the transport proved, answered by
 * control.c) and the send callback that puts the engine's messages on the wire (wire_send).
 * Single-threaded: everything runs in daemon_run()'s loop, except the HTTP listener's own
 * thread, which only hands out the metrics documents the loop publishes (http.h). The loop
 * writes them a slice of hosts at a time (metrics.h) between messages, so a large fleet's
 * exposition never holds agents or memschedctl up for more than one slice.
 */
#ifndef MEMSCHED_COORDINATOR_DAEMON_H
#define MEMSCHED_COORDINATOR_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport.h"

struct daemon_options {
    const char *listen;          /* agents' endpoint */
    const char *control;         /* memschedctl's endpoint: ipc://, or tcp:// with CURVE */
    const char *key_file;        /* the coordinator's key pair */
    const char *allow_dir;       /* agents' public keys */
    const char *admin_allow_dir; /* operators' public keys, for a tcp:// control endpoint */
    const char *admin_read_dir;  /* read-only operators' keys ("" = none) */
    const char *db;              /* the SQLite store */
    const char *metrics_listen;  /* Prometheus /metrics (http.h); NULL or "" = none */
    bool metrics_omit_vm_series; /* metrics_vm_series = false: no per-VM series */
    const char *web_root;        /* the dashboard's files (web_files.h); NULL or "" = none */
    bool insecure;               /* no CURVE on the agents' endpoint (loopback only) */
    uint64_t stale_after_ms;
    uint64_t down_after_ms;
    uint64_t pressure_unused_mib;
    uint64_t host_retention_ms; /* 0 = keep down hosts forever */
    uint64_t history_max_mib;   /* 0 = keep no history */
};

struct daemon;

/* Block the daemon's signals, open the store, the fleet, both endpoints and the engine. Returns
 * 0, or -errno with err, logged (everything opened so far is closed again). opts is borrowed
 * for the call. */
int daemon_open(const struct daemon_options *opts, struct daemon **out, char *err, size_t err_len);

/* Serve until SIGTERM or SIGINT: agents' messages, control requests, ticks, the watchdog. */
void daemon_run(struct daemon *d);

/* Close in the mirrored order of daemon_open(). NULL-safe; nulls *d. */
void daemon_close(struct daemon **d);

/* The author of a control request as the transport proved it: an operator key's name over TCP
 * ("key:NAME"), the peer's uid over ipc ("uid:N(user)"); what memschedctl claims ($SUDO_USER,
 * $USER) kept beside it, marked ("... claims NAME"). Printable, at most len - 1 characters. */
void
daemon_real_author(const struct transport_peer *from, const char *claim, char *out, size_t len);

#endif /* MEMSCHED_COORDINATOR_DAEMON_H */

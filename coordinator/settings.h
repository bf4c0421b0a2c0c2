/*
 * settings.h - memsched-coordinator's configuration: one table of keys (config_table.h) bound
 * to struct settings.
 *
 * Sources apply in order over the defaults: config files (-c), then key=value arguments; then
 * settings_check() applies the rules between keys. Unknown keys and bad values are errors with
 * FILE:LINE (or "argument:1"). settings_check_files() opens what the settings name, so
 * --check-config fails where the daemon would at start.
 */
#ifndef MEMSCHED_COORDINATOR_SETTINGS_H
#define MEMSCHED_COORDINATOR_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config_table.h"
#include "log.h"

#define SETTINGS_STR_MAX 1024

struct settings {
    char listen[SETTINGS_STR_MAX];          /* agents' endpoint */
    char control[SETTINGS_STR_MAX];         /* memschedctl's endpoint */
    char key_file[SETTINGS_STR_MAX];        /* the coordinator's key pair */
    char allow_dir[SETTINGS_STR_MAX];       /* agents' public keys */
    char admin_allow_dir[SETTINGS_STR_MAX]; /* operators' public keys, for a tcp:// control */
    char admin_read_dir[SETTINGS_STR_MAX];  /* read-only operators' keys (dashboards, scripts) */
    char db[SETTINGS_STR_MAX];
    char metrics_listen[SETTINGS_STR_MAX]; /* Prometheus: http://ADDR:PORT or a port; "" = off */
    bool metrics_vm_series;                /* false: /metrics leaves out every per-VM series */
    char web_root[SETTINGS_STR_MAX];       /* the dashboard's files; "" = none */
    bool insecure;
    uint64_t stale_after_ms;
    uint64_t down_after_ms;
    uint64_t pressure_unused_mib;
    uint64_t host_retention_ms;
    uint64_t history_max_mib;
    enum log_level log_level;
};

/* The key table, in --print-config order. */
const struct config_table *settings_table(void);

void settings_defaults(struct settings *s);

/* Set one key from text. Returns 0, -ENOENT (unknown key) or -EINVAL; s is unchanged on
 * failure. */
int settings_set(struct settings *s, const char *key, const char *value, char *err, size_t err_len);

/* Apply a config file (key = value lines) over s. Returns 0 or the first error (FILE:LINE). */
int settings_load_file(struct settings *s, const char *path, char *err, size_t err_len);

/* Apply one "key=value" argument over s. */
int settings_load_arg(struct settings *s, const char *arg, char *err, size_t err_len);

/* The rules between keys (stale before down, retention, a tcp:// control needs operators' keys,
 * insecure only on loopback, a metrics_listen address). Returns 0 or -EINVAL with err. */
int settings_check(const struct settings *s, char *err, size_t err_len);

/* Open what the settings name, as the daemon will at start, without binding or creating
 * anything: the key pair (parsed; refused when group or others may read it) and the allowlist
 * directories (every key parsed) where CURVE is used, the database (or the directory it will be
 * made in) and the directory of an ipc:// control socket. Returns 0 or the first failure, with
 * err naming the key and the file. */
int settings_check_files(const struct settings *s, char *err, size_t err_len);

/* Every key with its value in file syntax, with help and default comments. */
void settings_print(const struct settings *s, FILE *out);

#endif /* MEMSCHED_COORDINATOR_SETTINGS_H */

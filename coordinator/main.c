/*
 * main.c - memsched-coordinator: parses arguments and config (settings.c) and hands them to
 * the daemon (daemon.c: store, fleet, the agents' endpoint, the control endpoint, the engine,
 * signals and the loop).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config_table.h"
#include "daemon.h"
#include "log.h"
#include "settings.h"

#define ERR_LEN 512
/* Read when no -c is given and it exists (the package ships it); else the built-in defaults. */
#define DEFAULT_CONFIG MEMSCHED_CONFIG_DIR "/coordinator.conf"

static void
usage(FILE *out)
{
    const struct config_table *t = settings_table();
    char def[256];

    fprintf(out, "usage: memsched-coordinator [-c FILE] [--check-config] [--print-config] "
                 "[key=value ...]\n"
                 "  -c, --config FILE   read FILE (key = value lines); key=value arguments "
                 "override it;\n"
                 "                      default " DEFAULT_CONFIG " if it exists\n"
                 "      --check-config  validate, open the files the settings name, and exit\n"
                 "      --print-config  print the effective configuration and exit\n"
                 "      --version       print the version and exit\n"
                 "keys (default):\n");
    for (size_t i = 0; i < t->n_keys; i++) {
        config_format_default(&t->keys[i], def, sizeof(def));
        fprintf(out, "  %-20s %s (%s)\n", t->keys[i].name, t->keys[i].help, def);
    }
}

struct options {
    bool check_only;
    bool print_config;
};

/* The arguments: config files and key=value overrides, in order, over the defaults. */
static int
load_settings(int argc, char **argv, struct settings *s, struct options *o)
{
    enum { OPT_CHECK = 256, OPT_PRINT, OPT_VERSION };
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, OPT_CHECK},
                                         {"print-config", no_argument, NULL, OPT_PRINT},
                                         {"version", no_argument, NULL, OPT_VERSION},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    char err[ERR_LEN];
    bool have_config = false;
    int c;

    settings_defaults(s);
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c' && settings_load_file(s, optarg, err, sizeof(err)) < 0) {
            fprintf(stderr, "memsched-coordinator: %s\n", err);
            return -EINVAL;
        } else if (c == OPT_CHECK) {
            o->check_only = true;
        } else if (c == OPT_PRINT) {
            o->print_config = true;
        } else if (c == OPT_VERSION) {
            printf("memsched-coordinator %s\n", MEMSCHED_VERSION);
            exit(0);
        } else if (c == 'h') {
            usage(stdout);
            exit(0);
        } else if (c != 'c') {
            usage(stderr);
            return -EINVAL;
        }
        have_config = have_config || c == 'c';
    }
    if (!have_config && access(DEFAULT_CONFIG, F_OK) == 0 &&
        settings_load_file(s, DEFAULT_CONFIG, err, sizeof(err)) < 0) {
        fprintf(stderr, "memsched-coordinator: %s\n", err);
        return -EINVAL;
    }
    for (int i = optind; i < argc; i++) {
        if (settings_load_arg(s, argv[i], err, sizeof(err)) < 0) {
            fprintf(stderr, "memsched-coordinator: %s\n", err);
            return -EINVAL;
        }
    }
    if (settings_check(s, err, sizeof(err)) < 0) {
        fprintf(stderr, "memsched-coordinator: %s\n", err);
        return -EINVAL;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct settings settings;
    struct options opts = {0};
    struct daemon *d = NULL;
    char err[ERR_LEN];

    if (load_settings(argc, argv, &settings, &opts) < 0)
        return 2;
    if (opts.print_config) {
        settings_print(&settings, stdout);
        return 0;
    }
    if (opts.check_only) {
        if (settings_check_files(&settings, err, sizeof(err)) < 0) {
            fprintf(stderr, "memsched-coordinator: %s\n", err);
            return 1;
        }
        printf("configuration ok\n");
        return 0;
    }
    log_set_level(settings.log_level);
    struct daemon_options o = {
        .listen = settings.listen,
        .control = settings.control,
        .key_file = settings.key_file,
        .allow_dir = settings.allow_dir,
        .admin_allow_dir = settings.admin_allow_dir,
        .admin_read_dir = settings.admin_read_dir,
        .db = settings.db,
        .metrics_listen = settings.metrics_listen,
        .metrics_omit_vm_series = !settings.metrics_vm_series,
        .web_root = settings.web_root,
        .insecure = settings.insecure,
        .stale_after_ms = settings.stale_after_ms,
        .down_after_ms = settings.down_after_ms,
        .pressure_unused_mib = settings.pressure_unused_mib,
        .host_retention_ms = settings.host_retention_ms,
        .history_max_mib = settings.history_max_mib,
    };
    if (daemon_open(&o, &d, err, sizeof(err)) < 0)
        return 1;
    daemon_run(d);
    daemon_close(&d);
    return 0;
}

/*
 * main.c - memsched-agent: parses arguments and wires the agent (agent.h) to systemd.
 *
 * Start-up: config -> signals (blocked before any thread starts) -> agent_open -> agent_run.
 * Shut-down mirrors it.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "agent.h"
#include "agent_config.h"
#include "config.h"
#include "log.h"
#include "transport.h"

/* Read when no -c is given and it exists (the package ships it); else the built-in defaults. */
#define DEFAULT_CONFIG MEMSCHED_CONFIG_DIR "/agent.conf"

/* The command line: the agent's options, and what main does instead of running it. */
struct options {
    struct agent_options agent;
    bool check_config;
    bool print_config;
};

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: memsched-agent [options]\n"
            "  -c, --config FILE     read FILE (key = value; see --print-config); default\n"
            "                        " DEFAULT_CONFIG " if it exists\n"
            "  -u, --uri URI         hypervisor: libvirt URI or sim:FILE[?speed=N]\n"
            "  -s, --state-dir DIR   where the policy in force is kept\n"
            "  -n, --dry-run         plan and log, set nothing\n"
            "  -1, --once            run one round and exit\n"
            "  -r, --rounds N        stop after N rounds\n"
            "  -t, --table           print a per-VM table each round and a summary at the end\n"
            "  -R, --record FILE     append one CSV line per VM per round to FILE\n"
            "  -l, --log-level L     err, warn, info or debug\n"
            "      --check-config    validate the configuration and the files it names, and exit\n"
            "      --print-config    print the effective configuration and exit\n"
            "      --version         print the version and exit\n"
            "  -h, --help\n");
}

static int
parse_args(int argc, char **argv, struct options *o)
{
    enum { OPT_CHECK = 256, OPT_PRINT, OPT_VERSION };
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"uri", required_argument, NULL, 'u'},
        {"state-dir", required_argument, NULL, 's'},
        {"dry-run", no_argument, NULL, 'n'},
        {"once", no_argument, NULL, '1'},
        {"rounds", required_argument, NULL, 'r'},
        {"table", no_argument, NULL, 't'},
        {"record", required_argument, NULL, 'R'},
        {"log-level", required_argument, NULL, 'l'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"print-config", no_argument, NULL, OPT_PRINT},
        {"version", no_argument, NULL, OPT_VERSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;

    while ((c = getopt_long(argc, argv, "c:u:s:n1r:tR:l:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            o->agent.config_path = optarg;
            break;
        case 'u':
            o->agent.uri = optarg;
            break;
        case 's':
            o->agent.state_dir = optarg;
            break;
        case 'n':
            o->agent.dry_run = true;
            break;
        case '1':
            o->agent.once = true;
            break;
        case 'r':
            o->agent.max_rounds = strtoull(optarg, &end, 10);
            if (*end || o->agent.max_rounds == 0) {
                fprintf(stderr, "memsched-agent: --rounds wants a positive number\n");
                return -EINVAL;
            }
            break;
        case 't':
            o->agent.table = true;
            break;
        case 'R':
            o->agent.record_path = optarg;
            break;
        case 'l':
            o->agent.log_level = optarg;
            break;
        case OPT_CHECK:
            o->check_config = true;
            break;
        case OPT_PRINT:
            o->print_config = true;
            break;
        case OPT_VERSION:
            printf("memsched-agent %s\n", MEMSCHED_VERSION);
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "memsched-agent: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    return 0;
}

static void
notify_systemd(const char *state)
{
    sd_notify(0, state);
}

int
main(int argc, char **argv)
{
    struct options opts = {.agent.notify = notify_systemd};
    struct agent_config config;
    struct agent *a = NULL;
    sigset_t signals;
    char err[CONFIG_ERR_MAX];
    int status;

    if (parse_args(argc, argv, &opts) < 0)
        return 2;
    if (!opts.agent.config_path && access(DEFAULT_CONFIG, F_OK) == 0)
        opts.agent.config_path = DEFAULT_CONFIG;
    /* Under WatchdogSec=, ping at twice its rate, as sd_watchdog_enabled(3) advises. */
    uint64_t watchdog_us = 0;
    if (sd_watchdog_enabled(0, &watchdog_us) > 0)
        opts.agent.watchdog_ms = watchdog_us / 2000 ? watchdog_us / 2000 : 1;
    if (agent_load_config(&opts.agent, &config, err, sizeof(err)) < 0) {
        fprintf(stderr, "memsched-agent: %s\n", err);
        return 1;
    }
    if (opts.check_config || opts.print_config) {
        if (opts.print_config) {
            agent_config_print(&config, stdout);
        } else if (agent_config_check_files(&config, err, sizeof(err)) < 0) {
            fprintf(stderr, "memsched-agent: %s\n", err);
            return 1;
        } else {
            printf("%s: ok\n", opts.agent.config_path ? opts.agent.config_path : "(defaults)");
        }
        return 0;
    }
    log_set_level(config.log_level);

    /* Block before any thread starts (libvirt's event loop) so signals reach sigtimedwait. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    /* A daemon that dies mid-write must give us EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    if (agent_open(&opts.agent, &config, &signals, &a, err, sizeof(err)) < 0)
        return 1;
    status = agent_run(a);
    agent_close(&a);
    transport_shutdown();
    return status;
}

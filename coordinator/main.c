/*
 * main.c - memsched-coordinator: parses arguments and config, wires store, fleet, the agents'
 * endpoint (CURVE) and the control endpoint (ipc) into one loop.
 *
 * Start-up: config -> store -> fleet -> sockets -> READY; shut-down mirrors it. Signals are
 * blocked and read through a signalfd-free check between polls: SIGHUP reloads the key
 * allowlist, SIGTERM/SIGINT stop.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "config_table.h"
#include "control.h"
#include "coordinator.h"
#include "fleet.h"
#include "log.h"
#include "settings.h"
#include "store.h"
#include "transport.h"
#include "util.h"
#include "wire.h"

#define MODULE      "coordinator"
#define TICK_MS     250
#define ERR_LEN     512
#define SERVER_MAIN 0
#define SERVER_CTL  1

static void
usage(FILE *out)
{
    const struct config_table *t = settings_table();
    char def[256];

    fprintf(out, "usage: memsched-coordinator [-c FILE] [--check-config] [--print-config] "
                 "[key=value ...]\n"
                 "  -c, --config FILE   read FILE (key = value lines); key=value arguments "
                 "override it\n"
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

struct daemon {
    uint64_t keys_refused; /* as last logged */
    uint64_t handshakes_throttled;
    struct settings settings;
    struct store *store;
    struct fleet *fleet;
    struct transport_server *servers[2];
    struct coordinator *coordinator;
    uint64_t sequence; /* of the messages sent to agents */
    sigset_t signals;
};

struct peer_send {
    struct transport_server *server;
    const struct transport_peer *to;
};

static int
send_peer(void *ctx, const uint8_t *buf, size_t len)
{
    struct peer_send *p = ctx;

    return transport_server_send(p->server, p->to, buf, len);
}

/* The engine's messages out: stamped, encoded and sent to the agent's connection. */
static void
send_agent(void *ctx, const struct transport_peer *to, const char *host_id, struct wire_msg *msg)
{
    struct daemon *d = ctx;
    struct peer_send p = {.server = d->servers[SERVER_MAIN], .to = to};
    char err[ERR_LEN];

    int rc = wire_send(msg, host_id, &d->sequence, send_peer, &p, err, sizeof(err));
    if (rc == -EINVAL)
        log_err(MODULE, "host=%s event=encode_failed body=%s why=\"%s\"", host_id,
                wire_body_name(msg->body), err);
    else if (rc < 0)
        log_debug(MODULE, "host=%s event=send_failed body=%s", host_id, wire_body_name(msg->body));
}

static void
policy_added(void *ctx, uint64_t version, const char *scope)
{
    coordinator_policy_added(ctx, version, scope);
}

static int
forget_host(void *ctx, const char *host_id, char *err, size_t err_len)
{
    return coordinator_forget_host(ctx, host_id, util_clock_ms(CLOCK_MONOTONIC), err, err_len);
}

/* Who asks, as the transport proved it: an operator key's name over TCP, the peer's uid over
 * ipc (SO_PEERCRED). What memschedctl claims ($SUDO_USER, $USER) is kept beside it, marked. */
static void
real_author(const struct transport_peer *from, const char *claim, char *out, size_t len)
{
    char who[WIRE_AUTHOR_MAX + 8];

    if (from->name[0]) {
        snprintf(who, sizeof(who), "key:%s", from->name);
    } else if (from->uid >= 0) {
        struct passwd pw, *found = NULL;
        char buf[1024];
        if (getpwuid_r((uid_t)from->uid, &pw, buf, sizeof(buf), &found) == 0 && found)
            snprintf(who, sizeof(who), "uid:%ld(%.32s)", from->uid, found->pw_name);
        else
            snprintf(who, sizeof(who), "uid:%ld", from->uid);
    } else {
        snprintf(who, sizeof(who), "unknown");
    }
    /* The author is printable text of at most WIRE_AUTHOR_MAX - 1: cut, never refuse. */
    if (claim[0] && !strstr(who, claim))
        snprintf(out, len, "%.40s claims %.15s", who, claim);
    else
        snprintf(out, len, "%.63s", who);
}

static void
answer_control(struct daemon *d, const struct transport_peer *from, const uint8_t *buf, size_t len)
{
    struct wire_control_request req;
    char err[ERR_LEN];
    char *body = NULL;
    int status;
    uint8_t *reply;
    size_t reply_len;

    if (wire_decode_control_request(buf, len, &req, err, sizeof(err)) < 0) {
        status = CONTROL_USAGE;
        body = strdup(err);
    } else {
        char author[WIRE_AUTHOR_MAX];
        real_author(from, req.author, author, sizeof(author));
        snprintf(req.author, sizeof(req.author), "%s", author);
        struct control_context cc = {
            .fleet = d->fleet,
            .store = d->store,
            .now_ms = util_clock_ms(CLOCK_MONOTONIC),
            .now_wall_ms = util_clock_ms(CLOCK_REALTIME),
            .pressure_unused_kib = d->settings.pressure_unused_mib * 1024,
            .on_policy_added = policy_added,
            .forget_host = forget_host,
            .read_only = from->read_only,
            .ctx = d->coordinator,
        };
        status = control_handle(&cc, &req, &body);
    }
    wire_encode_control_reply(status, body ? body : "", &reply, &reply_len);
    transport_server_send(d->servers[SERVER_CTL], from, reply, reply_len);
    free(reply);
    free(body);
}

/* Returns false when a signal asks to stop. */
static bool
take_signals(struct daemon *d)
{
    struct timespec zero = {0, 0};
    char err[ERR_LEN];
    int sig;

    while ((sig = sigtimedwait(&d->signals, NULL, &zero)) > 0) {
        if (sig == SIGTERM || sig == SIGINT)
            return false;
        if (transport_server_reload_allowlist(d->servers[SERVER_MAIN], err, sizeof(err)) < 0)
            log_err(MODULE, "event=reload_failed keeping=old why=\"%s\"", err);
        else
            log_info(MODULE, "event=allowlist_reloaded");
        /* The operators' lists too: a key removed there is refused from its next request. */
        if (transport_server_reload_allowlist(d->servers[SERVER_CTL], err, sizeof(err)) < 0)
            log_err(MODULE, "event=reload_failed list=operators keeping=old why=\"%s\"", err);
        else
            log_info(MODULE, "event=allowlist_reloaded list=operators");
    }
    return true;
}

/* Handshakes from keys outside the allowlist: counted by the transport, logged when they grow. */
static void
log_refused_handshakes(struct daemon *d)
{
    struct transport_server_stats st;

    transport_server_get_stats(d->servers[SERVER_MAIN], &st);
    if (st.keys_refused != d->keys_refused)
        log_warn(MODULE, "event=handshakes_refused total=%" PRIu64 " new=%" PRIu64, st.keys_refused,
                 st.keys_refused - d->keys_refused);
    if (st.handshakes_throttled != d->handshakes_throttled)
        log_warn(MODULE,
                 "event=handshakes_throttled why=\"a key connecting too fast\" total=%" PRIu64
                 " new=%" PRIu64,
                 st.handshakes_throttled, st.handshakes_throttled - d->handshakes_throttled);
    d->keys_refused = st.keys_refused;
    d->handshakes_throttled = st.handshakes_throttled;
}

static void
run(struct daemon *d)
{
    uint64_t next_tick = 0;

    sd_notify(0, "READY=1");
    while (take_signals(d)) {
        struct transport_peer from;
        uint8_t *buf;
        size_t len, which;
        int rc = transport_server_recv(d->servers, 2, TICK_MS, &which, &from, &buf, &len);
        uint64_t now = util_clock_ms(CLOCK_MONOTONIC), wall = util_clock_ms(CLOCK_REALTIME);
        if (rc == 1) {
            if (which == SERVER_MAIN)
                coordinator_receive(d->coordinator, &from, buf, len, now, wall);
            else
                answer_control(d, &from, buf, len);
            free(buf);
        } else if (rc < 0 && rc != -EINTR) {
            log_err(MODULE, "event=poll_failed error=%s", strerror(-rc));
        }
        if (now >= next_tick) {
            coordinator_tick(d->coordinator, now, wall);
            log_refused_handshakes(d);
            sd_notify(0, "WATCHDOG=1");
            next_tick = now + TICK_MS;
        }
    }
    sd_notify(0, "STOPPING=1");
}

static int
open_sockets(struct daemon *d, char *err, size_t err_len)
{
    struct transport_server_options agents = {
        .endpoint = d->settings.listen,
        .key_path = d->settings.key_file,
        .allow_dir = d->settings.allow_dir,
        .insecure = d->settings.insecure,
    };
    /* The control endpoint is an ipc socket (its permissions are the access control), or TCP
     * with CURVE and the operators' own allowlist. */
    bool admin_curve = strncmp(d->settings.control, "tcp://", 6) == 0;
    struct transport_server_options control = {
        .endpoint = d->settings.control,
        .insecure = !admin_curve,
        .ipc_mode = 0660,
        .key_path = d->settings.key_file,
        .allow_dir = d->settings.admin_allow_dir,
        .read_only_dir = d->settings.admin_read_dir,
        .zap_domain = "memsched-admin",
    };
    int rc = transport_server_open(&agents, &d->servers[SERVER_MAIN], err, err_len);

    if (rc == 0 && strncmp(d->settings.control, "ipc://", 6) == 0) {
        /* The socket's directory, e.g. /run/memsched, may not exist yet. */
        char dir[SETTINGS_STR_MAX];
        snprintf(dir, sizeof(dir), "%s", d->settings.control + 6);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            mkdir(dir, 0750);
        }
    }
    if (rc == 0)
        rc = transport_server_open(&control, &d->servers[SERVER_CTL], err, err_len);
    return rc;
}

int
main(int argc, char **argv)
{
    struct daemon d = {0};
    char err[ERR_LEN];
    struct options opts = {0};
    int status = 1;

    if (load_settings(argc, argv, &d.settings, &opts) < 0)
        return 2;
    if (opts.print_config) {
        settings_print(&d.settings, stdout);
        return 0;
    }
    if (opts.check_only) {
        if (settings_check_files(&d.settings, err, sizeof(err)) < 0) {
            fprintf(stderr, "memsched-coordinator: %s\n", err);
            return 1;
        }
        printf("configuration ok\n");
        return 0;
    }
    log_set_level(d.settings.log_level);
    sigemptyset(&d.signals);
    sigaddset(&d.signals, SIGHUP);
    sigaddset(&d.signals, SIGTERM);
    sigaddset(&d.signals, SIGINT);
    sigprocmask(SIG_BLOCK, &d.signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (store_open(d.settings.db, &d.store, err, sizeof(err)) < 0) {
        log_err(MODULE, "event=store_open_failed why=\"%s\"", err);
        return 1;
    }
    struct fleet_opts fo = {.stale_after_ms = d.settings.stale_after_ms,
                            .down_after_ms = d.settings.down_after_ms};
    d.fleet = fleet_new(&fo);
    if (open_sockets(&d, err, sizeof(err)) < 0) {
        log_err(MODULE, "event=listen_failed why=\"%s\"", err);
        goto out;
    }
    d.coordinator = coordinator_new(d.fleet, d.store, send_agent, &d);
    coordinator_set_host_retention(d.coordinator, d.settings.host_retention_ms);
    log_info(MODULE, "event=started listen=%s control=%s db=%s curve=%s", d.settings.listen,
             d.settings.control, d.settings.db, d.settings.insecure ? "no" : "yes");
    run(&d);
    status = 0;
    log_info(MODULE, "event=stopped messages=%" PRIu64 " rejected=%" PRIu64,
             coordinator_get_counters(d.coordinator)->messages,
             coordinator_get_counters(d.coordinator)->rejected);
out:
    coordinator_destroy(&d.coordinator);
    transport_server_close(&d.servers[SERVER_CTL]);
    transport_server_close(&d.servers[SERVER_MAIN]);
    transport_shutdown();
    fleet_destroy(&d.fleet);
    store_destroy(&d.store);
    return status;
}

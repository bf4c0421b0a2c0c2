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

#include "config.h"
#include "control.h"
#include "coordinator.h"
#include "fleet.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "transport.h"
#include "util.h"
#include "wire.h"

#define MODULE      "coordinator"
#define STR_MAX     1024
#define TICK_MS     250
#define ERR_LEN     512
#define SERVER_MAIN 0
#define SERVER_CTL  1

struct settings {
    char listen[STR_MAX];          /* agents' endpoint */
    char control[STR_MAX];         /* memschedctl's endpoint */
    char key_file[STR_MAX];        /* the coordinator's key pair */
    char allow_dir[STR_MAX];       /* agents' public keys */
    char admin_allow_dir[STR_MAX]; /* operators' public keys, for a tcp:// control endpoint */
    char admin_read_dir[STR_MAX];  /* read-only operators' keys (dashboards, scripts) */
    char db[STR_MAX];
    bool insecure;
    uint64_t stale_after_ms;
    uint64_t down_after_ms;
    uint64_t pressure_unused_mib;
    uint64_t host_retention_ms;
    enum log_level log_level;
};

static void
settings_defaults(struct settings *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->listen, sizeof(s->listen), "tcp://0.0.0.0:7400");
    snprintf(s->control, sizeof(s->control), "ipc:///run/memsched/control.sock");
    snprintf(s->key_file, sizeof(s->key_file), "/etc/memsched/coordinator.secret");
    snprintf(s->allow_dir, sizeof(s->allow_dir), "/etc/memsched/agents");
    snprintf(s->db, sizeof(s->db), "/var/lib/memsched/coordinator.db");
    s->stale_after_ms = FLEET_STALE_AFTER_MS_DEFAULT;
    s->down_after_ms = FLEET_DOWN_AFTER_MS_DEFAULT;
    s->pressure_unused_mib = 100;
    s->host_retention_ms = COORDINATOR_HOST_RETENTION_MS;
    s->log_level = LOG_LEVEL_INFO;
}

static int
set_string(char *field, const char *key, const char *value, char *err, size_t err_len)
{
    if (!*value || strlen(value) >= STR_MAX) {
        snprintf(err, err_len, "%s: must be 1 to %d characters", key, STR_MAX - 1);
        return -EINVAL;
    }
    strcpy(field, value);
    return 0;
}

static int
set_number(uint64_t *field,
           const char *key,
           const char *value,
           uint64_t min,
           uint64_t max,
           char *err,
           size_t err_len)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || *end || value[0] < '0' || value[0] > '9' || v < min || v > max) {
        snprintf(err, err_len, "%s='%s' must be a whole number in [%" PRIu64 ", %" PRIu64 "]", key,
                 value, min, max);
        return -EINVAL;
    }
    *field = v;
    return 0;
}

/* The coordinator's key table: every key is a line of `memsched-coordinator --help`. */
static int
settings_set(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    struct settings *s = ctx;

    if (strcmp(key, "listen") == 0)
        return set_string(s->listen, key, value, err, err_len);
    if (strcmp(key, "control") == 0)
        return set_string(s->control, key, value, err, err_len);
    if (strcmp(key, "key_file") == 0)
        return set_string(s->key_file, key, value, err, err_len);
    if (strcmp(key, "allow_dir") == 0)
        return set_string(s->allow_dir, key, value, err, err_len);
    if (strcmp(key, "admin_allow_dir") == 0)
        return set_string(s->admin_allow_dir, key, value, err, err_len);
    if (strcmp(key, "admin_read_dir") == 0)
        return set_string(s->admin_read_dir, key, value, err, err_len);
    if (strcmp(key, "db") == 0)
        return set_string(s->db, key, value, err, err_len);
    if (strcmp(key, "insecure") == 0) {
        if (policy_parse_bool(value, &s->insecure) == 0)
            return 0;
        snprintf(err, err_len, "insecure='%s' is not a boolean", value);
        return -EINVAL;
    }
    if (strcmp(key, "stale_after_ms") == 0)
        return set_number(&s->stale_after_ms, key, value, 500, 3600000, err, err_len);
    if (strcmp(key, "down_after_ms") == 0)
        return set_number(&s->down_after_ms, key, value, 1000, 86400000, err, err_len);
    if (strcmp(key, "host_retention_ms") == 0)
        return set_number(&s->host_retention_ms, key, value, 0, UINT64_C(31536000000), err,
                          err_len);
    if (strcmp(key, "pressure_unused_mib") == 0)
        return set_number(&s->pressure_unused_mib, key, value, 0, 1048576, err, err_len);
    if (strcmp(key, "log_level") == 0) {
        if (log_parse_level(value, &s->log_level) == 0)
            return 0;
        snprintf(err, err_len, "log_level='%s' must be err, warn, info or debug", value);
        return -EINVAL;
    }
    snprintf(err, err_len, "unknown key '%s'", key);
    return -ENOENT;
}

static int
settings_check(const struct settings *s, char *err, size_t err_len)
{
    if (s->stale_after_ms >= s->down_after_ms) {
        snprintf(err, err_len, "stale_after_ms=%" PRIu64 " must be below down_after_ms=%" PRIu64,
                 s->stale_after_ms, s->down_after_ms);
        return -EINVAL;
    }
    if (s->host_retention_ms && s->host_retention_ms < s->down_after_ms) {
        snprintf(err, err_len,
                 "host_retention_ms=%" PRIu64 " must be 0 or at least down_after_ms=%" PRIu64,
                 s->host_retention_ms, s->down_after_ms);
        return -EINVAL;
    }
    if (strncmp(s->control, "tcp://", 6) == 0 && !s->admin_allow_dir[0]) {
        snprintf(err, err_len, "a tcp:// control endpoint needs admin_allow_dir (CURVE)");
        return -EINVAL;
    }
    if (s->insecure && !transport_endpoint_is_local(s->listen)) {
        snprintf(err, err_len, "insecure=true is only allowed on loopback, not %.200s", s->listen);
        return -EINVAL;
    }
    return 0;
}

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: memsched-coordinator [-c FILE] [--check-config] [key=value ...]\n"
            "  -c, --config FILE   read FILE (key = value lines); key=value arguments override it\n"
            "      --check-config  validate and exit\n"
            "keys: listen (tcp://0.0.0.0:7400), control (ipc:///run/memsched/control.sock),\n"
            "      key_file (/etc/memsched/coordinator.secret), allow_dir (/etc/memsched/agents),\n"
            "      admin_allow_dir (operators' keys when control is tcp://, CURVE),\n"
            "      admin_read_dir (read-only operators' keys: status, hosts, vms, events,\n"
            "      policy show/history; no policy set, no hosts forget),\n"
            "      db (/var/lib/memsched/coordinator.db), insecure (false: loopback only),\n"
            "      stale_after_ms (3000), down_after_ms (10000), pressure_unused_mib (100),\n"
            "      host_retention_ms (604800000: hosts down a week are forgotten; 0 never),\n"
            "      log_level (info)\n");
}

static int
load_settings(int argc, char **argv, struct settings *s, bool *check_only)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    char err[ERR_LEN];
    int c;

    settings_defaults(s);
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (c == 'c' && config_parse_file(optarg, settings_set, s, err, sizeof(err)) < 0) {
            fprintf(stderr, "memsched-coordinator: %s\n", err);
            return -EINVAL;
        } else if (c == 'k') {
            *check_only = true;
        } else if (c == 'h') {
            usage(stdout);
            exit(0);
        } else if (c != 'c') {
            usage(stderr);
            return -EINVAL;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (config_parse_text(argv[i], "argument", settings_set, s, err, sizeof(err)) < 0) {
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
    sigset_t signals;
};

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
                coordinator_handle(d->coordinator, &from, buf, len, now, wall);
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
        char dir[STR_MAX];
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
    bool check_only = false;
    int status = 1;

    if (load_settings(argc, argv, &d.settings, &check_only) < 0)
        return 2;
    if (check_only) {
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
    d.coordinator = coordinator_new(d.fleet, d.store, d.servers[SERVER_MAIN]);
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

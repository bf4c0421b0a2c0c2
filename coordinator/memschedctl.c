/*
 * memschedctl.c - the operator's CLI: asks memsched-coordinator about the fleet and changes its
 * policy over the control endpoint, and makes CURVE key pairs locally.
 *
 *   memschedctl [--socket ENDPOINT] [--json] [--timeout MS] COMMAND [ARGS...]
 *
 * It only parses the command line, sends one control request (wire.h) over an insecure transport
 * client (the control endpoint is a local ipc:// socket: its file permissions are the access
 * control) and prints the reply: the body to stdout when the status is 0, to stderr otherwise,
 * and exits with the status. What the arguments mean is the coordinator's business (control.c);
 * only the shape of the line (global options, the command word) is checked here.
 *
 * A policy change with --wait [--timeout SECONDS] then asks policy-wait for its scope every
 * WAIT_POLL_MS until every host in it holds its policy, one refused it, or the time is up: the
 * waiting is here, so the coordinator's loop never blocks for an operator.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_watch.h"
#include "policy.h"
#include "transport.h"
#include "wire.h"

#define ENDPOINT_DEFAULT   "ipc:///run/memsched/control.sock"
#define ENDPOINT_ENV       "MEMSCHED_CONTROL"
#define TIMEOUT_MS_DEFAULT 5000
#define TIMEOUT_MS_MAX     3600000
#define EXIT_NO_ANSWER     1
#define EXIT_USAGE         2
#define EXIT_INTERNAL      5
#define PATH_LEN           4096
#define FOLLOW_INTERVAL_MS 1000 /* events --follow polls */
#define TOP_INTERVAL_MS    2000 /* top redraws */
#define EXIT_REFUSED       3
#define EXIT_PENDING       7 /* --wait: some host did not ack in time */
#define WAIT_S_DEFAULT     30
#define WAIT_S_MAX         86400
#define WAIT_POLL_MS       200

struct options {
    const char *endpoint;
    bool json;
    int timeout_ms;
    const char *server_key; /* --server-key: a tcp:// control endpoint, over CURVE */
    const char *key;        /* --key: this operator's key pair */
    bool wait;              /* --wait after a policy change */
    unsigned wait_s;        /* its --timeout, in seconds */
    const char *scope;      /* the change's --scope, for the wait */
};

#define SYNOPSIS                                                                                   \
    "usage: memschedctl [--socket ENDPOINT] [--json] [--timeout MS] COMMAND [ARGS...]\n"

/* The policy keys, wrapped to fit a terminal. */
static void
print_policy_keys(FILE *f)
{
    size_t n, col = 0;
    const struct config_key *params = policy_params(&n);

    fputs("Policy keys (KEY=VALUE, memory in MiB):\n ", f);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(params[i].name) + 2;
        if (col + len > 90) {
            fputs("\n ", f);
            col = 0;
        }
        fprintf(f, " %s%s", params[i].name, i + 1 < n ? "," : "\n");
        col += len;
    }
}

static void
usage(FILE *f)
{
    fputs(SYNOPSIS
          "\n"
          "Commands, answered by memsched-coordinator:\n"
          "  status                      fleet summary: hosts, VMs, memory, overcommit, policy\n"
          "  hosts [--sort host|liveness|seen|vms|available] [--filter SCOPE] [--unit MiB|GiB]\n"
          "        [--limit N] [--after HOST]\n"
          "                              one line per host: liveness, memory, policy held,\n"
          "                              labels (liveness: down first; seen: longest silent\n"
          "                              first; vms: most first; available: least first);\n"
          "                              pages of N (5000) in host order, --after the last\n"
          "  hosts forget HOST           forget a host (fleet, history of acks); it comes back\n"
          "                              if it says hello again\n"
          "  vms [--host H] [--sort host|name|actual|unused] [--limit N] [--unit MiB|GiB]\n"
          "      [--after HOST/UUID]\n"
          "                              VMs (actual: largest first; unused: least first);\n"
          "                              pages of N (1000) in host order, --after the last\n"
          "  events [--since SEQ] [--limit N]\n"
          "                              the newest N events, or the first N after SEQ\n"
          "  events --follow [--since SEQ]\n"
          "                              the newest events, then each new one as it comes\n"
          "  top [--sort host|name|actual|unused] [--limit N]\n"
          "                              status, hosts and VMs, redrawn every 2 s (over ssh too)\n"
          "  why HOST VM                 why the VM (name or uuid) grew or shrank: its recent\n"
          "                              decisions with the signal, thresholds and policy\n"
          "  history HOST [VM]           the host's and its VMs' memory over the last day\n"
          "                              (range per series; --json: every point, decisions)\n"
          "  policy show [--scope S] [--limit N] [--after HOST]\n"
          "                              the keys each scope sets; how many hosts are current,\n"
          "                              pending, refused; what each holds, pages of N (5000)\n"
          "  policy show --host H        H's policy: each value, and the scope and version that\n"
          "                              set it (host over its labels over fleet over defaults)\n"
          "  policy set --scope S --reason TEXT KEY=VALUE... [--wait [--timeout SECONDS]]\n"
          "                              set keys at a scope (a new version), pushed to the\n"
          "                              hosts in it; prints what changes on each host\n"
          "  policy unset --scope S --reason TEXT KEY... [--wait ...]\n"
          "                              the scope stops setting these keys\n"
          "  policy delete --scope S --reason TEXT [--wait ...]\n"
          "                              the scope stops setting anything\n"
          "  policy rollback --scope S --to vN --reason TEXT [--wait ...]\n"
          "                              the scope sets again what its version N set\n"
          "                              --wait: until every host in S acks (default 30 s);\n"
          "                              exit 3 if one refuses, 7 if one does not ack in time\n"
          "  policy wait --scope S       whether every host in S holds its policy (exit 7: not\n"
          "                              yet)\n"
          "  policy history [--scope S] [--limit N]\n"
          "                              who changed what, when and why\n"
          "Local:\n"
          "  keygen NAME [--dir DIR]     write a CURVE key pair to DIR/NAME.secret (0600) and its\n"
          "                              public key to DIR/NAME.key (DIR defaults to .)\n"
          "\n"
          "Options:\n"
          "  --socket ENDPOINT  the control endpoint, or the path of its ipc socket (default:\n"
          "                     $" ENDPOINT_ENV ", else " ENDPOINT_DEFAULT ")\n"
          "  --json             answer in JSON (memory in KiB)\n"
          "  --timeout MS       how long to wait for the answer (default 5000)\n"
          "  --server-key FILE  the coordinator's public key, for a tcp:// control endpoint\n"
          "  --key FILE         your key pair (its public half in the coordinator's "
          "admin_allow_dir)\n"
          "  --help             this text\n"
          "  --version          print the version\n"
          "\n"
          "Scopes: fleet, label:KEY=VALUE, host:ID.\n",
          f);
    print_policy_keys(f);
    fputs("Exit status: 0 ok, 1 no answer or local failure, 2 usage, 3 refused, 4 not found,\n"
          "5 coordinator error, 6 denied (a read-only operator key asked for a change),\n"
          "7 not acked yet (policy wait, --wait).\n",
          f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Say what is wrong, then how it is used. Returns the exit code for usage errors. */
static int
usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("memschedctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n" SYNOPSIS "commands: status, hosts, vms, events, top, why, history, policy "
          "show|set|unset|delete|rollback|wait|history, keygen\n"
          "(memschedctl --help for more)\n",
          stderr);
    return EXIT_USAGE;
}

/* A whole number of milliseconds in [1, TIMEOUT_MS_MAX]. */
static int
parse_timeout(const char *text, int *out)
{
    char *end;

    if (text[0] < '0' || text[0] > '9')
        return -EINVAL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || v < 1 || v > TIMEOUT_MS_MAX)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* The value of --NAME VALUE or --NAME=VALUE at argv[*i]; NULL when argv[*i] is not --NAME. */
static const char *
option_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t len = strlen(name);
    const char *arg = argv[*i];

    *missing = false;
    if (strncmp(arg, name, len) != 0)
        return NULL;
    if (arg[len] == '=')
        return arg + len + 1;
    if (arg[len] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* Global options before the command; *next receives the command's index. Returns an exit code
 * to stop with, or -1 to go on. */
static int
parse_globals(int argc, char **argv, struct options *o, int *next)
{
    const char *env = getenv(ENDPOINT_ENV);
    const char *v;
    bool missing;
    int i;

    o->endpoint = env && env[0] ? env : ENDPOINT_DEFAULT;
    o->timeout_ms = TIMEOUT_MS_DEFAULT;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("memschedctl %s\n", MEMSCHED_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
        } else if ((v = option_value(argc, argv, &i, "--socket", &missing))) {
            o->endpoint = v;
        } else if ((v = option_value(argc, argv, &i, "--server-key", &missing))) {
            o->server_key = v;
        } else if ((v = option_value(argc, argv, &i, "--key", &missing))) {
            o->key = v;
        } else if ((v = option_value(argc, argv, &i, "--timeout", &missing))) {
            if (parse_timeout(v, &o->timeout_ms) < 0)
                return usage_error("--timeout wants milliseconds from 1 to 3600000, not '%s'", v);
        } else {
            return usage_error("%s '%s'", missing ? "missing value for" : "unknown option",
                               argv[i]);
        }
    }
    if (i >= argc)
        return usage_error("%s", "no command given");
    /* A bare path is the ipc socket at that path. */
    if (!strstr(o->endpoint, "://")) {
        static char ipc[4096 + sizeof("ipc://")]; /* PATH_MAX and the scheme */
        snprintf(ipc, sizeof(ipc), "ipc://%s", o->endpoint);
        o->endpoint = ipc;
    }
    *next = i;
    return -1;
}

/* ---- keygen ---- */

static bool
key_name_valid(const char *name)
{
    if (!name[0] || name[0] == '.' || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* Write one key file unless it exists: a key pair in use must not be lost to a typo. */
static int
save_key(const char *path, const struct transport_keys *keys, bool with_secret)
{
    char err[TRANSPORT_ERR_MAX] = "";
    struct stat st;

    if (stat(path, &st) == 0) {
        fprintf(stderr, "memschedctl: %s exists; remove it first to make a new key\n", path);
        return -EEXIST;
    }
    int rc = transport_keys_save(path, keys, with_secret, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "memschedctl: %s: %s\n", path, err[0] ? err : strerror(-rc));
    return rc;
}

static int
cmd_keygen(int argc, char **argv, int i)
{
    const char *name = NULL, *dir = ".", *v;
    char secret_path[PATH_LEN], public_path[PATH_LEN];
    struct transport_keys keys;
    bool missing;

    for (i++; i < argc; i++) {
        if ((v = option_value(argc, argv, &i, "--dir", &missing)))
            dir = v;
        else if (missing || argv[i][0] == '-')
            return usage_error("keygen: %s '%s'", missing ? "missing value for" : "unknown option",
                               argv[i]);
        else if (name)
            return usage_error("keygen: one NAME only, not also '%s'", argv[i]);
        else
            name = argv[i];
    }
    if (!name || !key_name_valid(name))
        return usage_error("keygen: NAME wants 1-64 characters of [A-Za-z0-9._-], not starting "
                           "with a dot");
    snprintf(secret_path, sizeof(secret_path), "%s/%s.secret", dir, name);
    snprintf(public_path, sizeof(public_path), "%s/%s.key", dir, name);
    if (transport_keygen(&keys) < 0) {
        fputs("memschedctl: keygen: could not make a key pair\n", stderr);
        return EXIT_NO_ANSWER;
    }
    if (save_key(secret_path, &keys, true) < 0 || save_key(public_path, &keys, false) < 0)
        return EXIT_NO_ANSWER;
    char fingerprint[TRANSPORT_FINGERPRINT_LEN] = "?";
    transport_key_fingerprint(keys.public_z85, fingerprint, sizeof(fingerprint));
    printf("wrote %s (key pair, 0600) and %s (public key, fingerprint %s)\n"
           "An agent's public key goes into the coordinator's allow_dir; the coordinator's goes\n"
           "to every agent (coordinator_key). Agents and the coordinator name keys by this\n"
           "fingerprint in their logs.\n",
           secret_path, public_path, fingerprint);
    return 0;
}

/* ---- requests ---- */

/* Who asks: $SUDO_USER, $USER or the uid, as recorded with policy changes. */
static void
request_author(struct wire_control_request *req)
{
    const char *names[] = {getenv("SUDO_USER"), getenv("USER")};

    for (size_t i = 0; i < 2; i++) {
        const char *n = names[i];
        bool ok = n && n[0] && strlen(n) < sizeof(req->author);
        for (const char *p = n; ok && *p; p++)
            ok = (unsigned char)*p >= 0x20 && *p != 0x7f;
        if (ok) {
            snprintf(req->author, sizeof(req->author), "%s", n);
            return;
        }
    }
    snprintf(req->author, sizeof(req->author), "uid:%u", (unsigned)getuid());
}

/* The request's command word: "policy show" -> "policy-show". *i moves past it. */
static int
request_command(int argc, char **argv, int *i, struct wire_control_request *req)
{
    static const char *const plain[] = {"status", "hosts",       "vms",        "events",
                                        "top",    "policy-show", "policy-set", "policy-history"};
    const char *cmd = argv[*i];

    if (strcmp(cmd, "hosts") == 0 && *i + 1 < argc && strcmp(argv[*i + 1], "forget") == 0) {
        if (*i + 2 >= argc || argv[*i + 2][0] == '-')
            return usage_error("hosts forget wants a HOST");
        snprintf(req->command, sizeof(req->command), "hosts-forget");
        snprintf(req->args[req->n_args++], sizeof(req->args[0]), "--host");
        snprintf(req->args[req->n_args++], sizeof(req->args[0]), "%s", argv[*i + 2]);
        *i += 3;
        return -1;
    }
    if (strcmp(cmd, "history") == 0) {
        if (*i + 1 >= argc || argv[*i + 1][0] == '-')
            return usage_error("history wants a HOST (and maybe a VM: its name or uuid)");
        snprintf(req->command, sizeof(req->command), "history");
        snprintf(req->args[req->n_args++], sizeof(req->args[0]), "--host");
        snprintf(req->args[req->n_args++], sizeof(req->args[0]), "%s", argv[*i + 1]);
        *i += 2;
        if (*i < argc && argv[*i][0] != '-') {
            snprintf(req->args[req->n_args++], sizeof(req->args[0]), "--vm");
            snprintf(req->args[req->n_args++], sizeof(req->args[0]), "%s", argv[(*i)++]);
        }
        return -1;
    }
    if (strcmp(cmd, "why") == 0) {
        if (*i + 2 >= argc || argv[*i + 1][0] == '-' || argv[*i + 2][0] == '-')
            return usage_error("why wants a HOST and a VM (its name or uuid)");
        snprintf(req->command, sizeof(req->command), "why");
        snprintf(req->args[req->n_args++], sizeof(req->args[0]), "--host");
        snprintf(req->args[req->n_args++], sizeof(req->args[0]), "%s", argv[*i + 1]);
        snprintf(req->args[req->n_args++], sizeof(req->args[0]), "--vm");
        snprintf(req->args[req->n_args++], sizeof(req->args[0]), "%s", argv[*i + 2]);
        *i += 3;
        return -1;
    }
    if (strcmp(cmd, "policy") == 0) {
        const char *sub = *i + 1 < argc ? argv[*i + 1] : "";
        static const char *const subs[] = {"show",     "set",  "unset",  "delete",
                                           "rollback", "wait", "history"};
        bool known = false;
        for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]) && !known; k++)
            known = strcmp(sub, subs[k]) == 0;
        if (!known)
            return usage_error("policy wants show, set, unset, delete, rollback, wait or history, "
                               "not '%s'",
                               sub);
        snprintf(req->command, sizeof(req->command), "policy-%s", sub);
        *i += 2;
        return -1;
    }
    for (size_t k = 0; k < sizeof(plain) / sizeof(plain[0]); k++) {
        if (strcmp(cmd, plain[k]) == 0) {
            snprintf(req->command, sizeof(req->command), "%s", cmd);
            *i += 1;
            return -1;
        }
    }
    return usage_error("unknown command '%s'", cmd);
}

/* A change that --wait may follow. */
static bool
is_policy_change(const char *command)
{
    return strcmp(command, "policy-set") == 0 || strcmp(command, "policy-unset") == 0 ||
           strcmp(command, "policy-delete") == 0 || strcmp(command, "policy-rollback") == 0;
}

/* --wait and its --timeout SECONDS, after a policy change's command word: ours, not the
 * coordinator's. Returns 1 when argv[*i] was one of them, an exit code, or 0. */
static int
wait_option(
    int argc, char **argv, int *i, const struct wire_control_request *req, struct options *o)
{
    const char *v;
    bool missing;
    char *end;

    if (!is_policy_change(req->command))
        return 0;
    if (strcmp(argv[*i], "--wait") == 0) {
        o->wait = true;
        return 1;
    }
    if (!(v = option_value(argc, argv, i, "--timeout", &missing)))
        return missing ? usage_error("missing value for --timeout") : 0;
    errno = 0;
    unsigned long s = strtoul(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || errno || *end || s < 1 || s > WAIT_S_MAX)
        return usage_error("--timeout (of --wait) wants seconds from 1 to %d, not '%s'", WAIT_S_MAX,
                           v);
    o->wait_s = (unsigned)s;
    return 1;
}

/* The rest of the line, passed through; --json and --help are ours wherever they are, and
 * --wait [--timeout S] after a policy change. */
static int
request_args(int argc, char **argv, int i, struct wire_control_request *req, struct options *o)
{
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            req->json = true;
            continue;
        }
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        int rc = wait_option(argc, argv, &i, req, o);
        if (rc == 1)
            continue;
        if (rc != 0)
            return rc;
        if (strcmp(argv[i], "--scope") == 0 && i + 1 < argc)
            o->scope = argv[i + 1];
        else if (strncmp(argv[i], "--scope=", 8) == 0)
            o->scope = argv[i] + 8;
        if (req->n_args == WIRE_ARGS_MAX)
            return usage_error("too many arguments (at most 32), from '%s' on", argv[i]);
        if (strlen(argv[i]) >= WIRE_ARG_MAX)
            return usage_error("argument too long (at most 255 bytes): '%.40s...'", argv[i]);
        snprintf(req->args[req->n_args++], WIRE_ARG_MAX, "%s", argv[i]);
    }
    if (o->wait_s && !o->wait)
        return usage_error("--timeout SECONDS goes with --wait (the answer's own timeout is "
                           "--timeout MS before the command)");
    return -1;
}

/* Print the reply where it belongs and turn its status into the exit code. */
static int
print_reply(const struct wire_control_reply *reply)
{
    FILE *f = reply->status == 0 ? stdout : stderr;
    size_t len = strlen(reply->body);

    fputs(reply->body, f);
    if (len && reply->body[len - 1] != '\n')
        fputc('\n', f);
    if (fflush(f) != 0)
        return EXIT_NO_ANSWER;
    if (reply->status < 0 || reply->status > 125)
        return EXIT_INTERNAL;
    return reply->status;
}

/* Send req and wait for the answer: -1 with *reply filled (the caller clears it), or an exit
 * code with the reason printed. */
static int
exchange(const struct options *o,
         const struct wire_control_request *req,
         struct wire_control_reply *reply)
{
    /* ipc:// is local, its file permissions guard it; tcp:// takes the operator's CURVE keys. */
    struct transport_client_options copts = {
        .endpoint = o->endpoint,
        .insecure = !(o->server_key && o->key),
        .server_key_path = o->server_key,
        .key_path = o->key,
    };
    struct transport_client *client = NULL;
    char err[TRANSPORT_ERR_MAX + WIRE_ERR_MAX] = "";
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = wire_encode_control_request(req, &buf, &len, err, sizeof(err));

    memset(reply, 0, sizeof(*reply));
    if (rc < 0) {
        fprintf(stderr, "memschedctl: %s\n", err);
        return EXIT_USAGE;
    }
    rc = transport_client_open(&copts, &client, err, sizeof(err));
    if (rc == 0)
        rc = transport_client_send(client, buf, len);
    free(buf);
    buf = NULL;
    if (rc == 0)
        rc = transport_client_recv(client, o->timeout_ms, &buf, &len);
    if (rc == 1)
        rc = wire_decode_control_reply(buf, len, reply, err, sizeof(err));
    else if (rc == 0)
        rc = -ETIMEDOUT;
    free(buf);
    transport_client_close(&client);
    if (rc == -ETIMEDOUT) {
        fprintf(stderr,
                "memschedctl: no answer from %s within %d ms (is memsched-coordinator running?)\n",
                o->endpoint, o->timeout_ms);
        return EXIT_NO_ANSWER;
    }
    if (rc < 0 && err[0] && strstr(err, o->endpoint)) {
        fprintf(stderr, "memschedctl: %s\n", err);
        return EXIT_NO_ANSWER;
    }
    if (rc < 0) {
        fprintf(stderr, "memschedctl: %s: %s\n", o->endpoint, err[0] ? err : strerror(-rc));
        return EXIT_NO_ANSWER;
    }
    return -1;
}

/* One request, its reply printed: the exit code. */
static int
ask(const struct options *o, const struct wire_control_request *req)
{
    struct wire_control_reply reply;
    int rc = exchange(o, req, &reply);

    if (rc >= 0)
        return rc;
    rc = print_reply(&reply);
    wire_control_reply_clear(&reply);
    return rc;
}

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --wait: ask policy-wait for the scope until no host is pending or the time is up; the last
 * answer (which hosts refused or did not ack) is printed. */
static int
wait_for_acks(const struct options *o, const struct wire_control_request *change)
{
    struct wire_control_request req = {.json = false};
    struct wire_control_reply reply;
    uint64_t deadline = now_ms() + (uint64_t)(o->wait_s ? o->wait_s : WAIT_S_DEFAULT) * 1000;
    int rc;

    snprintf(req.command, sizeof(req.command), "policy-wait");
    snprintf(req.author, sizeof(req.author), "%s", change->author);
    snprintf(req.args[req.n_args++], WIRE_ARG_MAX, "--scope");
    snprintf(req.args[req.n_args++], WIRE_ARG_MAX, "%s", o->scope ? o->scope : "");
    for (;;) {
        rc = exchange(o, &req, &reply);
        if (rc >= 0)
            return rc;
        if (reply.status != EXIT_PENDING || now_ms() >= deadline)
            break;
        wire_control_reply_clear(&reply);
        usleep(WAIT_POLL_MS * 1000);
    }
    if (reply.status == EXIT_PENDING)
        fprintf(stderr, "memschedctl: --wait: not every host in %s acked within %u s:\n", o->scope,
                o->wait_s ? o->wait_s : WAIT_S_DEFAULT);
    else if (reply.status == EXIT_REFUSED)
        fprintf(stderr, "memschedctl: --wait: a host in %s refused it:\n", o->scope);
    rc = print_reply(&reply);
    wire_control_reply_clear(&reply);
    return rc;
}

/* ctl_watch's way to ask: 0 on an answer, else the exit code. */
static int
ask_cb(void *ctx, const struct wire_control_request *req, struct wire_control_reply *reply)
{
    int rc = exchange(ctx, req, reply);

    return rc >= 0 ? rc : 0;
}

/* Remove the argument flag from req; whether it was there. */
static bool
take_flag(struct wire_control_request *req, const char *flag)
{
    for (size_t i = 0; i < req->n_args; i++) {
        if (strcmp(req->args[i], flag) != 0)
            continue;
        memmove(req->args[i], req->args[i + 1], (req->n_args - i - 1) * sizeof(req->args[0]));
        req->n_args--;
        return true;
    }
    return false;
}

/* events --follow and top: loops of requests (ctl_watch.c). --once for one round of them. */
static int
watch(const struct options *o, struct wire_control_request *req, bool top)
{
    struct ctl_watch w = {
        .ask = ask_cb,
        .ctx = (void *)o,
        .author = req->author,
        .interval_ms = top ? TOP_INTERVAL_MS : FOLLOW_INTERVAL_MS,
        .once = take_flag(req, "--once"),
        .json = req->json,
    };

    if (top && req->json)
        return usage_error("top draws tables for a terminal; --json is for the other commands");
    return top ? ctl_top(&w, req->args, req->n_args)
               : ctl_follow_events(&w, req->args, req->n_args);
}

int
main(int argc, char **argv)
{
    struct options o = {0};
    struct wire_control_request req;
    int i = 0, rc = parse_globals(argc, argv, &o, &i);

    if (rc >= 0)
        return rc;
    if (strcmp(argv[i], "keygen") == 0)
        return cmd_keygen(argc, argv, i);
    memset(&req, 0, sizeof(req));
    rc = request_command(argc, argv, &i, &req);
    if (rc < 0)
        rc = request_args(argc, argv, i, &req, &o);
    if (rc >= 0)
        return rc;
    req.json = req.json || o.json;
    request_author(&req);
    if (strcmp(req.command, "top") == 0) {
        rc = watch(&o, &req, true);
    } else if (strcmp(req.command, "events") == 0 && take_flag(&req, "--follow")) {
        rc = watch(&o, &req, false);
    } else {
        rc = ask(&o, &req);
        if (rc == 0 && o.wait)
            rc = wait_for_acks(&o, &req);
    }
    transport_shutdown();
    return rc;
}

/*
 * transport.c - ZeroMQ sockets, CURVE, the ZAP allowlist and the client's bounded queue.
 *
 * One ZeroMQ context per process (created on first use): the ZAP handler must share the
 * server's context, and an agent with several coordinators should not run an I/O thread each.
 * ZAP requests are answered inline by transport_server_recv(), which polls the ZAP socket with
 * the servers, so there is no thread to synchronise with.
 */
#include "transport.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "util.h"
#include "wire.h"

#define ZAP_ENDPOINT       "inproc://zeromq.zap.01"
#define ZAP_DOMAIN         "memsched"
#define KEY_BYTES          32
#define MAX_SERVERS        8
#define ALLOW_MAX          100000
#define QUEUE_DEFAULT      16
#define SEND_HWM           64
#define SERVER_RCVHWM      100
#define HEARTBEAT_IVL_MS   2000
#define HEARTBEAT_TTL_MS   6000
#define RECONNECT_MAX_MS   5000
#define HANDSHAKE_BURST    10
#define HANDSHAKE_EVERY_MS 6000 /* ten a minute, after the burst */

static void *context;
static int zap_users;
static void *zap_socket;

static void *
get_context(void)
{
    if (!context) {
        context = zmq_ctx_new();
        if (!context)
            util_oom(); /* out of memory or file descriptors at start-up */
    }
    return context;
}

void
transport_shutdown(void)
{
    if (context)
        zmq_ctx_term(context);
    context = NULL;
}

static int
zmq_error(char *err, size_t err_len, const char *what)
{
    int rc = -(errno ? errno : EIO);
    snprintf(err, err_len, "%s: %s", what, zmq_strerror(errno));
    return rc;
}

/* ---- keys ---- */

int
transport_keygen(struct transport_keys *keys)
{
    return zmq_curve_keypair(keys->public_z85, keys->secret_z85) == 0 ? 0 : -EIO;
}

static bool
z85_key_valid(const char *z85)
{
    uint8_t bin[KEY_BYTES];
    return strlen(z85) == TRANSPORT_KEY_Z85_LEN - 1 && zmq_z85_decode(bin, z85) != NULL;
}

int
transport_key_fingerprint(const char *public_z85, char *out, size_t out_len)
{
    uint8_t bin[KEY_BYTES];
    uint64_t h = UTIL_HASH_SEED;

    if (!z85_key_valid(public_z85) || out_len < TRANSPORT_FINGERPRINT_LEN)
        return -EINVAL;
    zmq_z85_decode(bin, public_z85);
    for (size_t i = 0; i < sizeof(bin); i++)
        h = util_hash_mix(h, bin[i]);
    snprintf(out, out_len, "%04x:%04x:%04x:%04x", (unsigned)(h >> 48) & 0xffff,
             (unsigned)(h >> 32) & 0xffff, (unsigned)(h >> 16) & 0xffff, (unsigned)h & 0xffff);
    return 0;
}

int
transport_keys_save(const char *path,
                    const struct transport_keys *keys,
                    bool with_secret,
                    char *err,
                    size_t err_len)
{
    char tmp[4096];
    int rc = 0;

    /* A fresh file of our own (mkstemp: O_EXCL, 0600, an unpredictable name), never one
     * somebody made ready for us; the public half is opened up only once it is ours. */
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp)) {
        snprintf(err, err_len, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
        return rc;
    }
    if (fchmod(fd, with_secret ? 0600 : 0644) != 0) {
        rc = -errno;
        snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return rc;
    }
    FILE *f = fdopen(fd, "w");
    if (!f)
        util_oom(); /* fd is open and writable: only its buffer can fail */
    fprintf(f, "# memsched CURVE %s\npublic = %s\n",
            with_secret ? "key pair: keep it secret" : "public key", keys->public_z85);
    if (with_secret)
        fprintf(f, "secret = %s\n", keys->secret_z85);
    if (fflush(f) != 0 || fsync(fd) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, err_len, "%s: %s", path, strerror(-rc));
        unlink(tmp);
    }
    return rc;
}

static int
set_key(void *ctx, const char *key, const char *value, char *err, size_t err_len)
{
    struct transport_keys *keys = ctx;
    char *field = strcmp(key, "public") == 0   ? keys->public_z85
                  : strcmp(key, "secret") == 0 ? keys->secret_z85
                                               : NULL;

    if (strcmp(key, "name") == 0) {
        if (!wire_token_valid(value, TRANSPORT_NAME_MAX)) {
            snprintf(err, err_len, "name: 1-%d characters of [A-Za-z0-9._-]",
                     TRANSPORT_NAME_MAX - 1);
            return -EINVAL;
        }
        strcpy(keys->name, value);
        return 0;
    }
    if (!field) {
        snprintf(err, err_len, "unknown key '%s' (want public, secret, name)", key);
        return -ENOENT;
    }
    if (!z85_key_valid(value)) {
        snprintf(err, err_len, "%s: not a 40-character Z85 CURVE key", key);
        return -EINVAL;
    }
    strcpy(field, value);
    return 0;
}

int
transport_keys_load(
    const char *path, struct transport_keys *keys, bool need_secret, char *err, size_t err_len)
{
    struct transport_keys loaded = {{0}, {0}, {0}};
    int rc = config_parse_file(path, set_key, &loaded, err, err_len);

    if (rc < 0)
        return rc;
    /* A secret others can read is no longer a secret: refuse it rather than use it. */
    struct stat st;
    if (loaded.secret_z85[0] && (stat(path, &st) != 0 || (st.st_mode & 077) != 0)) {
        snprintf(err, err_len,
                 "%s: holds a secret key but is readable by group or others "
                 "(chmod 600 it)",
                 path);
        return -EPERM;
    }
    if (!loaded.public_z85[0] || (need_secret && !loaded.secret_z85[0])) {
        snprintf(err, err_len, "%s: missing %s key", path,
                 loaded.public_z85[0] ? "secret" : "public");
        return -EINVAL;
    }
    *keys = loaded;
    return 0;
}

bool
transport_endpoint_is_local(const char *endpoint)
{
    char host[64];
    struct in_addr v4;
    struct in6_addr v6;

    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0)
        return true;
    if (strncmp(endpoint, "tcp://", 6) != 0)
        return false;
    /* Only a literal loopback address: 127.0.0.0/8 or [::1]. No names (they resolve to
     * anything: tcp://127.attacker.example), no interfaces, no source;destination forms. */
    const char *h = endpoint + 6, *colon = strrchr(h, ':');
    if (!colon || colon == h || (size_t)(colon - h) >= sizeof(host))
        return false;
    memcpy(host, h, (size_t)(colon - h));
    host[colon - h] = '\0';
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']')
            return false;
        host[n - 1] = '\0';
        return inet_pton(AF_INET6, host + 1, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
    }
    return inet_pton(AF_INET, host, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

static int
refuse_insecure(const char *endpoint, bool insecure, char *err, size_t err_len)
{
    if (!insecure || transport_endpoint_is_local(endpoint))
        return 0;
    snprintf(err, err_len, "%s: plain (insecure) transport is allowed only on loopback or ipc://",
             endpoint);
    return -EPERM;
}

/* ---- the ZAP allowlist ---- */

/* One allowed key and the one name it is bound to; key first, so a bare key compares. */
struct allow_entry {
    uint8_t key[KEY_BYTES];
    char name[TRANSPORT_NAME_MAX];
    bool read_only; /* from the read-only directory */
    /* Handshakes left in its bucket (HANDSHAKE_BURST, one back every HANDSHAKE_EVERY_MS) and
     * when it was last filled: how fast one key may open connections. */
    uint32_t handshakes;
    int64_t filled_ms;
};

struct allowlist {
    struct allow_entry *entries; /* sorted by key */
    size_t n;
};

static int
compare_key(const void *a, const void *b)
{
    return memcmp(a, b, KEY_BYTES);
}

static struct allow_entry *
allowlist_find(const struct allowlist *list, const uint8_t *key)
{
    return list->n ? bsearch(key, list->entries, list->n, sizeof(*list->entries), compare_key)
                   : NULL;
}

/* The name a key file binds: its `name = ` line, else the file name without ".key". */
static int
entry_name(
    const char *file, const struct transport_keys *keys, char *name, char *err, size_t err_len)
{
    size_t stem = strlen(file) - 4;

    if (keys->name[0]) {
        strcpy(name, keys->name);
        return 0;
    }
    if (stem >= TRANSPORT_NAME_MAX) {
        snprintf(err, err_len, "%s: name longer than %d characters", file, TRANSPORT_NAME_MAX - 1);
        return -EINVAL;
    }
    memcpy(name, file, stem);
    name[stem] = '\0';
    if (!wire_token_valid(name, TRANSPORT_NAME_MAX)) {
        snprintf(err, err_len, "%s: '%s' is not a name of [A-Za-z0-9._-] (add a name = line)", file,
                 name);
        return -EINVAL;
    }
    return 0;
}

/* Every *.key file in dir holds one client's public key, bound to one name: appended to list. */
static int
allowlist_add_dir(
    const char *dir, bool read_only, struct allowlist *list, size_t *cap, char *err, size_t err_len)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (!d) {
        rc = -errno;
        snprintf(err, err_len, "%s: %s", dir, strerror(errno));
        return rc;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        char path[4096];
        struct transport_keys keys;
        if (len < 5 || strcmp(e->d_name + len - 4, ".key") != 0)
            continue;
        if (list->n == ALLOW_MAX) {
            snprintf(err, err_len, "%s: more than %d keys", dir, ALLOW_MAX);
            rc = -E2BIG;
            break;
        }
        if (list->n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            list->entries = util_xrealloc(list->entries, *cap, sizeof(*list->entries));
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        rc = transport_keys_load(path, &keys, false, err, err_len);
        if (rc == 0)
            rc = entry_name(e->d_name, &keys, list->entries[list->n].name, err, err_len);
        if (rc == 0) {
            list->entries[list->n].read_only = read_only;
            list->entries[list->n].handshakes = HANDSHAKE_BURST;
            list->entries[list->n].filled_ms = 0;
            zmq_z85_decode(list->entries[list->n++].key, keys.public_z85);
        }
    }
    closedir(d);
    return rc;
}

/* The allowlist of dir (and, when given, the read-only keys of read_only_dir). */
static int
allowlist_load(
    const char *dir, const char *read_only_dir, struct allowlist *out, char *err, size_t err_len)
{
    struct allowlist list = {NULL, 0};
    size_t cap = 0;
    int rc = allowlist_add_dir(dir, false, &list, &cap, err, err_len);

    if (rc == 0 && read_only_dir && read_only_dir[0])
        rc = allowlist_add_dir(read_only_dir, true, &list, &cap, err, err_len);
    if (rc == 0)
        qsort(list.entries, list.n, sizeof(*list.entries), compare_key);
    for (size_t i = 1; rc == 0 && i < list.n; i++) {
        /* One key is one host (or one operator, with one role): a key bound to two names
         * would let one agent speak for both. */
        const struct allow_entry *a = &list.entries[i - 1], *b = &list.entries[i];
        if (compare_key(a, b) == 0 &&
            (strcmp(a->name, b->name) != 0 || a->read_only != b->read_only)) {
            snprintf(err, err_len, "%s: one key is bound to both %s%s and %s%s", dir, a->name,
                     a->read_only ? " (read-only)" : "", b->name,
                     b->read_only ? " (read-only)" : "");
            rc = -EINVAL;
        }
    }
    if (rc < 0) {
        free(list.entries);
        return rc;
    }
    free(out->entries);
    *out = list;
    return 0;
}

int
transport_allowlist_check(
    const char *dir, const char *read_only_dir, size_t *n_keys, char *err, size_t err_len)
{
    struct allowlist list = {NULL, 0};
    int rc = allowlist_load(dir, read_only_dir, &list, err, err_len);

    if (rc == 0 && n_keys)
        *n_keys = list.n;
    free(list.entries);
    return rc;
}

/* ---- server ---- */

struct transport_server {
    void *socket;
    bool curve;
    char zap_domain[64];
    char allow_dir[4096];
    char read_only_dir[4096];
    struct allowlist allow;
    struct transport_server_stats stats;
};

static int64_t now_ms(void);

static int
zap_start(char *err, size_t err_len)
{
    if (zap_users++ > 0)
        return 0;
    zap_socket = zmq_socket(get_context(), ZMQ_REP);
    if (!zap_socket || zmq_bind(zap_socket, ZAP_ENDPOINT) != 0) {
        int rc = zmq_error(err, err_len, "zap handler");
        if (zap_socket)
            zmq_close(zap_socket);
        zap_socket = NULL;
        zap_users = 0;
        return rc;
    }
    return 0;
}

static void
zap_stop(void)
{
    if (zap_users == 0 || --zap_users > 0)
        return;
    /* Unbinding an inproc endpoint frees its name at once; a close alone frees it only when
     * libzmq's reaper gets to the socket, and a server opened right after (a restart, the next
     * test) would find the ZAP endpoint still taken (EADDRINUSE under load). */
    zmq_unbind(zap_socket, ZAP_ENDPOINT);
    zmq_close(zap_socket);
    zap_socket = NULL;
}

static int
setsockopt_int(void *socket, int option, int value)
{
    return zmq_setsockopt(socket, option, &value, sizeof(value));
}

static int
server_secure(struct transport_server *s,
              const struct transport_server_options *opts,
              char *err,
              size_t err_len)
{
    struct transport_keys keys;
    int rc = transport_keys_load(opts->key_path, &keys, true, err, err_len);

    if (rc < 0)
        return rc;
    snprintf(s->allow_dir, sizeof(s->allow_dir), "%s", opts->allow_dir ? opts->allow_dir : "");
    snprintf(s->read_only_dir, sizeof(s->read_only_dir), "%s",
             opts->read_only_dir ? opts->read_only_dir : "");
    rc = allowlist_load(s->allow_dir, s->read_only_dir, &s->allow, err, err_len);
    if (rc < 0)
        return rc;
    rc = zap_start(err, err_len);
    if (rc < 0)
        return rc;
    s->curve = true;
    snprintf(s->zap_domain, sizeof(s->zap_domain), "%s",
             opts->zap_domain && opts->zap_domain[0] ? opts->zap_domain : ZAP_DOMAIN);
    if (setsockopt_int(s->socket, ZMQ_CURVE_SERVER, 1) != 0 ||
        zmq_setsockopt(s->socket, ZMQ_CURVE_SECRETKEY, keys.secret_z85, TRANSPORT_KEY_Z85_LEN) !=
            0 ||
        zmq_setsockopt(s->socket, ZMQ_ZAP_DOMAIN, s->zap_domain, strlen(s->zap_domain)) != 0)
        return zmq_error(err, err_len, "curve server");
    return 0;
}

/* libzmq unlinks whatever file sits at an ipc:// path before it binds: right for a socket left
 * by a daemon that died, wrong for one a running daemon still listens on (a second coordinator
 * would silently take its control socket). So a path someone answers on is refused. */
static int
refuse_ipc_in_use(const char *endpoint, char *err, size_t err_len)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    const char *path = endpoint + 6;
    int fd, rc;

    if (strncmp(endpoint, "ipc://", 6) != 0 || strlen(path) >= sizeof(addr.sun_path))
        return 0;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    rc = connect(fd, (const struct sockaddr *)&addr, sizeof(addr));
    close(fd);
    if (rc != 0)
        return 0; /* nobody there (or no file): a stale file is libzmq's to remove */
    return util_fail(-EADDRINUSE, err, err_len,
                     "%s: another process is listening on it (is a coordinator already running?)",
                     endpoint);
}

int
transport_server_open(const struct transport_server_options *opts,
                      struct transport_server **out,
                      char *err,
                      size_t err_len)
{
    struct transport_server *s = util_xcalloc(1, sizeof(*s));
    int rc = refuse_insecure(opts->endpoint, opts->insecure, err, err_len);

    if (rc == 0)
        rc = refuse_ipc_in_use(opts->endpoint, err, err_len);

    s->socket = zmq_socket(get_context(), ZMQ_ROUTER);
    if (!s->socket)
        rc = zmq_error(err, err_len, "router socket");
    if (rc == 0 && !opts->insecure)
        rc = server_secure(s, opts, err, err_len);
    if (rc == 0) {
        /* Peers send requests and reports, never more than the largest legal report: a larger
         * message closes its connection before a byte of it is kept. */
        int64_t max = WIRE_REQUEST_MAX_BYTES;
        zmq_setsockopt(s->socket, ZMQ_MAXMSGSIZE, &max, sizeof(max));
        setsockopt_int(s->socket, ZMQ_ROUTER_MANDATORY, 1); /* unknown peer: an error, not loss */
        setsockopt_int(s->socket, ZMQ_SNDHWM, 1000);
        /* An agent sends a report a round: a deep queue per connection would only let one
         * admitted key make the coordinator buffer gigabytes. */
        setsockopt_int(s->socket, ZMQ_RCVHWM, SERVER_RCVHWM);
        setsockopt_int(s->socket, ZMQ_LINGER, 0);
        setsockopt_int(s->socket, ZMQ_HEARTBEAT_IVL, HEARTBEAT_IVL_MS);
        setsockopt_int(s->socket, ZMQ_HEARTBEAT_TTL, HEARTBEAT_TTL_MS);
        setsockopt_int(s->socket, ZMQ_HEARTBEAT_TIMEOUT, HEARTBEAT_TTL_MS);
        /* An ipc socket file is made with the mode it is meant to have, not opened up by the
         * umask until the chmod below: zmq_bind creates it in this thread. */
        bool ipc = opts->ipc_mode && strncmp(opts->endpoint, "ipc://", 6) == 0;
        mode_t old_umask = ipc ? umask((mode_t)~opts->ipc_mode & 0777) : 0;
        if (zmq_bind(s->socket, opts->endpoint) != 0)
            rc = zmq_error(err, err_len, opts->endpoint);
        if (ipc)
            umask(old_umask);
    }
    if (rc == 0 && opts->ipc_mode && strncmp(opts->endpoint, "ipc://", 6) == 0 &&
        chmod(opts->endpoint + 6, (mode_t)opts->ipc_mode) != 0) {
        rc = -errno;
        snprintf(err, err_len, "%s: chmod: %s", opts->endpoint, strerror(errno));
    }
    if (rc < 0) {
        transport_server_close(&s);
        return rc;
    }
    s->stats.keys_allowed = s->allow.n;
    *out = s;
    return 0;
}

void
transport_server_close(struct transport_server **server)
{
    if (!server || !*server)
        return;
    if ((*server)->socket)
        zmq_close((*server)->socket);
    if ((*server)->curve)
        zap_stop();
    free((*server)->allow.entries);
    free(*server);
    *server = NULL;
}

int
transport_server_reload_allowlist(struct transport_server *s, char *err, size_t err_len)
{
    if (!s->curve)
        return 0;
    int rc = allowlist_load(s->allow_dir, s->read_only_dir, &s->allow, err, err_len);
    if (rc == 0)
        s->stats.keys_allowed = s->allow.n;
    return rc;
}

int
transport_server_endpoint(const struct transport_server *s, char *buf, size_t len)
{
    return zmq_getsockopt(s->socket, ZMQ_LAST_ENDPOINT, buf, &len) == 0 ? 0 : -errno;
}

void
transport_server_get_stats(const struct transport_server *s, struct transport_server_stats *stats)
{
    *stats = s->stats;
}

/* The server a ZAP request is about: the CURVE server of that ZAP domain. */
static struct transport_server *
curve_server(struct transport_server **servers, size_t n, zmq_msg_t *domain)
{
    for (size_t i = 0; i < n; i++) {
        if (servers[i]->curve && zmq_msg_size(domain) == strlen(servers[i]->zap_domain) &&
            memcmp(zmq_msg_data(domain), servers[i]->zap_domain, zmq_msg_size(domain)) == 0)
            return servers[i];
    }
    return NULL;
}

/* Who was refused, for the log: the peer's address and public key (both as text). */
static void
note_refused(struct transport_server *s, zmq_msg_t *address, zmq_msg_t *key)
{
    size_t n = zmq_msg_size(address);

    s->stats.keys_refused++;
    if (n >= sizeof(s->stats.refused_address))
        n = sizeof(s->stats.refused_address) - 1;
    memcpy(s->stats.refused_address, zmq_msg_data(address), n);
    s->stats.refused_address[n] = '\0';
    for (size_t i = 0; i < n; i++) { /* an address is printable; keep the log line so */
        char ch = s->stats.refused_address[i];
        if (ch < 0x20 || ch > 0x7e)
            s->stats.refused_address[i] = '?';
    }
    s->stats.refused_key_z85[0] = '\0';
    if (zmq_msg_size(key) == KEY_BYTES)
        zmq_z85_encode(s->stats.refused_key_z85, zmq_msg_data(key), KEY_BYTES);
}

/* One ZAP request (RFC 27): version, id, domain, address, identity, mechanism, key. */
static void
answer_zap(struct transport_server **servers, size_t n)
{
    zmq_msg_t frames[7];
    int count = 0, more = 1;

    while (more && count < 7) {
        zmq_msg_init(&frames[count]);
        if (zmq_msg_recv(&frames[count], zap_socket, ZMQ_DONTWAIT) < 0)
            break;
        more = zmq_msg_more(&frames[count++]);
    }
    while (more) { /* a malformed request: drain it */
        zmq_msg_t extra;
        zmq_msg_init(&extra);
        zmq_msg_recv(&extra, zap_socket, 0);
        more = zmq_msg_more(&extra);
        zmq_msg_close(&extra);
    }
    struct transport_server *s = count == 7 ? curve_server(servers, n, &frames[2]) : NULL;
    struct allow_entry *entry = count == 7 && s && zmq_msg_size(&frames[5]) == 5 &&
                                        memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) == 0 &&
                                        zmq_msg_size(&frames[6]) == KEY_BYTES
                                    ? allowlist_find(&s->allow, zmq_msg_data(&frames[6]))
                                    : NULL;
    bool ok = entry != NULL, throttled = false;
    if (entry) {
        /* One key may not open connections without end: a bucket of handshakes per key. */
        int64_t now = now_ms();
        if (!entry->filled_ms)
            entry->filled_ms = now;
        int64_t back = (now - entry->filled_ms) / HANDSHAKE_EVERY_MS;
        if (back > 0) {
            entry->handshakes =
                (uint32_t)(entry->handshakes + back > HANDSHAKE_BURST ? HANDSHAKE_BURST
                                                                      : entry->handshakes + back);
            entry->filled_ms += back * HANDSHAKE_EVERY_MS;
        }
        if (entry->handshakes == 0) {
            throttled = true;
            ok = false;
            s->stats.handshakes_throttled++;
        } else {
            entry->handshakes--;
        }
    }
    char user[TRANSPORT_KEY_Z85_LEN] = "";
    if (ok)
        zmq_z85_encode(user, zmq_msg_data(&frames[6]), KEY_BYTES);
    else if (s && !throttled)
        note_refused(s, &frames[3], &frames[6]);
    const char *id = count > 1 ? zmq_msg_data(&frames[1]) : "";
    size_t id_len = count > 1 ? zmq_msg_size(&frames[1]) : 0;
    zmq_send(zap_socket, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(zap_socket, id, id_len, ZMQ_SNDMORE);
    zmq_send(zap_socket, ok ? "200" : "400", 3, ZMQ_SNDMORE);
    zmq_send(zap_socket, ok ? "OK" : "key not allowed", ok ? 2 : 15, ZMQ_SNDMORE);
    zmq_send(zap_socket, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(zap_socket, "", 0, 0);
    for (int i = 0; i < count; i++)
        zmq_msg_close(&frames[i]);
}

/* One routed message: [routing id][payload]. Anything else is drained and dropped. */
static int
take_message(struct transport_server *s, struct transport_peer *from, uint8_t **buf, size_t *len)
{
    zmq_msg_t id, body;
    int rc = 0;

    zmq_msg_init(&id);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&id, s->socket, ZMQ_DONTWAIT) < 0) {
        rc = errno == EAGAIN ? 0 : -errno;
        goto out;
    }
    if (!zmq_msg_more(&id) || zmq_msg_recv(&body, s->socket, ZMQ_DONTWAIT) < 0 ||
        zmq_msg_more(&body) || zmq_msg_size(&id) > TRANSPORT_ID_MAX) {
        int more = zmq_msg_more(&body);
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            zmq_msg_recv(&extra, s->socket, 0);
            more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
        }
        rc = 0; /* not ours: dropped */
        goto out;
    }
    from->id_len = zmq_msg_size(&id);
    memcpy(from->id, zmq_msg_data(&id), from->id_len);
    from->key_z85[0] = from->name[0] = '\0';
    from->read_only = false;
    from->uid = -1;
    /* Over ipc, libzmq appends the peer's SO_PEERCRED to its address: ":uid:gid:pid". */
    const char *address = zmq_msg_gets(&body, "Peer-Address");
    const char *cred = address ? strchr(address, ':') : NULL;
    long uid;
    if (cred && sscanf(cred, ":%ld:", &uid) == 1 && uid >= 0)
        from->uid = uid;
    if (s->curve) {
        /* The key was allowed at its handshake; the name is looked up now, so a key removed
         * from the allowlist since then speaks for nobody. */
        const char *user = zmq_msg_gets(&body, "User-Id");
        uint8_t key[KEY_BYTES];
        const struct allow_entry *entry = user && z85_key_valid(user) && zmq_z85_decode(key, user)
                                              ? allowlist_find(&s->allow, key)
                                              : NULL;
        if (!entry) {
            s->stats.unlisted++;
            rc = 0;
            goto out;
        }
        snprintf(from->key_z85, sizeof(from->key_z85), "%s", user);
        snprintf(from->name, sizeof(from->name), "%s", entry->name);
        from->read_only = entry->read_only;
    }
    *len = zmq_msg_size(&body);
    *buf = util_xmalloc(*len);
    memcpy(*buf, zmq_msg_data(&body), *len);
    s->stats.received++;
    rc = 1;
out:
    zmq_msg_close(&id);
    zmq_msg_close(&body);
    return rc;
}

int
transport_server_take(struct transport_server *s,
                      struct transport_peer *from,
                      uint8_t **buf,
                      size_t *len)
{
    int rc = take_message(s, from, buf, len);
    return rc < 0 ? 0 : rc; /* an error shows again at the next poll, which reports it */
}

int
transport_server_recv(struct transport_server **servers,
                      size_t n,
                      int timeout_ms,
                      size_t *which,
                      struct transport_peer *from,
                      uint8_t **buf,
                      size_t *len)
{
    return transport_server_poll(servers, n, -1, timeout_ms, which, from, buf, len);
}

int
transport_server_poll(struct transport_server **servers,
                      size_t n,
                      int wake_fd,
                      int timeout_ms,
                      size_t *which,
                      struct transport_peer *from,
                      uint8_t **buf,
                      size_t *len)
{
    zmq_pollitem_t items[MAX_SERVERS + 2];
    size_t n_items = 0, zap_item = 0, wake_item = 0;

    if (n > MAX_SERVERS)
        return -E2BIG;
    for (size_t i = 0; i < n; i++)
        items[n_items++] = (zmq_pollitem_t){.socket = servers[i]->socket, .events = ZMQ_POLLIN};
    if (zap_socket) {
        zap_item = n_items;
        items[n_items++] = (zmq_pollitem_t){.socket = zap_socket, .events = ZMQ_POLLIN};
    }
    if (wake_fd >= 0) {
        wake_item = n_items;
        items[n_items++] = (zmq_pollitem_t){.fd = wake_fd, .events = ZMQ_POLLIN};
    }
    for (;;) {
        int ready = zmq_poll(items, (int)n_items, timeout_ms);
        if (ready < 0)
            return -errno;
        if (ready == 0)
            return 0;
        if (zap_socket && (items[zap_item].revents & ZMQ_POLLIN))
            answer_zap(servers, n);
        if (wake_fd >= 0 && (items[wake_item].revents & ZMQ_POLLIN))
            return 2;
        /* Start each look at the next server, so a busy one (agents under load) cannot starve
         * a quiet one (the operator's control socket). */
        static size_t first;
        first = (first + 1) % n;
        for (size_t k = 0; k < n; k++) {
            size_t i = (first + k) % n;
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            int rc = take_message(servers[i], from, buf, len);
            if (rc != 0) {
                *which = i;
                return rc;
            }
        }
        timeout_ms = 0; /* only ZAP or dropped frames so far: look again without waiting */
    }
}

int
transport_server_send(struct transport_server *s,
                      const struct transport_peer *to,
                      const uint8_t *buf,
                      size_t len)
{
    if (zmq_send(s->socket, to->id, to->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(s->socket, buf, len, ZMQ_DONTWAIT) < 0) {
        int rc = errno == EAGAIN ? -EAGAIN : -EHOSTUNREACH;
        s->stats.send_failures++;
        return rc;
    }
    s->stats.sent++;
    return 0;
}

/* ---- client ---- */

struct queued {
    uint8_t *buf;
    size_t len;
};

struct transport_client {
    void *socket;
    void *monitor;
    char endpoint[512];
    bool insecure;
    struct transport_keys server_key;
    struct transport_keys my_keys;
    int64_t rebuild_at_ms; /* after a refused handshake: when to start over (0 = not due) */
    int64_t rebuild_backoff_ms;
    struct queued *queue; /* ring of queue_max messages, oldest at head */
    size_t queue_max;
    size_t head;
    size_t count;
    struct transport_client_stats stats;
};

static int
load_client_keys(struct transport_client *c,
                 const struct transport_client_options *opts,
                 char *err,
                 size_t err_len)
{
    int rc = transport_keys_load(opts->server_key_path, &c->server_key, false, err, err_len);
    return rc ? rc : transport_keys_load(opts->key_path, &c->my_keys, true, err, err_len);
}

static int
client_secure(struct transport_client *c, char *err, size_t err_len)
{
    if (zmq_setsockopt(c->socket, ZMQ_CURVE_SERVERKEY, c->server_key.public_z85,
                       TRANSPORT_KEY_Z85_LEN) ||
        zmq_setsockopt(c->socket, ZMQ_CURVE_PUBLICKEY, c->my_keys.public_z85,
                       TRANSPORT_KEY_Z85_LEN) ||
        zmq_setsockopt(c->socket, ZMQ_CURVE_SECRETKEY, c->my_keys.secret_z85,
                       TRANSPORT_KEY_Z85_LEN))
        return zmq_error(err, err_len, "curve client");
    return 0;
}

/* Connection state comes from the socket monitor: handshakes, disconnects. */
static int
client_monitor(struct transport_client *c, char *err, size_t err_len)
{
    char endpoint[64];

    static unsigned serial;
    snprintf(endpoint, sizeof(endpoint), "inproc://memsched-monitor-%p-%u", (void *)c, serial++);
    if (zmq_socket_monitor(c->socket, endpoint,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return zmq_error(err, err_len, "monitor");
    c->monitor = zmq_socket(get_context(), ZMQ_PAIR);
    if (!c->monitor || zmq_connect(c->monitor, endpoint) != 0)
        return zmq_error(err, err_len, "monitor");
    return 0;
}

static void
close_sockets(struct transport_client *c)
{
    if (c->socket) {
        zmq_socket_monitor(c->socket, NULL, 0);
        zmq_close(c->socket);
    }
    if (c->monitor)
        zmq_close(c->monitor);
    c->socket = c->monitor = NULL;
    c->stats.connected = false;
}

/* A DEALER with its options, monitor and connection; the queue is kept across rebuilds. */
static int
build_socket(struct transport_client *c, char *err, size_t err_len)
{
    int rc = 0;

    c->socket = zmq_socket(get_context(), ZMQ_DEALER);
    if (!c->socket)
        return zmq_error(err, err_len, "dealer socket");
    if (!c->insecure)
        rc = client_secure(c, err, err_len);
    if (rc == 0) {
        int64_t max = WIRE_MSG_MAX_BYTES;
        zmq_setsockopt(c->socket, ZMQ_MAXMSGSIZE, &max, sizeof(max));
        setsockopt_int(c->socket, ZMQ_IMMEDIATE, 1); /* queue only in our ring, not in zmq */
        setsockopt_int(c->socket, ZMQ_SNDHWM, SEND_HWM);
        setsockopt_int(c->socket, ZMQ_LINGER, 0);
        setsockopt_int(c->socket, ZMQ_RECONNECT_IVL_MAX, RECONNECT_MAX_MS);
        setsockopt_int(c->socket, ZMQ_HEARTBEAT_IVL, HEARTBEAT_IVL_MS);
        setsockopt_int(c->socket, ZMQ_HEARTBEAT_TTL, HEARTBEAT_TTL_MS);
        setsockopt_int(c->socket, ZMQ_HEARTBEAT_TIMEOUT, HEARTBEAT_TTL_MS);
        rc = client_monitor(c, err, err_len);
    }
    if (rc == 0 && zmq_connect(c->socket, c->endpoint) != 0)
        rc = zmq_error(err, err_len, c->endpoint);
    return rc;
}

int
transport_client_open(const struct transport_client_options *opts,
                      struct transport_client **out,
                      char *err,
                      size_t err_len)
{
    struct transport_client *c = util_xcalloc(1, sizeof(*c));
    int rc = refuse_insecure(opts->endpoint, opts->insecure, err, err_len);

    c->queue_max = opts->queue_max ? opts->queue_max : QUEUE_DEFAULT;
    c->queue = util_xcalloc(c->queue_max, sizeof(*c->queue));
    c->insecure = opts->insecure;
    if (rc == 0 && snprintf(c->endpoint, sizeof(c->endpoint), "%s", opts->endpoint) >=
                       (int)sizeof(c->endpoint)) {
        snprintf(err, err_len, "endpoint too long");
        rc = -EINVAL;
    }
    if (rc == 0 && !opts->insecure)
        rc = load_client_keys(c, opts, err, err_len);
    if (rc == 0)
        rc = build_socket(c, err, err_len);
    if (rc < 0) {
        transport_client_close(&c);
        return rc;
    }
    *out = c;
    return 0;
}

void
transport_client_close(struct transport_client **client)
{
    struct transport_client *c = client ? *client : NULL;

    if (!c)
        return;
    close_sockets(c);
    for (size_t i = 0; i < c->count; i++)
        free(c->queue[(c->head + i) % c->queue_max].buf);
    free(c->queue);
    free(c);
    *client = NULL;
}


/* libzmq does not always retry a handshake the server refused (libzmq issue 3519): after a
 * refusal the client starts over with a fresh socket, backing off to 30 s, so an agent whose key
 * is added to the allowlist later gets in without a restart. */
static void
schedule_rebuild(struct transport_client *c)
{
    c->rebuild_backoff_ms = c->rebuild_backoff_ms ? c->rebuild_backoff_ms * 2 : 1000;
    if (c->rebuild_backoff_ms > 30000)
        c->rebuild_backoff_ms = 30000;
    c->rebuild_at_ms = now_ms() + c->rebuild_backoff_ms;
}

static void
rebuild_if_due(struct transport_client *c)
{
    char err[TRANSPORT_ERR_MAX];

    if (!c->rebuild_at_ms || now_ms() < c->rebuild_at_ms || c->stats.connected)
        return;
    c->rebuild_at_ms = 0;
    close_sockets(c);
    if (build_socket(c, err, sizeof(err)) < 0) {
        close_sockets(c);
        schedule_rebuild(c); /* try again later; the queue is kept */
    }
}

static void
read_monitor(struct transport_client *c)
{
    zmq_msg_t event, address;

    while (c->monitor) {
        zmq_msg_init(&event);
        if (zmq_msg_recv(&event, c->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&event);
            return;
        }
        uint16_t id = 0;
        if (zmq_msg_size(&event) >= 2)
            memcpy(&id, zmq_msg_data(&event), sizeof(id));
        zmq_msg_close(&event);
        zmq_msg_init(&address); /* every event is followed by its endpoint */
        zmq_msg_recv(&address, c->monitor, 0);
        zmq_msg_close(&address);
        if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            c->stats.connected = true;
            c->stats.connects++;
            c->rebuild_backoff_ms = 0;
            c->rebuild_at_ms = 0;
        } else if (id == ZMQ_EVENT_DISCONNECTED) {
            c->stats.disconnects += c->stats.connected;
            c->stats.connected = false;
        } else {
            c->stats.handshake_failures++;
            schedule_rebuild(c);
        }
    }
}

/* Hand queued messages to ZeroMQ while it takes them (only with a connection up). */
static void
flush(struct transport_client *c)
{
    read_monitor(c);
    rebuild_if_due(c);
    if (!c->socket)
        return;
    while (c->count > 0) {
        struct queued *q = &c->queue[c->head];
        if (zmq_send(c->socket, q->buf, q->len, ZMQ_DONTWAIT) < 0)
            return;
        free(q->buf);
        q->buf = NULL;
        c->head = (c->head + 1) % c->queue_max;
        c->count--;
        c->stats.sent++;
    }
}

int
transport_client_send(struct transport_client *c, const uint8_t *buf, size_t len)
{
    if (c->count == c->queue_max) {
        /* Reports are absolute snapshots: the newest matters, the oldest goes. */
        free(c->queue[c->head].buf);
        c->head = (c->head + 1) % c->queue_max;
        c->count--;
        c->stats.dropped++;
    }
    struct queued *q = &c->queue[(c->head + c->count) % c->queue_max];
    q->buf = util_xmalloc(len);
    memcpy(q->buf, buf, len);
    q->len = len;
    c->count++;
    flush(c);
    return 0;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
take_reply(struct transport_client *c, uint8_t **buf, size_t *len)
{
    zmq_msg_t msg;

    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, c->socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return errno == EAGAIN ? 0 : -errno;
    }
    *len = zmq_msg_size(&msg);
    *buf = util_xmalloc(*len);
    memcpy(*buf, zmq_msg_data(&msg), *len);
    zmq_msg_close(&msg);
    return 1;
}

int
transport_client_recv(struct transport_client *c, int timeout_ms, uint8_t **buf, size_t *len)
{
    bool forever = timeout_ms < 0;
    int64_t deadline = now_ms() + (forever ? 0 : timeout_ms);

    for (;;) {
        zmq_pollitem_t items[2] = {{.socket = c->socket, .events = ZMQ_POLLIN},
                                   {.socket = c->monitor, .events = ZMQ_POLLIN}};
        int64_t left = forever ? -1 : deadline - now_ms();
        if (!forever && left < 0)
            left = 0;
        flush(c);
        if (!c->socket) { /* between a refused handshake and the rebuild */
            struct timespec nap = {0, 50 * 1000 * 1000};
            if (left == 0)
                return 0;
            nanosleep(&nap, NULL);
            continue;
        }
        items[0].socket = c->socket;
        items[1].socket = c->monitor;
        /* A connection event wakes us to flush the queue; keep waiting for a message after. */
        if (zmq_poll(items, 2, (long)left) < 0)
            return -errno;
        flush(c);
        if (items[0].revents & ZMQ_POLLIN)
            return take_reply(c, buf, len);
        if (left == 0)
            return 0;
    }
}

void
transport_client_get_stats(struct transport_client *c, struct transport_client_stats *stats)
{
    read_monitor(c);
    *stats = c->stats;
}

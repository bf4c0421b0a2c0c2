/*
 * test_transport.c - real ZeroMQ sockets on loopback: CURVE with the ZAP allowlist, a pinned
 * server key, the insecure rule, the client's bounded queue, replies, allowlist reload.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "transport.h"
#include "wire.h"

#define WAIT_MS  15000 /* for what must arrive: headroom on a loaded 2-core machine */
#define QUIET_MS 5000  /* for what must not: as long as it waited before */

static char dir[] = "/tmp/memsched-transport-XXXXXX";
static char allow_dir[600];

/* Key files for a name: NAME.secret (pair) and, when allowed, allow/NAME.key (public). */
static void
make_keys(const char *name, bool allowed, struct transport_keys *keys)
{
    char path[700], err[TRANSPORT_ERR_MAX];

    assert_int_equal(transport_keygen(keys), 0);
    snprintf(path, sizeof(path), "%s/%s.secret", dir, name);
    assert_int_equal(transport_keys_save(path, keys, true, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/%s.pub", dir, name);
    assert_int_equal(transport_keys_save(path, keys, false, err, sizeof(err)), 0);
    if (allowed) {
        snprintf(path, sizeof(path), "%s/%s.key", allow_dir, name);
        assert_int_equal(transport_keys_save(path, keys, false, err, sizeof(err)), 0);
    }
}

static char *
path_of(const char *name, const char *ext)
{
    static char paths[4][700];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof(paths[0]), "%s/%s.%s", dir, name, ext);
    return p;
}

static struct transport_server *
open_server(char *endpoint, size_t len)
{
    struct transport_server *s;
    char err[TRANSPORT_ERR_MAX];
    struct transport_server_options o = {
        .endpoint = "tcp://127.0.0.1:*",
        .key_path = path_of("server", "secret"),
        .allow_dir = allow_dir,
    };
    if (transport_server_open(&o, &s, err, sizeof(err)) != 0)
        fail_msg("server: %s", err);
    assert_int_equal(transport_server_endpoint(s, endpoint, len), 0);
    return s;
}

static struct transport_client *
open_client(const char *endpoint, const char *name, const char *server_pub, size_t queue_max)
{
    struct transport_client *c;
    char err[TRANSPORT_ERR_MAX];
    struct transport_client_options o = {
        .endpoint = endpoint,
        .server_key_path = server_pub,
        .key_path = path_of(name, "secret"),
        .queue_max = queue_max,
    };
    if (transport_client_open(&o, &c, err, sizeof(err)) != 0)
        fail_msg("client %s: %s", name, err);
    return c;
}

/* Receive one message within wait_ms, or return 0. The client is pumped meanwhile: its queue
 * moves to ZeroMQ only when it is polled, as the agent does between rounds. */
static int
serve_within(struct transport_server *s,
             struct transport_client *c,
             struct transport_peer *from,
             char *text,
             size_t len,
             int wait_ms)
{
    for (int waited = 0; waited < wait_ms; waited += 20) {
        uint8_t *buf;
        size_t n, which;
        if (c && transport_client_recv(c, 10, &buf, &n) == 1)
            free(buf); /* not expected here */
        int rc = transport_server_recv(&s, 1, 10, &which, from, &buf, &n);
        if (rc == 1) {
            snprintf(text, len, "%.*s", (int)n, (const char *)buf);
            free(buf);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
serve_from(struct transport_server *s,
           struct transport_client *c,
           struct transport_peer *from,
           char *text,
           size_t len)
{
    return serve_within(s, c, from, text, len, WAIT_MS);
}

static void
test_allowed_key_gets_in_and_is_named(void **state)
{
    struct transport_keys a;
    char endpoint[128], text[64];
    struct transport_peer from;
    (void)state;

    make_keys("agent-a", true, &a);
    struct transport_server *s = open_server(endpoint, sizeof(endpoint));
    struct transport_client *c = open_client(endpoint, "agent-a", path_of("server", "pub"), 0);
    transport_client_send(c, (const uint8_t *)"hello", 5);
    assert_int_equal(serve_from(s, c, &from, text, sizeof(text)), 1);
    assert_string_equal(text, "hello");
    assert_string_equal(from.key_z85, a.public_z85);
    assert_string_equal(from.name, "agent-a"); /* the allowlist file's stem */

    /* The reply finds its way back over the same connection. */
    assert_int_equal(transport_server_send(s, &from, (const uint8_t *)"welcome", 7), 0);
    uint8_t *buf;
    size_t n;
    assert_int_equal(transport_client_recv(c, WAIT_MS, &buf, &n), 1);
    assert_memory_equal(buf, "welcome", 7);
    free(buf);
    transport_client_close(&c);
    transport_server_close(&s);
}

static void
test_unknown_key_refused_then_allowed_after_reload(void **state)
{
    struct transport_keys b;
    char endpoint[128], text[64], err[TRANSPORT_ERR_MAX], path[700];
    struct transport_peer from;
    struct transport_server_stats stats;
    (void)state;

    make_keys("agent-b", false, &b);
    struct transport_server *s = open_server(endpoint, sizeof(endpoint));
    struct transport_client *c = open_client(endpoint, "agent-b", path_of("server", "pub"), 0);
    transport_client_send(c, (const uint8_t *)"let me in", 9);
    /* nothing gets through */
    assert_int_equal(serve_within(s, c, &from, text, sizeof(text), QUIET_MS), 0);
    transport_server_get_stats(s, &stats);
    assert_true(stats.keys_refused >= 1);
    /* Who knocked, for the coordinator's log: its address and public key. */
    assert_string_equal(stats.refused_address, "127.0.0.1");
    assert_string_equal(stats.refused_key_z85, b.public_z85);

    snprintf(path, sizeof(path), "%s/agent-b.key", allow_dir);
    assert_int_equal(transport_keys_save(path, &b, false, err, sizeof(err)), 0);
    assert_int_equal(transport_server_reload_allowlist(s, err, sizeof(err)), 0);
    /* The client retries by itself (backing off to 30 s); its queued message arrives once
     * it is admitted. */
    assert_int_equal(serve_within(s, c, &from, text, sizeof(text), 35000), 1);
    assert_string_equal(text, "let me in");
    transport_client_close(&c);
    transport_server_close(&s);
}

static void
test_wrong_server_key_never_connects(void **state)
{
    struct transport_keys impostor, c_keys;
    char endpoint[128], text[64];
    struct transport_peer from;
    struct transport_client_stats cs;
    (void)state;

    make_keys("impostor", false, &impostor);
    make_keys("agent-c", true, &c_keys);
    struct transport_server *s = open_server(endpoint, sizeof(endpoint));
    struct transport_client *c = open_client(endpoint, "agent-c", path_of("impostor", "pub"), 0);
    transport_client_send(c, (const uint8_t *)"secret", 6);
    assert_int_equal(serve_within(s, c, &from, text, sizeof(text), QUIET_MS), 0);
    transport_client_get_stats(c, &cs);
    assert_false(cs.connected);
    assert_int_equal(cs.sent, 0); /* still queued: never handed to an unverified server */
    /* Quiet because it failed, not because nothing was tried: the handshake was attempted. */
    assert_true(cs.handshake_failures > 0);
    transport_client_close(&c);
    transport_server_close(&s);
}

static void
test_queue_drops_oldest_and_delivers_newest(void **state)
{
    struct transport_keys d;
    char endpoint[128], text[64], msg[16];
    struct transport_peer from;
    struct transport_client_stats cs;
    (void)state;

    make_keys("agent-d", true, &d);
    /* Learn a free port, close, and let the client queue while nobody listens there. */
    struct transport_server *s = open_server(endpoint, sizeof(endpoint));
    transport_server_close(&s);
    struct transport_client *c = open_client(endpoint, "agent-d", path_of("server", "pub"), 4);
    for (int i = 0; i < 20; i++) {
        snprintf(msg, sizeof(msg), "report-%02d", i);
        assert_int_equal(transport_client_send(c, (const uint8_t *)msg, strlen(msg)), 0);
    }
    transport_client_get_stats(c, &cs);
    assert_int_equal(cs.dropped, 16);

    struct transport_server_options o = {
        .endpoint = endpoint, .key_path = path_of("server", "secret"), .allow_dir = allow_dir};
    char err[TRANSPORT_ERR_MAX];
    int rc;
    /* The old socket lets go of the port asynchronously: retry the bind for a while. */
    for (int tries = 0; (rc = transport_server_open(&o, &s, err, sizeof(err))) != 0 && tries < 50;
         tries++)
        usleep(100 * 1000);
    if (rc != 0)
        fail_msg("rebind %s: %s", endpoint, err);
    for (int i = 16; i < 20; i++) {
        assert_int_equal(serve_from(s, c, &from, text, sizeof(text)), 1);
        snprintf(msg, sizeof(msg), "report-%02d", i);
        assert_string_equal(text, msg);
    }
    transport_client_close(&c);
    transport_server_close(&s);
}

static void
test_insecure_only_on_loopback(void **state)
{
    struct transport_server *s;
    struct transport_client *c;
    char err[TRANSPORT_ERR_MAX], endpoint[128];
    (void)state;

    struct transport_server_options wide = {.endpoint = "tcp://0.0.0.0:*", .insecure = true};
    assert_int_equal(transport_server_open(&wide, &s, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "loopback"));
    struct transport_client_options far = {.endpoint = "tcp://192.0.2.1:7400", .insecure = true};
    assert_int_equal(transport_client_open(&far, &c, err, sizeof(err)), -EPERM);
    /* Only literal loopback addresses: a name that starts like one is not. */
    static const char *const not_local[] = {
        "tcp://127.attacker.example:7400",
        "tcp://localhost:7400",
        "tcp://lo:7400",
        "tcp://127.0.0.1;192.0.2.1:7400",
        "tcp://[::2]:7400",
        "tcp://[::1:7400",
        "tcp://:7400",
        "tcp://127.0.0.1",
        "udp://127.0.0.1:7400",
    };
    for (size_t i = 0; i < sizeof(not_local) / sizeof(not_local[0]); i++) {
        if (transport_endpoint_is_local(not_local[i]))
            fail_msg("%s taken for a loopback address", not_local[i]);
    }
    static const char *const local_ones[] = {"tcp://127.0.0.1:7400", "tcp://127.1.2.3:*",
                                             "tcp://[::1]:7400", "ipc:///run/x.sock", "inproc://x"};
    for (size_t i = 0; i < sizeof(local_ones) / sizeof(local_ones[0]); i++) {
        if (!transport_endpoint_is_local(local_ones[i]))
            fail_msg("%s not taken for a loopback address", local_ones[i]);
    }
    struct transport_server_options named = {.endpoint = "tcp://127.attacker.example:*",
                                             .insecure = true};
    assert_int_equal(transport_server_open(&named, &s, err, sizeof(err)), -EPERM);

    struct transport_server_options local = {.endpoint = "tcp://127.0.0.1:*", .insecure = true};
    assert_int_equal(transport_server_open(&local, &s, err, sizeof(err)), 0);
    transport_server_endpoint(s, endpoint, sizeof(endpoint));
    struct transport_client_options near = {.endpoint = endpoint, .insecure = true};
    assert_int_equal(transport_client_open(&near, &c, err, sizeof(err)), 0);
    transport_client_send(c, (const uint8_t *)"plain", 5);
    struct transport_peer from;
    char text[16];
    assert_int_equal(serve_from(s, c, &from, text, sizeof(text)), 1);
    assert_string_equal(from.key_z85, "");
    transport_client_close(&c);
    transport_server_close(&s);
}

static void
test_bad_key_files(void **state)
{
    struct transport_keys k;
    char err[TRANSPORT_ERR_MAX], path[700];
    (void)state;

    snprintf(path, sizeof(path), "%s/bad.key", dir);
    FILE *f = fopen(path, "w");
    fputs("public = not-a-key\n", f);
    fclose(f);
    assert_int_equal(transport_keys_load(path, &k, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "Z85"));
    assert_int_not_equal(transport_keys_load(path_of("agent-a", "pub"), &k, true, err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "missing secret"));
    struct stat st;
    assert_int_equal(stat(path_of("agent-a", "secret"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A secret written where somebody pre-created a world-readable temporary file (the old
     * predictable NAME.tmp) still ends up 0600, and nothing is written through their file. */
    struct transport_keys fresh;
    char trap[740];
    assert_int_equal(transport_keygen(&fresh), 0);
    snprintf(path, sizeof(path), "%s/trapped.secret", dir);
    snprintf(trap, sizeof(trap), "%s.tmp", path);
    int fd = open(trap, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    assert_true(fd >= 0);
    fchmod(fd, 0666);
    close(fd);
    assert_int_equal(transport_keys_save(path, &fresh, true, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    if ((st.st_mode & 0777) != 0600)
        fail_msg("secret written with mode %o, want 600", (unsigned)(st.st_mode & 0777));
    assert_int_equal(stat(trap, &st), 0);
    assert_int_equal(st.st_size, 0); /* the trap stayed empty */
    assert_int_equal(transport_keys_load(path, &k, true, err, sizeof(err)), 0);

    /* A secret group or others can read is refused, not used. */
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(transport_keys_load(path, &k, true, err, sizeof(err)), -EPERM);
    assert_non_null(strstr(err, "readable by group or others"));
    assert_int_equal(chmod(path, 0604), 0);
    assert_int_equal(transport_keys_load(path, &k, false, err, sizeof(err)), -EPERM);
}

/* A key is bound to one name: a `name =` line wins over the file name; one key under two names
 * makes the allowlist invalid (the old one stays); a key removed by a reload speaks no more. */
static void
test_key_bound_to_one_name(void **state)
{
    struct transport_keys e;
    char endpoint[128], text[64], err[TRANSPORT_ERR_MAX], path[700];
    struct transport_peer from;
    struct transport_server_stats stats;
    (void)state;

    make_keys("agent-e", false, &e);
    snprintf(path, sizeof(path), "%s/whatever.key", allow_dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "public = %s\nname = hv-e\n", e.public_z85);
    fclose(f);
    struct transport_server *s = open_server(endpoint, sizeof(endpoint));
    struct transport_client *c = open_client(endpoint, "agent-e", path_of("server", "pub"), 0);
    transport_client_send(c, (const uint8_t *)"one", 3);
    assert_int_equal(serve_from(s, c, &from, text, sizeof(text)), 1);
    assert_string_equal(from.name, "hv-e");

    /* The same key under a second name: refused, the old list stays. */
    snprintf(path, sizeof(path), "%s/hv-other.key", allow_dir);
    assert_int_equal(transport_keys_save(path, &e, false, err, sizeof(err)), 0);
    assert_int_equal(transport_server_reload_allowlist(s, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "bound to both"));
    unlink(path);
    transport_client_send(c, (const uint8_t *)"two", 3);
    assert_int_equal(serve_from(s, c, &from, text, sizeof(text)), 1);
    assert_string_equal(from.name, "hv-e");

    /* Removed from the allowlist: the open connection's messages are dropped, counted. */
    snprintf(path, sizeof(path), "%s/whatever.key", allow_dir);
    unlink(path);
    assert_int_equal(transport_server_reload_allowlist(s, err, sizeof(err)), 0);
    transport_client_send(c, (const uint8_t *)"three", 5);
    assert_int_equal(serve_within(s, c, &from, text, sizeof(text), 1500), 0);
    transport_server_get_stats(s, &stats);
    assert_int_equal(stats.unlisted, 1);
    transport_client_close(&c);
    transport_server_close(&s);
}

/* Over ipc the server learns the sender's uid (SO_PEERCRED): who asks, not who it says it is. */
static void
test_ipc_peer_uid(void **state)
{
    struct transport_server *s;
    struct transport_client *c;
    struct transport_peer from;
    char err[TRANSPORT_ERR_MAX], endpoint[700], text[16];
    (void)state;

    snprintf(endpoint, sizeof(endpoint), "ipc://%s/uid.sock", dir);
    struct transport_server_options so = {.endpoint = endpoint, .insecure = true, .ipc_mode = 0600};
    assert_int_equal(transport_server_open(&so, &s, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(endpoint + 6, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct transport_client_options co = {.endpoint = endpoint, .insecure = true};
    assert_int_equal(transport_client_open(&co, &c, err, sizeof(err)), 0);
    transport_client_send(c, (const uint8_t *)"who", 3);
    assert_int_equal(serve_from(s, c, &from, text, sizeof(text)), 1);
    assert_int_equal(from.uid, (long)geteuid());
    assert_string_equal(from.name, "");
    transport_client_close(&c);
    transport_server_close(&s);
}

/* An ipc path left by a dead server is taken over; one a live server listens on is refused. */
static void
test_ipc_in_use_refused_stale_taken(void **state)
{
    struct transport_server *s, *second = NULL;
    char err[TRANSPORT_ERR_MAX] = "", endpoint[700];
    int fd;
    (void)state;

    snprintf(endpoint, sizeof(endpoint), "ipc://%s/ctl.sock", dir);
    struct transport_server_options so = {.endpoint = endpoint, .insecure = true, .ipc_mode = 0600};
    assert_int_equal(transport_server_open(&so, &s, err, sizeof(err)), 0);
    assert_int_equal(transport_server_open(&so, &second, err, sizeof(err)), -EADDRINUSE);
    assert_null(second);
    assert_non_null(strstr(err, "another process is listening"));
    transport_server_close(&s);

    /* What a killed daemon leaves: a socket file nobody listens on. */
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    assert_true(snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", endpoint + 6) <
                (int)sizeof(addr.sun_path));
    unlink(addr.sun_path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (const struct sockaddr *)&addr, sizeof(addr)), 0);
    close(fd);
    assert_int_equal(transport_server_open(&so, &s, err, sizeof(err)), 0);
    transport_server_close(&s);
}

/* A server takes at most WIRE_REQUEST_MAX_BYTES in one message: a larger one is never handed
 * over (libzmq drops the connection), and the client gets through again afterwards. */
static void
test_server_message_limit(void **state)
{
    struct transport_keys f;
    char endpoint[128], text[64];
    struct transport_peer from;
    size_t big = WIRE_REQUEST_MAX_BYTES + 1;
    uint8_t *buf = calloc(1, big);
    (void)state;

    make_keys("agent-f", true, &f);
    struct transport_server *s = open_server(endpoint, sizeof(endpoint));
    struct transport_client *c = open_client(endpoint, "agent-f", path_of("server", "pub"), 0);
    transport_client_send(c, (const uint8_t *)"small", 5);
    assert_int_equal(serve_from(s, c, &from, text, sizeof(text)), 1);
    transport_client_send(c, buf, big);
    assert_int_equal(serve_within(s, c, &from, text, sizeof(text), 1500), 0);
    transport_client_send(c, (const uint8_t *)"again", 5);
    assert_int_equal(serve_within(s, c, &from, text, sizeof(text), 15000), 1);
    assert_string_equal(text, "again");
    free(buf);
    transport_client_close(&c);
    transport_server_close(&s);
}

/* One key may not open connections without end: after a burst of ten handshakes the next is
 * refused (and counted) until its bucket refills. */
static void
test_handshakes_per_key_throttled(void **state)
{
    struct transport_keys g;
    char endpoint[128], text[64];
    struct transport_peer from;
    struct transport_server_stats stats;
    (void)state;

    make_keys("agent-g", true, &g);
    struct transport_server *s = open_server(endpoint, sizeof(endpoint));
    for (int i = 0; i < 10; i++) {
        struct transport_client *c = open_client(endpoint, "agent-g", path_of("server", "pub"), 0);
        transport_client_send(c, (const uint8_t *)"in", 2);
        if (serve_from(s, c, &from, text, sizeof(text)) != 1)
            fail_msg("connection %d of the burst was not let in", i + 1);
        transport_client_close(&c);
    }
    struct transport_client *c = open_client(endpoint, "agent-g", path_of("server", "pub"), 0);
    transport_client_send(c, (const uint8_t *)"one too many", 12);
    assert_int_equal(serve_within(s, c, &from, text, sizeof(text), 1000), 0);
    transport_server_get_stats(s, &stats);
    assert_true(stats.handshakes_throttled >= 1);
    assert_int_equal(stats.keys_refused, 0);
    /* The bucket refills (one every 6 s) and the client's own retry gets it in. */
    assert_int_equal(serve_within(s, c, &from, text, sizeof(text), 20000), 1);
    assert_string_equal(text, "one too many");
    transport_client_close(&c);
    transport_server_close(&s);
}

static int
setup(void **state)
{
    struct transport_keys server;
    char err[TRANSPORT_ERR_MAX], path[700];
    (void)state;

    if (!mkdtemp(dir))
        return -1;
    snprintf(allow_dir, sizeof(allow_dir), "%s/allow", dir);
    mkdir(allow_dir, 0755);
    transport_keygen(&server);
    snprintf(path, sizeof(path), "%s/server.secret", dir);
    transport_keys_save(path, &server, true, err, sizeof(err));
    snprintf(path, sizeof(path), "%s/server.pub", dir);
    return transport_keys_save(path, &server, false, err, sizeof(err));
}

static int
teardown(void **state)
{
    char cmd[700];
    (void)state;
    /* No transport_shutdown(): a failed test leaves sockets open and zmq_ctx_term would wait. */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_key_gets_in_and_is_named),
        cmocka_unit_test(test_unknown_key_refused_then_allowed_after_reload),
        cmocka_unit_test(test_wrong_server_key_never_connects),
        cmocka_unit_test(test_queue_drops_oldest_and_delivers_newest),
        cmocka_unit_test(test_insecure_only_on_loopback),
        cmocka_unit_test(test_bad_key_files),
        cmocka_unit_test(test_key_bound_to_one_name),
        cmocka_unit_test(test_ipc_peer_uid),
        cmocka_unit_test(test_ipc_in_use_refused_stale_taken),
        cmocka_unit_test(test_server_message_limit),
        cmocka_unit_test(test_handshakes_per_key_throttled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * test_daemon.c - the coordinator daemon (coordinator/daemon.c): who asks is what the transport
 * proved (an operator key's name, the uid over ipc), and what memschedctl claims is kept beside
 * it, marked, cut to fit; and the whole loop on ipc sockets in a temp dir, in a thread: an
 * agent's hello reaches the fleet, a control request is answered, a policy set by it is pushed
 * to the agent through the engine's send callback, SIGTERM stops the loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "wire.h"

static struct transport_peer
peer(const char *name, long uid)
{
    struct transport_peer p;

    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "%s", name);
    p.uid = uid;
    return p;
}

static void
test_author_is_what_the_transport_proved(void **state)
{
    char out[WIRE_AUTHOR_MAX], want[WIRE_AUTHOR_MAX];
    struct transport_peer ops = peer("ops", -1), nobody = peer("", -1);
    struct transport_peer me = peer("", (long)getuid());
    struct passwd *pw = getpwuid(getuid());

    (void)state;
    daemon_real_author(&ops, "", out, sizeof(out));
    assert_string_equal(out, "key:ops");
    daemon_real_author(&ops, "mallory", out, sizeof(out));
    assert_string_equal(out, "key:ops claims mallory");
    daemon_real_author(&ops, "ops", out, sizeof(out));
    assert_string_equal(out, "key:ops");
    daemon_real_author(&nobody, "", out, sizeof(out));
    assert_string_equal(out, "unknown");

    if (pw)
        snprintf(want, sizeof(want), "uid:%ld(%.32s)", (long)getuid(), pw->pw_name);
    else
        snprintf(want, sizeof(want), "uid:%ld", (long)getuid());
    daemon_real_author(&me, "", out, sizeof(out));
    assert_string_equal(out, want);
    if (pw) { /* claiming to be who you are adds nothing */
        daemon_real_author(&me, pw->pw_name, out, sizeof(out));
        assert_string_equal(out, want);
    }
    daemon_real_author(&me, "someone-with-a-very-long-name-indeed-longer-than-fits", out,
                       sizeof(out));
    if (strlen(out) >= WIRE_AUTHOR_MAX || !strstr(out, " claims someone-with-a"))
        fail_msg("a long claim: want it cut below %d characters, got '%s'", WIRE_AUTHOR_MAX, out);
}

#define WAIT_MS 5000

static void *
run_daemon(void *d)
{
    daemon_run(d);
    return NULL;
}

static int
send_client(void *ctx, const uint8_t *buf, size_t len)
{
    return transport_client_send(ctx, buf, len);
}

/* One control request; the reply's body goes to out. Returns the status, or -1 on no reply. */
static int
ask(struct transport_client *ctl, char *out, size_t out_len, const char *command, ...)
{
    struct wire_control_request req;
    struct wire_control_reply reply;
    char err[WIRE_ERR_MAX];
    uint8_t *buf;
    size_t len;
    va_list ap;
    const char *arg;

    memset(&req, 0, sizeof(req));
    snprintf(req.command, sizeof(req.command), "%s", command);
    snprintf(req.author, sizeof(req.author), "tester");
    va_start(ap, command);
    while ((arg = va_arg(ap, const char *)) != NULL)
        snprintf(req.args[req.n_args++], WIRE_ARG_MAX, "%s", arg);
    va_end(ap);
    assert_int_equal(wire_encode_control_request(&req, &buf, &len, err, sizeof(err)), 0);
    assert_int_equal(transport_client_send(ctl, buf, len), 0);
    free(buf);
    if (transport_client_recv(ctl, WAIT_MS, &buf, &len) != 1)
        return -1;
    assert_int_equal(wire_decode_control_reply(buf, len, &reply, err, sizeof(err)), 0);
    free(buf);
    snprintf(out, out_len, "%s", reply.body ? reply.body : "");
    int status = reply.status;
    wire_control_reply_clear(&reply);
    return status;
}

static void
test_loop(void **state)
{
    char dir[] = "/tmp/test_daemon.XXXXXX", listen[128], control[128], db[128], err[512];
    char body[8192];
    struct daemon *d = NULL;
    struct transport_client *agent = NULL, *ctl = NULL;
    pthread_t thread;
    uint64_t sequence = 0;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(listen, sizeof(listen), "ipc://%s/agents.sock", dir);
    snprintf(control, sizeof(control), "ipc://%s/control.sock", dir);
    snprintf(db, sizeof(db), "%s/coordinator.db", dir);
    struct daemon_options o = {
        .listen = listen,
        .control = control,
        .key_file = "",
        .allow_dir = "",
        .admin_allow_dir = "",
        .admin_read_dir = "",
        .db = db,
        .insecure = true,
        .stale_after_ms = 3000,
        .down_after_ms = 10000,
        .pressure_unused_mib = 100,
    };
    if (daemon_open(&o, &d, err, sizeof(err)) != 0)
        fail_msg("daemon_open: %s", err);
    assert_int_equal(pthread_create(&thread, NULL, run_daemon, d), 0);

    struct transport_client_options ao = {.endpoint = listen, .insecure = true};
    struct transport_client_options co = {.endpoint = control, .insecure = true};
    assert_int_equal(transport_client_open(&ao, &agent, err, sizeof(err)), 0);
    assert_int_equal(transport_client_open(&co, &ctl, err, sizeof(err)), 0);
    struct wire_msg hello = {.body = WIRE_BODY_HELLO};
    snprintf(hello.u.hello.agent_version, sizeof(hello.u.hello.agent_version), "test");
    assert_int_equal(wire_send(&hello, "hv1", &sequence, send_client, agent, err, sizeof(err)), 0);

    /* The hello and the request travel on different sockets: ask until hv1 is there. */
    bool seen = false;
    for (int i = 0; i < 50 && !seen; i++) {
        uint8_t *none;
        size_t none_len;
        transport_client_recv(agent, 0, &none, &none_len); /* moves the agent's queue */
        assert_int_equal(ask(ctl, body, sizeof(body), "hosts", NULL), 0);
        seen = strstr(body, "hv1") != NULL;
        if (!seen)
            usleep(100 * 1000);
    }
    if (!seen)
        fail_msg("hv1's hello never reached the fleet; hosts says:\n%s", body);

    assert_int_equal(ask(ctl, body, sizeof(body), "policy-set", "--scope", "fleet", "--reason",
                         "test", "vm_floor_mib=512", NULL),
                     0);
    uint8_t *buf;
    size_t len;
    struct wire_msg push;
    assert_int_equal(transport_client_recv(agent, WAIT_MS, &buf, &len), 1);
    assert_int_equal(wire_decode(buf, len, &push, err, sizeof(err)), 0);
    free(buf);
    assert_int_equal(push.body, WIRE_BODY_POLICY_PUSH);
    assert_string_equal(push.host_id, "hv1");
    assert_int_equal(push.u.push.version, 1);
    wire_msg_clear(&push);
    assert_int_equal(ask(ctl, body, sizeof(body), "policy-history", NULL), 0);
    if (!strstr(body, "uid:") || !strstr(body, "claims tester"))
        fail_msg("the author is not the caller's uid with its claim beside it:\n%s", body);

    kill(getpid(), SIGTERM); /* blocked by daemon_open(): taken by the loop */
    assert_int_equal(pthread_join(thread, NULL), 0);
    transport_client_close(&agent);
    transport_client_close(&ctl);
    daemon_close(&d);
    assert_null(d);
    snprintf(body, sizeof(body), "rm -rf '%s'", dir);
    assert_int_equal(system(body), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_author_is_what_the_transport_proved),
        cmocka_unit_test(test_loop),
    };
    log_set_level(LOG_LEVEL_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_link.c - the agent's side of the protocol without sockets: the hello at start and on
 * new connections, say-hello, pushes applied / refused / acked, a push below the version held,
 * per-endpoint sessions, new labels in a new hello.
 *
 * The link is made with link_new(): its messages come to emit() below, and decoded messages
 * go in through link_receive() and link_connected(), as link_poll() does from the transport.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "link.h"
#include "transport.h"
#include "wire.h"

#define SENT_MAX 32

struct sent {
    size_t which;
    struct wire_msg msg; /* hellos and acks only: they own no memory */
};

struct outbox {
    struct sent sent[SENT_MAX];
    size_t n;
};

static void
emit(void *ctx, size_t which, struct wire_msg *msg)
{
    struct outbox *box = ctx;
    assert_true(box->n < SENT_MAX);
    box->sent[box->n].which = which;
    box->sent[box->n].msg = *msg;
    box->n++;
}

/* A fake gate: refuses versions in refuse_from.., and remembers what it saw. */
struct gate {
    uint64_t refuse_from;
    uint64_t last_version;
    int calls;
};

static int
on_push(void *ctx, const struct wire_policy_push *push, char *why, size_t why_len)
{
    struct gate *g = ctx;
    g->calls++;
    g->last_version = push->version;
    if (g->refuse_from && push->version >= g->refuse_from) {
        snprintf(why, why_len, "vm_min_unused_mib=1 below this host's limit");
        return -EPERM;
    }
    return 0;
}

static struct link *
new_link(struct outbox *box, size_t n_endpoints, uint64_t held_version, uint64_t held_epoch)
{
    struct link_options o = {
        .n_endpoints = n_endpoints,
        .host_id = "hv1",
        .n_labels = 1,
        .policy_version = held_version,
        .policy_epoch = held_epoch,
    };
    char err[256];
    struct link *l = NULL;

    snprintf(o.labels[0].key, sizeof(o.labels[0].key), "rack");
    snprintf(o.labels[0].value, sizeof(o.labels[0].value), "a1");
    if (link_new(&o, emit, box, &l, err, sizeof(err)) < 0)
        fail_msg("link_new: %s", err);
    return l;
}

static struct wire_msg
push_msg(uint64_t version, uint64_t epoch)
{
    struct wire_msg m = {.body = WIRE_BODY_POLICY_PUSH};
    m.u.push.version = version;
    m.u.push.epoch = epoch;
    snprintf(m.u.push.scope, sizeof(m.u.push.scope), "fleet");
    policy_init_defaults(&m.u.push.policy);
    return m;
}

static void
assert_state(const struct link *l, size_t which, enum link_state want)
{
    enum link_state got = link_get_state(l, which);
    if (got != want)
        fail_msg("endpoint %zu: want %s, got %s", which, link_state_name(want),
                 link_state_name(got));
}

static const struct sent *
last(const struct outbox *box, enum wire_body body)
{
    assert_true(box->n > 0);
    const struct sent *s = &box->sent[box->n - 1];
    if (s->msg.body != body)
        fail_msg("last message: want %s, got %s", wire_body_name(body),
                 wire_body_name(s->msg.body));
    return s;
}

static void
test_hello_at_start_and_on_reconnect(void **state)
{
    struct outbox box = {0};
    (void)state;

    struct link *l = new_link(&box, 1, 4, 9);
    assert_int_equal(box.n, 1);
    const struct sent *h = last(&box, WIRE_BODY_HELLO);
    assert_true(h->which == LINK_ALL);
    assert_int_equal(h->msg.u.hello.policy_version, 4);
    assert_int_equal(h->msg.u.hello.policy_epoch, 9);
    assert_int_equal(h->msg.u.hello.n_labels, 1);
    assert_string_equal(h->msg.u.hello.labels[0].value, "a1");
    assert_state(l, 0, LINK_STATE_CONNECTING);

    /* The first connection takes the queued hello: no second one. */
    link_connected(l, 0, 4);
    assert_int_equal(box.n, 1);
    assert_state(l, 0, LINK_STATE_GREETED);

    /* A new connection (the coordinator may be another one) is greeted again. */
    link_connected(l, 0, 4);
    assert_int_equal(box.n, 2);
    assert_int_equal(last(&box, WIRE_BODY_HELLO)->which, 0);
    link_destroy(&l);
    assert_null(l);
}

static void
test_say_hello_is_answered_on_that_endpoint(void **state)
{
    struct outbox box = {0};
    struct gate gate = {0};
    struct wire_msg say = {.body = WIRE_BODY_SAY_HELLO};
    (void)state;

    struct link *l = new_link(&box, 1, 0, 0);
    link_connected(l, 0, 0);
    link_receive(l, 0, &say, 0, on_push, &gate);
    assert_int_equal(box.n, 2);
    const struct sent *h = last(&box, WIRE_BODY_HELLO);
    assert_int_equal(h->which, 0);
    assert_int_equal(h->msg.u.hello.policy_version, 0);
    assert_int_equal(h->msg.u.hello.policy_epoch, 0);
    assert_state(l, 0, LINK_STATE_GREETED);
    assert_int_equal(gate.calls, 0);
    link_destroy(&l);
}

static void
test_push_applied_is_acked_and_its_epoch_said_in_the_next_hello(void **state)
{
    struct outbox box = {0};
    struct gate gate = {0};
    struct wire_msg say = {.body = WIRE_BODY_SAY_HELLO};
    (void)state;

    struct link *l = new_link(&box, 1, 0, 0);
    link_connected(l, 0, 0);
    struct wire_msg push = push_msg(5, 11);
    link_receive(l, 0, &push, 0, on_push, &gate);
    assert_int_equal(gate.calls, 1);
    const struct sent *a = last(&box, WIRE_BODY_POLICY_ACK);
    assert_int_equal(a->which, 0);
    assert_int_equal(a->msg.u.ack.version, 5);
    assert_true(a->msg.u.ack.applied);
    assert_string_equal(a->msg.u.ack.reason, "");
    assert_state(l, 0, LINK_STATE_CURRENT);

    link_receive(l, 0, &say, 5, on_push, &gate);
    const struct sent *h = last(&box, WIRE_BODY_HELLO);
    assert_int_equal(h->msg.u.hello.policy_version, 5);
    assert_int_equal(h->msg.u.hello.policy_epoch, 11);
    assert_state(l, 0, LINK_STATE_GREETED);
    link_destroy(&l);
}

static void
test_push_refused_is_acked_with_the_reason(void **state)
{
    struct outbox box = {0};
    struct gate gate = {.refuse_from = 1};
    struct wire_msg say = {.body = WIRE_BODY_SAY_HELLO};
    (void)state;

    struct link *l = new_link(&box, 1, 3, 8);
    link_connected(l, 0, 3);
    struct wire_msg push = push_msg(6, 12);
    link_receive(l, 0, &push, 3, on_push, &gate);
    const struct sent *a = last(&box, WIRE_BODY_POLICY_ACK);
    assert_int_equal(a->msg.u.ack.version, 6);
    assert_false(a->msg.u.ack.applied);
    assert_string_equal(a->msg.u.ack.reason, "vm_min_unused_mib=1 below this host's limit");
    assert_state(l, 0, LINK_STATE_REFUSED);

    /* What is held did not change: the next hello says the old version and epoch. */
    link_receive(l, 0, &say, 3, on_push, &gate);
    const struct sent *h = last(&box, WIRE_BODY_HELLO);
    assert_int_equal(h->msg.u.hello.policy_version, 3);
    assert_int_equal(h->msg.u.hello.policy_epoch, 8);
    link_destroy(&l);
}

/* The coordinator says which policy governs this host; when a narrower scope's policy goes
 * away, a lower version may govern. The link hands it to the gate like any push, and acks the
 * gate's verdict: no version ordering is enforced here. */
static void
test_push_below_the_version_held_goes_to_the_gate(void **state)
{
    struct outbox box = {0};
    struct gate gate = {0};
    (void)state;

    struct link *l = new_link(&box, 1, 7, 2);
    link_connected(l, 0, 7);
    struct wire_msg push = push_msg(4, 2);
    link_receive(l, 0, &push, 7, on_push, &gate);
    assert_int_equal(gate.calls, 1);
    assert_int_equal(gate.last_version, 4);
    const struct sent *a = last(&box, WIRE_BODY_POLICY_ACK);
    assert_int_equal(a->msg.u.ack.version, 4);
    assert_true(a->msg.u.ack.applied);
    assert_state(l, 0, LINK_STATE_CURRENT);
    link_destroy(&l);
}

static void
test_sessions_are_per_endpoint(void **state)
{
    struct outbox box = {0};
    struct gate gate = {.refuse_from = 10};
    (void)state;

    struct link *l = new_link(&box, 3, 0, 0);
    assert_int_equal(box.n, 1); /* one hello, to all */
    link_connected(l, 0, 0);
    link_connected(l, 1, 0);
    assert_state(l, 0, LINK_STATE_GREETED);
    assert_state(l, 1, LINK_STATE_GREETED);
    assert_state(l, 2, LINK_STATE_CONNECTING);

    struct wire_msg ok = push_msg(5, 1), bad = push_msg(10, 2);
    bad.u.push.policy.vm_floor_kib += 1024; /* other values than held: the gate decides */
    link_receive(l, 0, &ok, 0, on_push, &gate);
    assert_int_equal(last(&box, WIRE_BODY_POLICY_ACK)->which, 0);
    link_receive(l, 1, &bad, 5, on_push, &gate);
    assert_int_equal(last(&box, WIRE_BODY_POLICY_ACK)->which, 1);
    assert_state(l, 0, LINK_STATE_CURRENT);
    assert_state(l, 1, LINK_STATE_REFUSED);
    assert_state(l, 2, LINK_STATE_CONNECTING);

    /* Endpoint 1 reconnects: only it is greeted again; the others keep their sessions. */
    size_t before = box.n;
    link_connected(l, 1, 5);
    assert_int_equal(box.n, before + 1);
    assert_int_equal(last(&box, WIRE_BODY_HELLO)->which, 1);
    assert_state(l, 0, LINK_STATE_CURRENT);
    assert_state(l, 1, LINK_STATE_GREETED);

    /* Endpoint 2's first connection: the queued hello serves. */
    link_connected(l, 2, 5);
    assert_int_equal(box.n, before + 1);
    assert_state(l, 2, LINK_STATE_GREETED);

    /* A message from an endpoint that does not exist is ignored. */
    link_receive(l, 7, &ok, 5, on_push, &gate);
    assert_int_equal(box.n, before + 1);
    link_destroy(&l);
}

static void
test_new_labels_go_out_in_a_hello_to_every_endpoint(void **state)
{
    struct outbox box = {0};
    struct wire_label labels[2] = {0};
    (void)state;

    struct link *l = new_link(&box, 2, 3, 4);
    link_connected(l, 0, 3);
    snprintf(labels[0].key, sizeof(labels[0].key), "rack");
    snprintf(labels[0].value, sizeof(labels[0].value), "b2");
    snprintf(labels[1].key, sizeof(labels[1].key), "tier");
    snprintf(labels[1].value, sizeof(labels[1].value), "gold");
    link_set_labels(l, labels, 2, 3);
    const struct sent *h = last(&box, WIRE_BODY_HELLO);
    assert_true(h->which == LINK_ALL);
    assert_int_equal(h->msg.u.hello.n_labels, 2);
    assert_string_equal(h->msg.u.hello.labels[0].value, "b2");
    assert_string_equal(h->msg.u.hello.labels[1].key, "tier");
    assert_int_equal(h->msg.u.hello.policy_version, 3);
    /* And every later hello carries them. */
    link_connected(l, 0, 3);
    assert_int_equal(last(&box, WIRE_BODY_HELLO)->msg.u.hello.n_labels, 2);
    link_destroy(&l);
}

/* Two coordinators with their own stores push the same values under their own numbers: the
 * second push is acked applied without the gate, and each endpoint is told its own number
 * from then on, so neither pushes again. Other values go to the gate and end the alias. */
static void
test_same_values_from_another_endpoint_keep_its_own_number(void **state)
{
    struct outbox box = {0};
    struct gate gate = {0};
    struct wire_msg say = {.body = WIRE_BODY_SAY_HELLO};
    (void)state;

    struct link *l = new_link(&box, 2, 0, 0);
    link_connected(l, 0, 0);
    link_connected(l, 1, 0);
    struct wire_msg c1 = push_msg(2, 11), c2 = push_msg(1, 22);
    link_receive(l, 0, &c1, 0, on_push, &gate);
    assert_int_equal(gate.calls, 1);
    link_receive(l, 1, &c2, 2, on_push, &gate);
    assert_int_equal(gate.calls, 1); /* the gate was not asked: nothing changes */
    const struct sent *a = last(&box, WIRE_BODY_POLICY_ACK);
    assert_int_equal(a->which, 1);
    assert_int_equal(a->msg.u.ack.version, 1);
    assert_true(a->msg.u.ack.applied);
    assert_state(l, 1, LINK_STATE_CURRENT);

    /* Held: v2 of epoch 11. Endpoint 0 hears 2, endpoint 1 its own 1, in one message each. */
    size_t before = box.n;
    link_heartbeat(l, 2);
    assert_int_equal(box.n, before + 2);
    assert_int_equal(box.sent[before].which, 0);
    assert_int_equal(box.sent[before].msg.u.heartbeat_policy_version, 2);
    assert_int_equal(box.sent[before + 1].which, 1);
    assert_int_equal(box.sent[before + 1].msg.u.heartbeat_policy_version, 1);
    link_receive(l, 1, &say, 2, on_push, &gate);
    const struct sent *h = last(&box, WIRE_BODY_HELLO);
    assert_int_equal(h->which, 1);
    assert_int_equal(h->msg.u.hello.policy_version, 1);
    assert_int_equal(h->msg.u.hello.policy_epoch, 22);
    link_receive(l, 0, &say, 2, on_push, &gate);
    h = last(&box, WIRE_BODY_HELLO);
    assert_int_equal(h->msg.u.hello.policy_version, 2);
    assert_int_equal(h->msg.u.hello.policy_epoch, 11);

    /* Endpoint 1 pushes other values: the gate decides, and one number goes to all again. */
    struct wire_msg other = push_msg(3, 22);
    other.u.push.policy.vm_grow_target_unused_kib += 10240;
    link_receive(l, 1, &other, 2, on_push, &gate);
    assert_int_equal(gate.calls, 2);
    before = box.n;
    link_heartbeat(l, 3);
    assert_int_equal(box.n, before + 1);
    assert_true(box.sent[before].which == LINK_ALL);
    assert_int_equal(box.sent[before].msg.u.heartbeat_policy_version, 3);
    link_destroy(&l);
}

/* One coordinator that pushes the same values again under a new epoch (its store reopened)
 * is the source of what is held: the gate takes it, as before. */
static void
test_same_values_from_the_same_endpoint_go_to_the_gate(void **state)
{
    struct outbox box = {0};
    struct gate gate = {0};
    (void)state;

    struct link *l = new_link(&box, 1, 0, 0);
    link_connected(l, 0, 0);
    struct wire_msg first = push_msg(2, 11), again = push_msg(2, 12);
    link_receive(l, 0, &first, 0, on_push, &gate);
    link_receive(l, 0, &again, 2, on_push, &gate);
    assert_int_equal(gate.calls, 2);
    size_t before = box.n;
    link_heartbeat(l, 2);
    assert_int_equal(box.n, before + 1);
    assert_true(box.sent[before].which == LINK_ALL);
    link_destroy(&l);
}

static void
test_a_bad_host_id_is_refused(void **state)
{
    struct outbox box = {0};
    struct link_options o = {.n_endpoints = 1, .host_id = "no spaces"};
    struct link *l = NULL;
    char err[256];
    (void)state;

    assert_int_equal(link_new(&o, emit, &box, &l, err, sizeof(err)), -EINVAL);
    assert_null(l);
    assert_int_equal(box.n, 0);
    assert_non_null(strstr(err, "host_id"));
}

/* The fingerprint the agent logs when it has no session (and memschedctl keygen can print). */
static void
test_key_fingerprint(void **state)
{
    struct transport_keys a, b;
    char fa[TRANSPORT_FINGERPRINT_LEN], fa2[TRANSPORT_FINGERPRINT_LEN],
        fb[TRANSPORT_FINGERPRINT_LEN];
    (void)state;

    assert_int_equal(transport_keygen(&a), 0);
    assert_int_equal(transport_keygen(&b), 0);
    assert_int_equal(transport_key_fingerprint(a.public_z85, fa, sizeof(fa)), 0);
    assert_int_equal(transport_key_fingerprint(a.public_z85, fa2, sizeof(fa2)), 0);
    assert_int_equal(transport_key_fingerprint(b.public_z85, fb, sizeof(fb)), 0);
    assert_string_equal(fa, fa2);
    assert_string_not_equal(fa, fb);
    assert_int_equal(strlen(fa), 19);
    for (size_t i = 0; i < 19; i++)
        assert_true(i % 5 == 4 ? fa[i] == ':' : strchr("0123456789abcdef", fa[i]) != NULL);
    assert_int_equal(transport_key_fingerprint("not a key", fa, sizeof(fa)), -EINVAL);
    assert_int_equal(transport_key_fingerprint(a.public_z85, fa, 8), -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_at_start_and_on_reconnect),
        cmocka_unit_test(test_say_hello_is_answered_on_that_endpoint),
        cmocka_unit_test(test_push_applied_is_acked_and_its_epoch_said_in_the_next_hello),
        cmocka_unit_test(test_push_refused_is_acked_with_the_reason),
        cmocka_unit_test(test_push_below_the_version_held_goes_to_the_gate),
        cmocka_unit_test(test_sessions_are_per_endpoint),
        cmocka_unit_test(test_same_values_from_another_endpoint_keep_its_own_number),
        cmocka_unit_test(test_same_values_from_the_same_endpoint_go_to_the_gate),
        cmocka_unit_test(test_new_labels_go_out_in_a_hello_to_every_endpoint),
        cmocka_unit_test(test_a_bad_host_id_is_refused),
        cmocka_unit_test(test_key_fingerprint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * fuzz_coordinator.c - libFuzzer harness for the coordinator's message handling: whatever an
 * admitted peer sends goes into coordinator_receive(), over a fleet, an in-memory store and
 * a send callback that live across inputs (as in the daemon).
 *
 * The first byte picks the sender: one of four keyed peers, each bound to its own host id (as
 * the CURVE allowlist does), or a peer without a key (insecure loopback). The rest is the
 * message, into coordinator_receive(); what the engine sends back is encoded (wire_send) and
 * must encode. Invariants checked after every input: the sessions never outnumber the fleet's
 * hosts_max (nothing is kept for strangers), and a keyed peer never gets a session for a host
 * id that is not its own (a key is a host). Every 64th input ticks the clock forward, so
 * liveness, push retries and the host retention run too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "fleet.h"
#include "log.h"
#include "store.h"
#include "transport.h"
#include "wire.h"

#define HOSTS_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fleet *fleet;
static struct store *store;
static struct coordinator *coordinator;
static uint64_t now_ms = 1000, inputs, sequence;

static int
sink(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)buf;
    (void)len;
    return 0;
}

/* What the engine sends is encoded as the daemon would: it must always be a valid message. */
static void
send_agent(void *ctx, const struct transport_peer *to, const char *host_id, struct wire_msg *msg)
{
    char err[WIRE_ERR_MAX];

    (void)ctx;
    (void)to;
    if (wire_send(msg, host_id, &sequence, sink, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_coordinator: the engine sent a message it cannot encode: %s\n", err);
        abort();
    }
}

static void
start(void)
{
    char err[STORE_ERR_MAX];
    struct fleet_opts fo = {.stale_after_ms = 1000, .down_after_ms = 3000, .hosts_max = HOSTS_MAX};
    struct policy p;
    uint64_t version;

    log_set_level(LOG_LEVEL_ERR);
    fleet = fleet_new(&fo);
    if (store_open(":memory:", &store, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_coordinator: %s\n", err);
        abort();
    }
    policy_init_defaults(&p);
    if (store_policy_add(store, "fleet", &p, policy_keys_all(), "set", "fuzz", "", 1, &version, err,
                         sizeof(err)) != 0)
        abort();
    coordinator = coordinator_new(fleet, store, send_agent, NULL);
    coordinator_set_host_retention(coordinator, 60000);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[4] = {
        "0000000000000000000000000000000000000000", "1111111111111111111111111111111111111111",
        "2222222222222222222222222222222222222222", "3333333333333333333333333333333333333333"};
    struct transport_peer from;

    if (!coordinator)
        start();
    if (size < 1)
        return 0;
    memset(&from, 0, sizeof(from));
    unsigned who = data[0] % 5;
    from.id_len = 1;
    from.id[0] = (uint8_t)who;
    from.uid = -1;
    if (who < 4) {
        snprintf(from.key_z85, sizeof(from.key_z85), "%s", keys[who]);
        snprintf(from.name, sizeof(from.name), "hv%u", who);
    }
    size_t hosts_before = fleet_host_count(fleet);
    coordinator_receive(coordinator, &from, data + 1, size - 1, now_ms, now_ms);
    if (who < 4 && fleet_host_count(fleet) > hosts_before) {
        struct fleet_host_info info;
        /* A keyed peer can only ever bring its own host in. */
        if (fleet_host_count(fleet) != hosts_before + 1 ||
            fleet_host_get(fleet, from.name, &info) != 0)
            abort();
    }
    if (++inputs % 64 == 0) {
        now_ms += 1500;
        coordinator_tick(coordinator, now_ms, now_ms);
    }
    const struct coordinator_counters *c = coordinator_get_counters(coordinator);
    if (c->sessions > HOSTS_MAX || fleet_host_count(fleet) > HOSTS_MAX)
        abort(); /* something is kept for strangers */
    return 0;
}

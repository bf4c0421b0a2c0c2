/*
 * wire.h - memsched's messages on the wire; the only module that touches protobuf-c.
 *
 * Received bytes are unpacked, every field is validated, the values are copied into our own
 * structs and the unpacked message is freed before returning: nothing protobuf-c owns escapes.
 */
#ifndef MEMSCHED_COMMON_WIRE_H
#define MEMSCHED_COMMON_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "sched.h"
#include "wire_text.h"

#define WIRE_ERR_MAX 256
/* The protocol this build speaks, and the oldest it still decodes. Within a version fields are
 * only ever added, as optional; a version that changes meaning keeps the one before it decodable
 * for a release, so a fleet upgrades its coordinator first and its agents one by one. */
#define WIRE_PROTOCOL_VERSION 1
#define WIRE_PROTOCOL_MIN     1
#define WIRE_MSG_MAX_BYTES    (4 * 1024 * 1024) /* the transport refuses anything larger */
/* What a server takes from one peer in one message: the largest legal agent report is 1.4 MB
 * (test_wire_msg), a control request ~9 KB. Replies (memschedctl) may be WIRE_MSG_MAX_BYTES. */
#define WIRE_REQUEST_MAX_BYTES (2 * 1024 * 1024)
#define WIRE_UUID_LEN          37
#define WIRE_NAME_MAX          128
#define WIRE_VERSION_MAX       32
#define WIRE_LABELS_MAX        16
#define WIRE_REASON_MAX        256
#define WIRE_VMS_MAX           4096                /* VMs in one report */
#define WIRE_VMS_TOTAL_MAX     (UINT64_C(1) << 20) /* VMs a host may say it has */
/* What unpacking one agent message may allocate: the largest legal report (WIRE_VMS_MAX VMs
 * with the longest names, as many decisions: 1.4 MB on the wire) needs 2.6 MB; test_wire_msg
 * checks both that and the bound on a hostile report. */
#define WIRE_UNPACK_BUDGET_BYTES (4 * 1024 * 1024)
#define WIRE_COUNTERPART_HOST    "host"
/* wire_vm.skip_reason of a skip reason this build does not know (a newer agent's). */
#define WIRE_SKIP_OTHER    SCHED_REASON_COUNT
#define WIRE_SKIP_NAME_MAX 32

enum wire_body {
    WIRE_BODY_HELLO = 1,
    WIRE_BODY_REPORT,
    WIRE_BODY_HEARTBEAT,
    WIRE_BODY_POLICY_PUSH,
    WIRE_BODY_POLICY_ACK,
    WIRE_BODY_SAY_HELLO,
};

struct wire_label {
    char key[WIRE_LABEL_KEY_MAX];
    char value[WIRE_LABEL_VALUE_MAX];
};

struct wire_hello {
    char agent_version[WIRE_VERSION_MAX];
    struct wire_label labels[WIRE_LABELS_MAX];
    size_t n_labels;
    uint64_t policy_version; /* 0 = holds no fleet policy */
    uint64_t policy_epoch;   /* the store epoch of policy_version; 0 = none */
};

struct wire_vm {
    char uuid[WIRE_UUID_LEN];
    char name[WIRE_NAME_MAX];
    enum sched_vm_state state;
    uint64_t max_kib;
    uint64_t actual_kib;
    uint64_t target_kib; /* 0 = none set */
    uint64_t unused_kib;
    uint64_t usable_kib;
    uint64_t stats_age_ms;
    bool has_unused;
    bool has_usable;
    bool managed;
    bool stuck;
    uint64_t min_kib; /* the operator's overrides: 0 = none */
    uint64_t cap_kib;
    uint32_t weight;
    /* Why the agent leaves the VM alone: a step-2 reason (sched_reason_is_skip()), or
     * WIRE_SKIP_OTHER for a well-formed name this build does not know; any other value
     * (SCHED_REASON_IN_BAND, 0) means the agent manages it, and is not sent. */
    enum sched_reason skip_reason;
};

struct wire_decision {
    char uuid[WIRE_UUID_LEN];
    enum sched_reason reason;
    uint64_t old_target_kib;
    uint64_t new_target_kib;
    char counterpart[WIRE_UUID_LEN]; /* a VM's uuid, "host", or "" */
    uint64_t signal_kib;             /* the demand signal the round saw */
    uint64_t need_kib;
    uint64_t lookahead_kib;
    uint64_t vm_kib;   /* to or from other VMs */
    uint64_t host_kib; /* to or from the host */
};

struct wire_counters {
    uint64_t rounds;
    uint64_t granted_kib;
    uint64_t reclaimed_kib;
    uint64_t apply_failures;
    uint64_t reports_dropped;
    uint64_t messages_rejected;
};

/* vms and decisions are owned by the message: wire_msg_clear() frees them. */
struct wire_report {
    uint64_t host_total_kib;
    uint64_t host_available_kib;
    struct wire_vm *vms;
    size_t n_vms;
    struct wire_decision *decisions;
    size_t n_decisions;
    struct wire_counters counters;
    uint64_t policy_version;
    uint64_t vms_total; /* VMs on the host: > n_vms when the report was cut at WIRE_VMS_MAX */
    bool has_policy;    /* policy holds the thresholds the decisions were planned with */
    struct policy policy;
};

struct wire_policy_push {
    uint64_t version;
    uint64_t epoch; /* the coordinator store's epoch: versions are unique only within one */
    char scope[WIRE_SCOPE_MAX]; /* "fleet", "label:KEY=VALUE" or "host:ID" */
    struct policy policy;
};

struct wire_policy_ack {
    uint64_t version;
    bool applied;
    char reason[WIRE_REASON_MAX]; /* why it was refused */
};

/* One message: the envelope and its body. */
struct wire_msg {
    uint32_t protocol_version;
    char host_id[WIRE_HOST_ID_MAX];
    uint64_t sequence;
    enum wire_body body;
    union {
        struct wire_hello hello;
        struct wire_report report;
        uint64_t heartbeat_policy_version;
        struct wire_policy_push push;
        struct wire_policy_ack ack;
    } u;
};

/* ---- control: memschedctl <-> coordinator ---- */

#define WIRE_COMMAND_MAX 32
#define WIRE_ARG_MAX     256
#define WIRE_ARGS_MAX    32
#define WIRE_AUTHOR_MAX  64
#define WIRE_BODY_MAX    (WIRE_MSG_MAX_BYTES - 1024)

struct wire_control_request {
    char command[WIRE_COMMAND_MAX];
    char args[WIRE_ARGS_MAX][WIRE_ARG_MAX];
    size_t n_args;
    bool json;
    char author[WIRE_AUTHOR_MAX];
};

/* body is owned: wire_control_reply_clear() frees it. */
struct wire_control_reply {
    int status;
    char *body;
};

int wire_encode_control_request(
    const struct wire_control_request *req, uint8_t **buf, size_t *len, char *err, size_t err_len);
int wire_decode_control_request(
    const uint8_t *buf, size_t len, struct wire_control_request *req, char *err, size_t err_len);
int wire_encode_control_reply(int status, const char *body, uint8_t **buf, size_t *len);
int wire_decode_control_reply(
    const uint8_t *buf, size_t len, struct wire_control_reply *reply, char *err, size_t err_len);
void wire_control_reply_clear(struct wire_control_reply *reply);

/* Put a report's VMs in uuid order, as agents send them: the receiver then checks the order
 * in one pass instead of sorting them to look for a uuid listed twice. */
void wire_vms_sort(struct wire_vm *vms, size_t n);

/* Encode msg into a new buffer (*buf, *len; the caller frees *buf). msg is validated first, as
 * a receiver would: -EINVAL with err for a message we would refuse ourselves. */
int wire_encode(const struct wire_msg *msg, uint8_t **buf, size_t *len, char *err, size_t err_len);

/* Where wire_send() hands the encoded bytes (a transport's send). Returns 0 or -errno. */
typedef int (*wire_send_fn)(void *ctx, const uint8_t *buf, size_t len);

/* The envelope, stamped and sent, in one place for both ends: sets msg's protocol version,
 * host_id and sequence (++*sequence), encodes it and hands the bytes to send(ctx, ...). Returns
 * 0, wire_encode()'s -EINVAL (nothing sent) or what send returned, with err saying why. */
int wire_send(struct wire_msg *msg,
              const char *host_id,
              uint64_t *sequence,
              wire_send_fn send,
              void *ctx,
              char *err,
              size_t err_len);

/* Decode and validate one message: protocol version, host id, every count, range, string and
 * enum, duplicate VM uuids, the policy through policy_validate(). Returns 0, -EBADMSG (not a
 * message), -E2BIG (it would unpack to more than WIRE_UNPACK_BUDGET_BYTES) or -EINVAL (a
 * message we refuse), with err saying why; *msg is cleared on failure.
 * On success release it with wire_msg_clear(). */
int wire_decode(const uint8_t *buf, size_t len, struct wire_msg *msg, char *err, size_t err_len);

/* Free what a decoded (or built) message owns and zero it. */
void wire_msg_clear(struct wire_msg *msg);

/* "hello", "report"... */
const char *wire_body_name(enum wire_body body);

/* Serialise p into a new buffer (*buf, *len; the caller frees *buf). Returns 0 or -ENOMEM. */
int wire_encode_policy(const struct policy *p, uint8_t **buf, size_t *len);

/* Decode a Policy message. Fields absent on the wire keep their defaults; the result must pass
 * policy_validate(). Returns 0, or -EBADMSG (malformed) / -EINVAL (invalid) with err saying why;
 * *p is untouched on failure. */
int wire_decode_policy(const uint8_t *buf, size_t len, struct policy *p, char *err, size_t err_len);

#endif /* MEMSCHED_COMMON_WIRE_H */

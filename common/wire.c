/*
 * wire.c - memsched's messages on the wire; the only file that includes protobuf-c code.
 *
 * Decoding follows one path: unpack, validate every field, copy into our structs, free the
 * unpacked message. Policy fields go through policy_set() and policy_validate(), the same gate
 * the config file and the CLI use, so the wire cannot carry a value the agent would refuse
 * elsewhere.
 */
#include "wire.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memsched.pb-c.h"
#include "scope.h"
#include "util.h"

static void
fill_policy(const struct policy *p, Memsched__Policy *msg)
{
    memsched__policy__init(msg);
    msg->has_vm_min_unused_mib = true;
    msg->vm_min_unused_mib = p->vm_min_unused_kib / UTIL_KIB_PER_MIB;
    msg->has_vm_grow_target_unused_mib = true;
    msg->vm_grow_target_unused_mib = p->vm_grow_target_unused_kib / UTIL_KIB_PER_MIB;
    msg->has_vm_excess_unused_mib = true;
    msg->vm_excess_unused_mib = p->vm_excess_unused_kib / UTIL_KIB_PER_MIB;
    msg->has_max_release_step_mib = true;
    msg->max_release_step_mib = p->max_release_step_kib / UTIL_KIB_PER_MIB;
    msg->has_host_min_unused_mib = true;
    msg->host_min_unused_mib = p->host_min_unused_kib / UTIL_KIB_PER_MIB;
    msg->has_vm_floor_mib = true;
    msg->vm_floor_mib = p->vm_floor_kib / UTIL_KIB_PER_MIB;
    msg->has_interval_ms = true;
    msg->interval_ms = p->interval_ms;
    msg->has_stale_stats_s = true;
    msg->stale_stats_s = p->stale_stats_s;
    msg->has_demand_signal = true;
    msg->demand_signal = p->demand_signal == POLICY_DEMAND_USABLE
                             ? MEMSCHED__POLICY__DEMAND_SIGNAL__DEMAND_USABLE
                             : MEMSCHED__POLICY__DEMAND_SIGNAL__DEMAND_UNUSED;
    msg->has_reclaim_idle = true;
    msg->reclaim_idle = p->reclaim_idle;
    msg->has_predictive = true;
    msg->predictive = p->predictive;
}

int
wire_encode_policy(const struct policy *p, uint8_t **buf, size_t *len)
{
    Memsched__Policy msg;

    fill_policy(p, &msg);
    size_t size = memsched__policy__get_packed_size(&msg);
    *buf = malloc(size ? size : 1);
    if (!*buf)
        return -ENOMEM;
    *len = memsched__policy__pack(&msg, *buf);
    return 0;
}

/* Set one numeric field, present on the wire, through the policy's own parser and bounds. */
static int
take_number(struct policy *p,
            const char *name,
            protobuf_c_boolean present,
            uint64_t value,
            char *err,
            size_t err_len)
{
    char text[24];

    if (!present)
        return 0;
    snprintf(text, sizeof(text), "%" PRIu64, value);
    return policy_set(p, name, text, err, err_len);
}

static int
take_policy(const Memsched__Policy *m, struct policy *p, char *err, size_t err_len)
{
    int rc = 0;

    rc = rc
             ?: take_number(p, "vm_min_unused_mib", m->has_vm_min_unused_mib, m->vm_min_unused_mib,
                            err, err_len);
    rc = rc
             ?: take_number(p, "vm_grow_target_unused_mib", m->has_vm_grow_target_unused_mib,
                            m->vm_grow_target_unused_mib, err, err_len);
    rc = rc
             ?: take_number(p, "vm_excess_unused_mib", m->has_vm_excess_unused_mib,
                            m->vm_excess_unused_mib, err, err_len);
    rc = rc
             ?: take_number(p, "max_release_step_mib", m->has_max_release_step_mib,
                            m->max_release_step_mib, err, err_len);
    rc = rc
             ?: take_number(p, "host_min_unused_mib", m->has_host_min_unused_mib,
                            m->host_min_unused_mib, err, err_len);
    rc = rc ?: take_number(p, "vm_floor_mib", m->has_vm_floor_mib, m->vm_floor_mib, err, err_len);
    rc = rc ?: take_number(p, "interval_ms", m->has_interval_ms, m->interval_ms, err, err_len);
    rc =
        rc ?: take_number(p, "stale_stats_s", m->has_stale_stats_s, m->stale_stats_s, err, err_len);
    if (rc == 0 && m->has_demand_signal) {
        /* protobuf-c passes unknown enum numbers through; name them rather than guess. */
        if (m->demand_signal == MEMSCHED__POLICY__DEMAND_SIGNAL__DEMAND_UNUSED) {
            p->demand_signal = POLICY_DEMAND_UNUSED;
        } else if (m->demand_signal == MEMSCHED__POLICY__DEMAND_SIGNAL__DEMAND_USABLE) {
            p->demand_signal = POLICY_DEMAND_USABLE;
        } else {
            snprintf(err, err_len, "policy: demand_signal=%d is not a known signal",
                     (int)m->demand_signal);
            rc = -EINVAL;
        }
    }
    if (rc == 0 && m->has_reclaim_idle)
        p->reclaim_idle = m->reclaim_idle;
    if (rc == 0 && m->has_predictive)
        p->predictive = m->predictive;
    return rc ? -EINVAL : policy_validate(p, err, err_len);
}

int
wire_decode_policy(const uint8_t *buf, size_t len, struct policy *p, char *err, size_t err_len)
{
    Memsched__Policy *msg = memsched__policy__unpack(NULL, len, buf);
    struct policy decoded;

    if (!msg) {
        snprintf(err, err_len, "policy: malformed message (%zu bytes)", len);
        return -EBADMSG;
    }
    policy_init_defaults(&decoded);
    int rc = take_policy(msg, &decoded, err, err_len);
    memsched__policy__free_unpacked(msg, NULL);
    if (rc == 0)
        *p = decoded;
    return rc;
}

/* ---- strings and numbers we accept from the wire ---- */

static bool
valid_uuid(const char *s)
{
    if (!s || strlen(s) != WIRE_UUID_LEN - 1)
        return false;
    for (int i = 0; i < WIRE_UUID_LEN - 1; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* "fleet", "label:KEY=VALUE" or "host:ID" (scope.h). */
static bool
valid_scope(const char *s)
{
    struct scope parsed;

    return scope_parse(s, &parsed) == 0;
}

/* A KiB value: present or zero, never beyond what any host could hold. */
static int
take_kib(
    const char *what, protobuf_c_boolean has, uint64_t v, uint64_t *out, char *err, size_t err_len)
{
    if (has && v > SCHED_KIB_MAX)
        return util_fail(-EINVAL, err, err_len, "%s=%" PRIu64 " KiB out of range", what, v);
    *out = has ? v : 0;
    return 0;
}

/* ---- decoding: unpacked message -> validated copies in our structs ---- */

static int
take_hello(const Memsched__Hello *m, struct wire_hello *h, char *err, size_t err_len)
{
    if (!wire_text_valid(m->agent_version, WIRE_VERSION_MAX, false))
        return util_fail(-EINVAL, err, err_len, "hello: bad agent_version");
    if (m->n_labels > WIRE_LABELS_MAX)
        return util_fail(-EINVAL, err, err_len, "hello: %zu labels, at most %d", m->n_labels,
                         WIRE_LABELS_MAX);
    strcpy(h->agent_version, m->agent_version);
    for (size_t i = 0; i < m->n_labels; i++) {
        const Memsched__Label *l = m->labels[i];
        if (!wire_token_valid(l->key, WIRE_LABEL_KEY_MAX) ||
            !wire_text_valid(l->value, WIRE_LABEL_VALUE_MAX, false))
            return util_fail(-EINVAL, err, err_len, "hello: bad label %zu", i);
        strcpy(h->labels[i].key, l->key);
        strcpy(h->labels[i].value, l->value);
    }
    h->n_labels = m->n_labels;
    h->policy_version = m->has_policy_version ? m->policy_version : 0;
    h->policy_epoch = m->has_policy_epoch ? m->policy_epoch : 0;
    return 0;
}

static int
reason_from_name(const char *name, enum sched_reason *reason)
{
    for (int r = 0; r < SCHED_REASON_COUNT; r++) {
        if (name && strcmp(name, sched_reason_name((enum sched_reason)r)) == 0) {
            *reason = (enum sched_reason)r;
            return 0;
        }
    }
    return -EINVAL;
}

/* A skip reason: a token; one that is not a step-2 reason we know is a newer agent's (other). */
static int
take_skip_reason(const Memsched__VmStats *m, struct wire_vm *vm, char *err, size_t err_len)
{
    enum sched_reason r;

    vm->skip_reason = SCHED_REASON_IN_BAND;
    if (!m->skip_reason)
        return 0;
    if (!wire_token_valid(m->skip_reason, WIRE_SKIP_NAME_MAX))
        return util_fail(-EINVAL, err, err_len, "report: vm %s: bad skip_reason", m->uuid);
    if (reason_from_name(m->skip_reason, &r) == 0 && sched_reason_is_skip(r))
        vm->skip_reason = r;
    else
        vm->skip_reason = WIRE_SKIP_OTHER;
    return 0;
}

static int
take_vm(const Memsched__VmStats *m, struct wire_vm *vm, char *err, size_t err_len)
{
    int rc = 0;

    if (!valid_uuid(m->uuid))
        return util_fail(-EINVAL, err, err_len, "report: bad vm uuid");
    if (!wire_text_valid(m->name, WIRE_NAME_MAX, true))
        return util_fail(-EINVAL, err, err_len, "report: vm %s: bad name", m->uuid);
    if (m->has_state && (m->state < MEMSCHED__VM_STATS__STATE__RUNNING ||
                         m->state > MEMSCHED__VM_STATS__STATE__OTHER))
        return util_fail(-EINVAL, err, err_len, "report: vm %s: state=%d unknown", m->uuid,
                         (int)m->state);
    strcpy(vm->uuid, m->uuid);
    snprintf(vm->name, sizeof(vm->name), "%s", m->name ? m->name : "");
    vm->state = m->has_state ? (enum sched_vm_state)m->state : SCHED_VM_OTHER;
    rc = rc ?: take_kib("max_kib", m->has_max_kib, m->max_kib, &vm->max_kib, err, err_len);
    rc = rc
             ?: take_kib("actual_kib", m->has_actual_kib, m->actual_kib, &vm->actual_kib, err,
                         err_len);
    rc = rc
             ?: take_kib("target_kib", m->has_target_kib, m->target_kib, &vm->target_kib, err,
                         err_len);
    rc = rc
             ?: take_kib("unused_kib", m->has_unused_kib, m->unused_kib, &vm->unused_kib, err,
                         err_len);
    rc = rc
             ?: take_kib("usable_kib", m->has_usable_kib, m->usable_kib, &vm->usable_kib, err,
                         err_len);
    vm->has_unused = m->has_unused_kib;
    vm->has_usable = m->has_usable_kib;
    /* An age is that of the stats: without any, there is none (the encoder sends none). */
    vm->stats_age_ms =
        m->has_stats_age_ms && (m->has_unused_kib || m->has_usable_kib) ? m->stats_age_ms : 0;
    vm->managed = m->has_managed ? m->managed : true;
    vm->stuck = m->has_stuck && m->stuck;
    rc = rc ?: take_kib("min_kib", m->has_min_kib, m->min_kib, &vm->min_kib, err, err_len);
    rc = rc ?: take_kib("cap_kib", m->has_cap_kib, m->cap_kib, &vm->cap_kib, err, err_len);
    if (rc == 0 && m->has_weight && m->weight > SCHED_WEIGHT_MAX)
        return util_fail(-EINVAL, err, err_len, "report: vm %s: weight=%u above %u", m->uuid,
                         (unsigned)m->weight, (unsigned)SCHED_WEIGHT_MAX);
    vm->weight = m->has_weight ? m->weight : 0;
    return rc ?: take_skip_reason(m, vm, err, err_len);
}


static int
take_decision(const Memsched__Decision *m, struct wire_decision *d, char *err, size_t err_len)
{
    int rc = 0;

    if (!valid_uuid(m->uuid))
        return util_fail(-EINVAL, err, err_len, "report: decision with a bad uuid");
    if (reason_from_name(m->reason, &d->reason) < 0)
        return util_fail(-EINVAL, err, err_len, "report: decision for %s: unknown reason", m->uuid);
    if (m->counterpart && m->counterpart[0] && strcmp(m->counterpart, WIRE_COUNTERPART_HOST) &&
        !valid_uuid(m->counterpart))
        return util_fail(-EINVAL, err, err_len, "report: decision for %s: bad counterpart",
                         m->uuid);
    strcpy(d->uuid, m->uuid);
    snprintf(d->counterpart, sizeof(d->counterpart), "%s", m->counterpart ? m->counterpart : "");
    rc = rc
             ?: take_kib("old_target_kib", m->has_old_target_kib, m->old_target_kib,
                         &d->old_target_kib, err, err_len);
    rc = rc
             ?: take_kib("new_target_kib", m->has_new_target_kib, m->new_target_kib,
                         &d->new_target_kib, err, err_len);
    rc = rc
             ?: take_kib("signal_kib", m->has_signal_kib, m->signal_kib, &d->signal_kib, err,
                         err_len);
    rc = rc ?: take_kib("need_kib", m->has_need_kib, m->need_kib, &d->need_kib, err, err_len);
    rc = rc
             ?: take_kib("lookahead_kib", m->has_lookahead_kib, m->lookahead_kib, &d->lookahead_kib,
                         err, err_len);
    rc = rc ?: take_kib("vm_kib", m->has_vm_kib, m->vm_kib, &d->vm_kib, err, err_len);
    rc = rc ?: take_kib("host_kib", m->has_host_kib, m->host_kib, &d->host_kib, err, err_len);
    return rc;
}

static int
compare_vm_uuid(const void *a, const void *b)
{
    return strcmp((*(const struct wire_vm *const *)a)->uuid,
                  (*(const struct wire_vm *const *)b)->uuid);
}

static int
compare_vms_by_uuid(const void *a, const void *b)
{
    return strcmp(((const struct wire_vm *)a)->uuid, ((const struct wire_vm *)b)->uuid);
}

void
wire_vms_sort(struct wire_vm *vms, size_t n)
{
    qsort(vms, n, sizeof(*vms), compare_vms_by_uuid);
}

/* Whether the VMs come in strictly ascending uuid order, as agents send them: then no uuid
 * repeats, and there is nothing to sort. */
static bool
strictly_ascending(const struct wire_report *r)
{
    for (size_t i = 1; i < r->n_vms; i++) {
        if (strcmp(r->vms[i - 1].uuid, r->vms[i].uuid) >= 0)
            return false;
    }
    return true;
}

/* Targets are keyed by uuid: a report naming one VM twice is ambiguous, so it is refused. */
static int
refuse_duplicates(const struct wire_report *r, char *err, size_t err_len)
{
    if (strictly_ascending(r))
        return 0;
    const struct wire_vm **sorted = util_xcalloc(r->n_vms, sizeof(*sorted));
    int rc = 0;

    for (size_t i = 0; i < r->n_vms; i++)
        sorted[i] = &r->vms[i];
    qsort(sorted, r->n_vms, sizeof(*sorted), compare_vm_uuid);
    for (size_t i = 1; i < r->n_vms && rc == 0; i++) {
        if (strcmp(sorted[i - 1]->uuid, sorted[i]->uuid) == 0)
            rc = util_fail(-EINVAL, err, err_len, "report: vm %s listed twice", sorted[i]->uuid);
    }
    free(sorted);
    return rc;
}

static void
take_counters(const Memsched__Counters *m, struct wire_counters *c)
{
    if (!m)
        return;
    c->rounds = m->has_rounds ? m->rounds : 0;
    c->granted_kib = m->has_granted_kib ? m->granted_kib : 0;
    c->reclaimed_kib = m->has_reclaimed_kib ? m->reclaimed_kib : 0;
    c->apply_failures = m->has_apply_failures ? m->apply_failures : 0;
    c->reports_dropped = m->has_reports_dropped ? m->reports_dropped : 0;
    c->messages_rejected = m->has_messages_rejected ? m->messages_rejected : 0;
}

static int
take_report(const Memsched__Report *m, struct wire_report *r, char *err, size_t err_len)
{
    int rc = 0;

    if (m->n_vms > WIRE_VMS_MAX || m->n_decisions > m->n_vms)
        return util_fail(-EINVAL, err, err_len,
                         "report: %zu vms and %zu decisions (at most %d, and no more "
                         "decisions than vms)",
                         m->n_vms, m->n_decisions, WIRE_VMS_MAX);
    rc = rc
             ?: take_kib("host_total_kib", m->has_host_total_kib, m->host_total_kib,
                         &r->host_total_kib, err, err_len);
    rc = rc
             ?: take_kib("host_available_kib", m->has_host_available_kib, m->host_available_kib,
                         &r->host_available_kib, err, err_len);
    if (rc)
        return rc;
    r->vms = util_xcalloc(m->n_vms, sizeof(*r->vms));
    r->decisions = util_xcalloc(m->n_decisions, sizeof(*r->decisions));
    for (size_t i = 0; i < m->n_vms && rc == 0; i++, r->n_vms++)
        rc = take_vm(m->vms[i], &r->vms[i], err, err_len);
    for (size_t i = 0; i < m->n_decisions && rc == 0; i++, r->n_decisions++)
        rc = take_decision(m->decisions[i], &r->decisions[i], err, err_len);
    take_counters(m->counters, &r->counters);
    r->policy_version = m->has_policy_version ? m->policy_version : 0;
    /* An agent that says nothing of a total sent every VM it has. */
    r->vms_total = m->has_vms_total ? m->vms_total : m->n_vms;
    if (rc == 0 && (r->vms_total < m->n_vms || r->vms_total > WIRE_VMS_TOTAL_MAX))
        return util_fail(-EINVAL, err, err_len, "report: vms_total=%" PRIu64 " with %zu vms",
                         r->vms_total, m->n_vms);
    if (rc == 0 && m->policy_in_force) {
        char msg[POLICY_ERR_MAX];
        policy_init_defaults(&r->policy);
        if (take_policy(m->policy_in_force, &r->policy, msg, sizeof(msg)) < 0)
            return util_fail(-EINVAL, err, err_len, "report: policy_in_force: %s", msg);
        r->has_policy = true;
    }
    return rc ?: refuse_duplicates(r, err, err_len);
}

static int
take_push(const Memsched__PolicyPush *m, struct wire_policy_push *p, char *err, size_t err_len)
{
    char msg[POLICY_ERR_MAX];

    if (!valid_scope(m->scope))
        return util_fail(-EINVAL, err, err_len, "policy_push: bad scope");
    if (m->version == 0)
        return util_fail(-EINVAL, err, err_len, "policy_push: version 0 is reserved for 'none'");
    policy_init_defaults(&p->policy);
    if (!m->policy)
        return util_fail(-EINVAL, err, err_len, "policy_push: no policy");
    if (take_policy(m->policy, &p->policy, msg, sizeof(msg)) < 0)
        return util_fail(-EINVAL, err, err_len, "policy_push v%" PRIu64 ": %s", m->version, msg);
    p->version = m->version;
    p->epoch = m->has_epoch ? m->epoch : 0;
    strcpy(p->scope, m->scope);
    return 0;
}

static int
take_ack(const Memsched__PolicyAck *m, struct wire_policy_ack *a, char *err, size_t err_len)
{
    if (!wire_text_valid(m->reason, WIRE_REASON_MAX, true))
        return util_fail(-EINVAL, err, err_len, "policy_ack: bad reason");
    a->version = m->version;
    a->applied = m->applied;
    snprintf(a->reason, sizeof(a->reason), "%s", m->reason ? m->reason : "");
    return 0;
}

static int
take_body(const Memsched__Envelope *env, struct wire_msg *msg, char *err, size_t err_len)
{
    switch (env->body_case) {
    case MEMSCHED__ENVELOPE__BODY_HELLO:
        msg->body = WIRE_BODY_HELLO;
        return take_hello(env->hello, &msg->u.hello, err, err_len);
    case MEMSCHED__ENVELOPE__BODY_REPORT:
        msg->body = WIRE_BODY_REPORT;
        return take_report(env->report, &msg->u.report, err, err_len);
    case MEMSCHED__ENVELOPE__BODY_HEARTBEAT:
        msg->body = WIRE_BODY_HEARTBEAT;
        msg->u.heartbeat_policy_version =
            env->heartbeat->has_policy_version ? env->heartbeat->policy_version : 0;
        return 0;
    case MEMSCHED__ENVELOPE__BODY_POLICY_PUSH:
        msg->body = WIRE_BODY_POLICY_PUSH;
        return take_push(env->policy_push, &msg->u.push, err, err_len);
    case MEMSCHED__ENVELOPE__BODY_POLICY_ACK:
        msg->body = WIRE_BODY_POLICY_ACK;
        return take_ack(env->policy_ack, &msg->u.ack, err, err_len);
    case MEMSCHED__ENVELOPE__BODY_SAY_HELLO:
        msg->body = WIRE_BODY_SAY_HELLO;
        return 0;
    default:
        return util_fail(-EINVAL, err, err_len, "envelope without a body");
    }
}

/* protobuf-c allocates for every record of a repeated field before anyone can count them: a
 * 4 MiB message of a million empty VM records costs ~250 MB unpacked. Unpacking goes through
 * an allocator with a budget sized to the largest legal message instead, so what one message
 * can cost is bounded before validation sees it; past the budget unpack fails like a malformed
 * message.
 * The allocator is also an arena: a 50-VM report is some 150 small blocks, and malloc and free
 * for each were a fifth of the coordinator's ingest. Blocks come from a first chunk on the
 * stack, then from heap chunks of doubling size; nothing is freed one by one, the chunks go
 * when the message has been copied out. */
#define ARENA_STACK_BYTES (32 * 1024)
#define ARENA_ALIGN       _Alignof(max_align_t)

struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
    _Alignas(max_align_t) unsigned char data[];
};

struct unpack_arena {
    size_t left; /* of the budget */
    bool exceeded;
    unsigned char *cur; /* the chunk blocks come from, and how much of it is taken */
    size_t cur_size, cur_used;
    struct arena_chunk *heap; /* the heap chunks, newest first */
};

static void *
arena_alloc(void *data, size_t size)
{
    struct unpack_arena *a = data;
    size_t need = (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;

    if (size > a->left) {
        a->exceeded = true;
        return NULL;
    }
    a->left -= size;
    if (need > a->cur_size - a->cur_used) {
        size_t grown = 2 * a->cur_size;
        struct arena_chunk *c = malloc(sizeof(*c) + (need > grown ? need : grown));
        if (!c)
            return NULL; /* unpack fails as for a malformed message */
        c->size = need > grown ? need : grown;
        c->next = a->heap;
        a->heap = c;
        a->cur = c->data;
        a->cur_size = c->size;
        a->cur_used = 0;
    }
    void *p = a->cur + a->cur_used;
    a->cur_used += need;
    return p;
}

static void
arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr; /* the arena goes whole */
}

static void
arena_release(struct unpack_arena *a)
{
    while (a->heap) {
        struct arena_chunk *next = a->heap->next;
        free(a->heap);
        a->heap = next;
    }
}

int
wire_decode(const uint8_t *buf, size_t len, struct wire_msg *msg, char *err, size_t err_len)
{
    _Alignas(max_align_t) unsigned char first[ARENA_STACK_BYTES];
    struct unpack_arena arena = {
        .left = WIRE_UNPACK_BUDGET_BYTES, .cur = first, .cur_size = sizeof(first)};
    ProtobufCAllocator allocator = {
        .alloc = arena_alloc, .free = arena_free, .allocator_data = &arena};

    memset(msg, 0, sizeof(*msg));
    if (len > WIRE_MSG_MAX_BYTES) {
        snprintf(err, err_len, "message of %zu bytes, at most %d", len, WIRE_MSG_MAX_BYTES);
        return -EBADMSG;
    }
    Memsched__Envelope *env = memsched__envelope__unpack(&allocator, len, buf);
    if (!env) {
        arena_release(&arena);
        if (arena.exceeded) {
            snprintf(err, err_len, "message of %zu bytes unpacks to more than %d bytes", len,
                     WIRE_UNPACK_BUDGET_BYTES);
            return -E2BIG;
        }
        snprintf(err, err_len, "malformed message (%zu bytes)", len);
        return -EBADMSG;
    }
    int rc;
    if (env->protocol_version < WIRE_PROTOCOL_MIN || env->protocol_version > WIRE_PROTOCOL_VERSION)
        rc = util_fail(-EINVAL, err, err_len,
                       "protocol_version=%" PRIu32 " unsupported (want %d to %d)",
                       env->protocol_version, WIRE_PROTOCOL_MIN, WIRE_PROTOCOL_VERSION);
    else if (!wire_host_id_valid(env->host_id))
        rc = util_fail(-EINVAL, err, err_len, "bad host_id");
    else
        rc = take_body(env, msg, err, err_len);
    if (rc == 0) {
        msg->protocol_version = env->protocol_version;
        strcpy(msg->host_id, env->host_id);
        msg->sequence = env->sequence;
    }
    arena_release(&arena); /* the whole unpacked message: take_body copied what it keeps */
    if (rc < 0)
        wire_msg_clear(msg);
    return rc;
}

void
wire_msg_clear(struct wire_msg *msg)
{
    if (msg->body == WIRE_BODY_REPORT) {
        free(msg->u.report.vms);
        free(msg->u.report.decisions);
    }
    memset(msg, 0, sizeof(*msg));
}

const char *
wire_body_name(enum wire_body body)
{
    switch (body) {
    case WIRE_BODY_HELLO:
        return "hello";
    case WIRE_BODY_REPORT:
        return "report";
    case WIRE_BODY_HEARTBEAT:
        return "heartbeat";
    case WIRE_BODY_POLICY_PUSH:
        return "policy_push";
    case WIRE_BODY_POLICY_ACK:
        return "policy_ack";
    case WIRE_BODY_SAY_HELLO:
        return "say_hello";
    }
    return "invalid";
}

/* ---- encoding: our structs -> protobuf-c structs pointing into them -> bytes ---- */

/* The protobuf-c side of a report: arrays that point into the wire_report being sent. */
struct report_frame {
    Memsched__Report report;
    Memsched__VmStats *vms;
    Memsched__VmStats **vm_ptrs;
    Memsched__Decision *decisions;
    Memsched__Decision **decision_ptrs;
    Memsched__Counters counters;
    Memsched__Policy policy;
};

static void
frame_vm(const struct wire_vm *vm, Memsched__VmStats *m)
{
    memsched__vm_stats__init(m);
    m->uuid = (char *)vm->uuid;
    m->name = (char *)vm->name;
    m->has_state = true;
    m->state = (Memsched__VmStats__State)vm->state;
    m->has_max_kib = m->has_actual_kib = m->has_target_kib = true;
    m->max_kib = vm->max_kib;
    m->actual_kib = vm->actual_kib;
    m->target_kib = vm->target_kib;
    m->has_unused_kib = vm->has_unused;
    m->unused_kib = vm->unused_kib;
    m->has_usable_kib = vm->has_usable;
    m->usable_kib = vm->usable_kib;
    m->has_stats_age_ms = vm->has_unused || vm->has_usable;
    m->stats_age_ms = vm->stats_age_ms;
    m->has_managed = m->has_stuck = true;
    m->managed = vm->managed;
    m->stuck = vm->stuck;
    m->has_min_kib = vm->min_kib != 0;
    m->min_kib = vm->min_kib;
    m->has_cap_kib = vm->cap_kib != 0;
    m->cap_kib = vm->cap_kib;
    m->has_weight = vm->weight != 0;
    m->weight = vm->weight;
    if (sched_reason_is_skip(vm->skip_reason))
        m->skip_reason = (char *)sched_reason_name(vm->skip_reason);
    else if (vm->skip_reason == WIRE_SKIP_OTHER)
        m->skip_reason = (char *)"other";
}

static void
frame_decision_figures(const struct wire_decision *w, Memsched__Decision *d)
{
    d->has_signal_kib = d->has_need_kib = d->has_lookahead_kib = true;
    d->has_vm_kib = d->has_host_kib = true;
    d->signal_kib = w->signal_kib;
    d->need_kib = w->need_kib;
    d->lookahead_kib = w->lookahead_kib;
    d->vm_kib = w->vm_kib;
    d->host_kib = w->host_kib;
}

static void
frame_report(const struct wire_report *r, struct report_frame *f)
{
    memsched__report__init(&f->report);
    memsched__counters__init(&f->counters);
    f->vms = util_xcalloc(r->n_vms, sizeof(*f->vms));
    f->vm_ptrs = util_xcalloc(r->n_vms, sizeof(*f->vm_ptrs));
    f->decisions = util_xcalloc(r->n_decisions, sizeof(*f->decisions));
    f->decision_ptrs = util_xcalloc(r->n_decisions, sizeof(*f->decision_ptrs));
    for (size_t i = 0; i < r->n_vms; i++) {
        frame_vm(&r->vms[i], &f->vms[i]);
        f->vm_ptrs[i] = &f->vms[i];
    }
    for (size_t i = 0; i < r->n_decisions; i++) {
        Memsched__Decision *d = &f->decisions[i];
        memsched__decision__init(d);
        d->uuid = (char *)r->decisions[i].uuid;
        d->reason = (char *)sched_reason_name(r->decisions[i].reason);
        d->has_old_target_kib = d->has_new_target_kib = true;
        d->old_target_kib = r->decisions[i].old_target_kib;
        d->new_target_kib = r->decisions[i].new_target_kib;
        d->counterpart =
            r->decisions[i].counterpart[0] ? (char *)r->decisions[i].counterpart : NULL;
        frame_decision_figures(&r->decisions[i], d);
        f->decision_ptrs[i] = d;
    }
    const struct wire_counters *c = &r->counters;
    f->counters.has_rounds = f->counters.has_granted_kib = f->counters.has_reclaimed_kib = true;
    f->counters.has_apply_failures = f->counters.has_reports_dropped = true;
    f->counters.has_messages_rejected = true;
    f->counters.rounds = c->rounds;
    f->counters.granted_kib = c->granted_kib;
    f->counters.reclaimed_kib = c->reclaimed_kib;
    f->counters.apply_failures = c->apply_failures;
    f->counters.reports_dropped = c->reports_dropped;
    f->counters.messages_rejected = c->messages_rejected;
    f->report.has_host_total_kib = f->report.has_host_available_kib = true;
    f->report.host_total_kib = r->host_total_kib;
    f->report.host_available_kib = r->host_available_kib;
    f->report.n_vms = r->n_vms;
    f->report.vms = f->vm_ptrs;
    f->report.n_decisions = r->n_decisions;
    f->report.decisions = f->decision_ptrs;
    f->report.counters = &f->counters;
    f->report.has_policy_version = true;
    f->report.policy_version = r->policy_version;
    f->report.has_vms_total = r->vms_total > r->n_vms; /* only when the report was cut */
    f->report.vms_total = r->vms_total;
    if (r->has_policy) {
        fill_policy(&r->policy, &f->policy);
        f->report.policy_in_force = &f->policy;
    }
}

static void
free_report_frame(struct report_frame *f)
{
    free(f->vms);
    free(f->vm_ptrs);
    free(f->decisions);
    free(f->decision_ptrs);
}

/* Everything a body needs on the protobuf-c side, alive until the message is packed. */
struct frame {
    Memsched__Envelope env;
    Memsched__Hello hello;
    Memsched__Label labels[WIRE_LABELS_MAX];
    Memsched__Label *label_ptrs[WIRE_LABELS_MAX];
    struct report_frame report;
    Memsched__Heartbeat heartbeat;
    Memsched__PolicyPush push;
    Memsched__Policy policy;
    Memsched__PolicyAck ack;
    Memsched__SayHello say_hello;
};

static void
frame_hello(const struct wire_hello *h, struct frame *f)
{
    memsched__hello__init(&f->hello);
    f->hello.agent_version = (char *)h->agent_version;
    for (size_t i = 0; i < h->n_labels && i < WIRE_LABELS_MAX; i++) {
        memsched__label__init(&f->labels[i]);
        f->labels[i].key = (char *)h->labels[i].key;
        f->labels[i].value = (char *)h->labels[i].value;
        f->label_ptrs[i] = &f->labels[i];
    }
    f->hello.n_labels = h->n_labels < WIRE_LABELS_MAX ? h->n_labels : WIRE_LABELS_MAX;
    f->hello.labels = f->label_ptrs;
    f->hello.has_policy_version = h->policy_version != 0;
    f->hello.policy_version = h->policy_version;
    f->hello.has_policy_epoch = h->policy_epoch != 0;
    f->hello.policy_epoch = h->policy_epoch;
    f->env.body_case = MEMSCHED__ENVELOPE__BODY_HELLO;
    f->env.hello = &f->hello;
}

static int
frame_body(const struct wire_msg *msg, struct frame *f)
{
    switch (msg->body) {
    case WIRE_BODY_HELLO:
        frame_hello(&msg->u.hello, f);
        return 0;
    case WIRE_BODY_REPORT:
        frame_report(&msg->u.report, &f->report);
        f->env.body_case = MEMSCHED__ENVELOPE__BODY_REPORT;
        f->env.report = &f->report.report;
        return 0;
    case WIRE_BODY_HEARTBEAT:
        memsched__heartbeat__init(&f->heartbeat);
        f->heartbeat.has_policy_version = true;
        f->heartbeat.policy_version = msg->u.heartbeat_policy_version;
        f->env.body_case = MEMSCHED__ENVELOPE__BODY_HEARTBEAT;
        f->env.heartbeat = &f->heartbeat;
        return 0;
    case WIRE_BODY_POLICY_PUSH:
        memsched__policy_push__init(&f->push);
        fill_policy(&msg->u.push.policy, &f->policy);
        f->push.version = msg->u.push.version;
        f->push.has_epoch = msg->u.push.epoch != 0;
        f->push.epoch = msg->u.push.epoch;
        f->push.scope = (char *)msg->u.push.scope;
        f->push.policy = &f->policy;
        f->env.body_case = MEMSCHED__ENVELOPE__BODY_POLICY_PUSH;
        f->env.policy_push = &f->push;
        return 0;
    case WIRE_BODY_POLICY_ACK:
        memsched__policy_ack__init(&f->ack);
        f->ack.version = msg->u.ack.version;
        f->ack.applied = msg->u.ack.applied;
        f->ack.reason = msg->u.ack.reason[0] ? (char *)msg->u.ack.reason : NULL;
        f->env.body_case = MEMSCHED__ENVELOPE__BODY_POLICY_ACK;
        f->env.policy_ack = &f->ack;
        return 0;
    case WIRE_BODY_SAY_HELLO:
        memsched__say_hello__init(&f->say_hello);
        f->env.body_case = MEMSCHED__ENVELOPE__BODY_SAY_HELLO;
        f->env.say_hello = &f->say_hello;
        return 0;
    }
    return -EINVAL;
}

int
wire_encode(const struct wire_msg *msg, uint8_t **buf, size_t *len, char *err, size_t err_len)
{
    struct frame *f = util_xcalloc(1, sizeof(*f));
    struct wire_msg check;
    int rc;

    *buf = NULL;
    memsched__envelope__init(&f->env);
    f->env.protocol_version = msg->protocol_version ? msg->protocol_version : WIRE_PROTOCOL_VERSION;
    f->env.host_id = (char *)msg->host_id;
    f->env.sequence = msg->sequence;
    rc = frame_body(msg, f);
    if (rc == 0) {
        size_t size = memsched__envelope__get_packed_size(&f->env);
        *buf = util_xmalloc(size);
        *len = memsched__envelope__pack(&f->env, *buf);
        /* Send nothing a receiver would refuse: the same gate on both ends. */
        rc = wire_decode(*buf, *len, &check, err, err_len);
        wire_msg_clear(&check);
    } else {
        snprintf(err, err_len, "unknown body %d", (int)msg->body);
    }
    if (msg->body == WIRE_BODY_REPORT)
        free_report_frame(&f->report);
    free(f);
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

int
wire_send(struct wire_msg *msg,
          const char *host_id,
          uint64_t *sequence,
          wire_send_fn send,
          void *ctx,
          char *err,
          size_t err_len)
{
    uint8_t *buf;
    size_t len;

    msg->protocol_version = WIRE_PROTOCOL_VERSION;
    snprintf(msg->host_id, sizeof(msg->host_id), "%s", host_id);
    msg->sequence = ++*sequence;
    int rc = wire_encode(msg, &buf, &len, err, err_len);
    if (rc < 0)
        return rc;
    rc = send(ctx, buf, len);
    if (rc < 0)
        snprintf(err, err_len, "send: %s", strerror(-rc));
    free(buf);
    return rc < 0 ? rc : 0;
}

/* ---- control messages ---- */

static int
take_request(const Memsched__ControlRequest *m,
             struct wire_control_request *req,
             char *err,
             size_t err_len)
{
    if (!wire_token_valid(m->command, WIRE_COMMAND_MAX))
        return util_fail(-EINVAL, err, err_len, "control: bad command");
    if (m->n_args > WIRE_ARGS_MAX)
        return util_fail(-EINVAL, err, err_len, "control: %zu arguments, at most %d", m->n_args,
                         WIRE_ARGS_MAX);
    for (size_t i = 0; i < m->n_args; i++) {
        if (!wire_text_valid(m->args[i], WIRE_ARG_MAX, true))
            return util_fail(-EINVAL, err, err_len, "control: argument %zu too long or not text",
                             i + 1);
        strcpy(req->args[i], m->args[i]);
    }
    if (!wire_text_valid(m->author, WIRE_AUTHOR_MAX, true))
        return util_fail(-EINVAL, err, err_len, "control: bad author");
    strcpy(req->command, m->command);
    req->n_args = m->n_args;
    req->json = m->has_json && m->json;
    snprintf(req->author, sizeof(req->author), "%s", m->author ? m->author : "");
    return 0;
}

int
wire_decode_control_request(
    const uint8_t *buf, size_t len, struct wire_control_request *req, char *err, size_t err_len)
{
    memset(req, 0, sizeof(*req));
    if (len > WIRE_MSG_MAX_BYTES) {
        snprintf(err, err_len, "control: %zu bytes, at most %d", len, WIRE_MSG_MAX_BYTES);
        return -EBADMSG;
    }
    Memsched__ControlRequest *m = memsched__control_request__unpack(NULL, len, buf);
    if (!m) {
        snprintf(err, err_len, "control: malformed request (%zu bytes)", len);
        return -EBADMSG;
    }
    int rc = take_request(m, req, err, err_len);
    memsched__control_request__free_unpacked(m, NULL);
    if (rc < 0)
        memset(req, 0, sizeof(*req));
    return rc;
}

int
wire_encode_control_request(
    const struct wire_control_request *req, uint8_t **buf, size_t *len, char *err, size_t err_len)
{
    Memsched__ControlRequest m = MEMSCHED__CONTROL_REQUEST__INIT;
    char *args[WIRE_ARGS_MAX];
    struct wire_control_request check;

    if (req->n_args > WIRE_ARGS_MAX)
        return util_fail(-EINVAL, err, err_len, "control: %zu arguments, at most %d", req->n_args,
                         WIRE_ARGS_MAX);
    for (size_t i = 0; i < req->n_args; i++)
        args[i] = (char *)req->args[i];
    m.command = (char *)req->command;
    m.n_args = req->n_args;
    m.args = args;
    m.has_json = true;
    m.json = req->json;
    m.author = (char *)req->author;
    size_t size = memsched__control_request__get_packed_size(&m);
    *buf = util_xmalloc(size);
    *len = memsched__control_request__pack(&m, *buf);
    int rc = wire_decode_control_request(*buf, *len, &check, err, err_len);
    if (rc < 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

int
wire_encode_control_reply(int status, const char *body, uint8_t **buf, size_t *len)
{
    Memsched__ControlReply m = MEMSCHED__CONTROL_REPLY__INIT;

    m.status = status;
    m.body = (char *)body;
    size_t size = memsched__control_reply__get_packed_size(&m);
    *buf = util_xmalloc(size);
    *len = memsched__control_reply__pack(&m, *buf);
    return 0;
}

int
wire_decode_control_reply(
    const uint8_t *buf, size_t len, struct wire_control_reply *reply, char *err, size_t err_len)
{
    memset(reply, 0, sizeof(*reply));
    Memsched__ControlReply *m =
        len <= WIRE_MSG_MAX_BYTES ? memsched__control_reply__unpack(NULL, len, buf) : NULL;
    if (!m) {
        snprintf(err, err_len, "control: malformed reply (%zu bytes)", len);
        return -EBADMSG;
    }
    reply->status = m->status;
    reply->body = util_xstrdup(m->body ? m->body : "");
    memsched__control_reply__free_unpacked(m, NULL);
    return 0;
}

void
wire_control_reply_clear(struct wire_control_reply *reply)
{
    free(reply->body);
    memset(reply, 0, sizeof(*reply));
}

/*
 * fleet.c - the fleet state core: hosts by id, their last reports, recent decisions, liveness,
 * the event log and the totals.
 *
 * Owns every host record (one allocation each, plus its VM array, its names arena, its labels
 * block and its decision ring), the hash table of host pointers, the event ring and the scratch
 * room a report is decoded into. Invariants beyond those in fleet.h:
 *  - a host's vms[] is sorted by uuid with no duplicate, and every vms[i].name points into that
 *    host's names arena (or at a static ""), rebuilt as a whole by each applied report;
 *  - a report is checked completely in scratch before the host is touched, so a refused report
 *    leaves no trace;
 *  - no allocation per VM: ingest costs one sort and a few copies per report, and the host's
 *    arrays are resized only when its VM count or name bytes grow (or fall below half).
 */
#define _GNU_SOURCE /* qsort_r */
#include "fleet.h"
#include "util.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINUTE_BUCKETS 60 /* one per second of the decisions-per-minute window */

/* One host's part of the fleet totals, as last added to them: taken out before its report or
 * liveness changes and put back after, so fleet_totals() answers without visiting any host. */
struct share {
    uint64_t host_total_kib;
    uint64_t host_available_kib;
    uint64_t vm_actual_kib;
    uint64_t vm_max_kib;
    size_t vms;      /* every VM it reported, down or not (fleet_vm_count) */
    size_t pressure; /* of those, under pressure at the fleet's pressure threshold */
    bool reporting;  /* has a report and is not down: its sums count */
    enum fleet_liveness liveness;
};

/* The shares of every host added up. 128 bits: 10^5 hosts of legal sizes can sum past 2^64, and
 * a saturated sum could not be taken from again; fleet_totals() saturates what it hands out. */
struct sums {
    size_t hosts_by_liveness[FLEET_LIVENESS_STATES];
    size_t hosts_reporting;
    size_t vms_reporting;
    size_t vms;
    size_t pressure_reporting;
    unsigned __int128 host_total_kib;
    unsigned __int128 host_available_kib;
    unsigned __int128 vm_actual_kib;
    unsigned __int128 vm_max_kib;
};

struct host {
    char id[WIRE_HOST_ID_MAX];
    char agent_version[WIRE_VERSION_MAX];
    uint64_t hash;
    char **labels; /* one block: n_labels pointers, then the "KEY=VALUE" strings */
    size_t n_labels;
    uint64_t policy_version;
    uint64_t first_seen_ms;
    uint64_t last_seen_ms;
    uint64_t last_report_ms;
    uint64_t report_seq;  /* last applied report */
    uint64_t message_seq; /* newest applied report or heartbeat: the policy version is its */
    bool has_report_seq;
    bool has_message_seq;
    bool has_report;
    bool last_ack_applied;
    enum fleet_liveness liveness;
    uint64_t last_ack_version;
    uint64_t host_total_kib;
    uint64_t host_available_kib;
    uint64_t vms_total; /* the host's VMs; more than n_vms when its report was cut */
    struct wire_counters counters;
    struct fleet_vm *vms;
    size_t n_vms;
    size_t cap_vms;
    char *names;
    size_t cap_names;
    uint64_t vm_actual_kib;
    uint64_t vm_max_kib;
    struct fleet_decision *decisions; /* ring of decisions_per_host, made on first use */
    size_t decisions_next;            /* where the next one goes */
    size_t n_decisions;
    uint64_t decisions_total;
    struct policy policy_in_force;
    bool has_policy_in_force;
    uint64_t decisions_by_reason[SCHED_REASON_COUNT];
    uint64_t moved_kib_by_reason[SCHED_REASON_COUNT];
    struct share share; /* what it adds to the fleet's sums now */
};

/* A VM decoded from a report, before it is sorted and moved into its host. */
struct scratch_vm {
    struct fleet_vm vm;
    uint32_t name_off; /* into scratch_names; NO_NAME for "" */
};

#define NO_NAME UINT32_MAX

struct fleet {
    struct fleet_opts opts;
    struct host **slots; /* open addressing, linear probing; n_slots is a power of two */
    size_t n_slots;
    size_t n_hosts;
    struct fleet_event *events; /* event seq s lives at (s - 1) % events_max */
    uint64_t event_seq;         /* the newest event's */
    struct {
        uint64_t sec;
        uint64_t count;
    } minute[MINUTE_BUCKETS];
    struct scratch_vm *scratch_vms;
    struct fleet_decision *scratch_decisions;
    size_t scratch_cap;
    char *scratch_names;
    size_t scratch_names_cap;
    struct sums sums;
    uint64_t pressure_kib; /* the threshold the shares count VMs under pressure at */
    /* The hosts sorted by id, for listings and their pages: rebuilt when read after a host
     * joined or left (a restart's thousands of hellos sort once, not once each). */
    struct host **by_id;
    bool by_id_stale;
};

static const char empty_name[] = "";

/* ---- names, uuids and scopes ---- */

static int
hex_value(char c)
{
    unsigned digit = (unsigned)(unsigned char)c - '0';
    unsigned letter = ((unsigned)(unsigned char)c | 0x20) - 'a'; /* either case */

    if (digit < 10)
        return (int)digit;
    return letter < 6 ? (int)letter + 10 : -1;
}

/* Every VM of every report has its uuid parsed: the dashes are checked once, and each byte's
 * two digits are read from where they stand, with no test per character of where that is. */
int
fleet_uuid_parse(const char *text, uint8_t uuid[FLEET_UUID_BYTES])
{
    static const uint8_t at[FLEET_UUID_BYTES] = {0,  2,  4,  6,  9,  11, 14, 16,
                                                 19, 21, 24, 26, 28, 30, 32, 34};
    uint8_t out[FLEET_UUID_BYTES];

    /* strnlen first: text shorter than a uuid is never read past its NUL. */
    if (strnlen(text, WIRE_UUID_LEN) != WIRE_UUID_LEN - 1 || text[8] != '-' || text[13] != '-' ||
        text[18] != '-' || text[23] != '-')
        return -EINVAL;
    for (size_t byte = 0; byte < FLEET_UUID_BYTES; byte++) {
        int hi = hex_value(text[at[byte]]), lo = hex_value(text[at[byte] + 1]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        out[byte] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(uuid, out, sizeof(out));
    return 0;
}

void
fleet_uuid_format(const uint8_t uuid[FLEET_UUID_BYTES], char out[WIRE_UUID_LEN])
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < FLEET_UUID_BYTES; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = digits[uuid[i] >> 4];
        out[o++] = digits[uuid[i] & 0xf];
    }
    out[o] = '\0';
}

const char *
fleet_liveness_name(enum fleet_liveness liveness)
{
    switch (liveness) {
    case FLEET_LIVENESS_FRESH:
        return "fresh";
    case FLEET_LIVENESS_STALE:
        return "stale";
    case FLEET_LIVENESS_DOWN:
        return "down";
    }
    return "unknown";
}

const char *
fleet_event_kind_name(enum fleet_event_kind kind)
{
    switch (kind) {
    case FLEET_EVENT_JOINED:
        return "joined";
    case FLEET_EVENT_REJOINED:
        return "rejoined";
    case FLEET_EVENT_STALE:
        return "stale";
    case FLEET_EVENT_DOWN:
        return "down";
    case FLEET_EVENT_BACK:
        return "back";
    case FLEET_EVENT_POLICY_APPLIED:
        return "policy_applied";
    case FLEET_EVENT_POLICY_REFUSED:
        return "policy_refused";
    case FLEET_EVENT_REMOVED:
        return "removed";
    }
    return "unknown";
}

/* ---- the host table ---- */

static size_t
slot_of(const struct fleet *f, const char *id, uint64_t hash)
{
    size_t mask = f->n_slots - 1, i = (size_t)hash & mask;

    while (f->slots[i] && (f->slots[i]->hash != hash || strcmp(f->slots[i]->id, id) != 0))
        i = (i + 1) & mask;
    return i;
}

static struct host *
host_find(const struct fleet *f, const char *id)
{
    if (!id)
        return NULL;
    return f->slots[slot_of(f, id, util_hash_str(id))];
}

static void
table_grow(struct fleet *f)
{
    struct host **old = f->slots;
    size_t n_old = f->n_slots;

    f->n_slots *= 2;
    f->slots = util_xcalloc(f->n_slots, sizeof(*f->slots));
    for (size_t i = 0; i < n_old; i++) {
        if (old[i])
            f->slots[slot_of(f, old[i]->id, old[i]->hash)] = old[i];
    }
    free(old);
}

/* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
static void
table_remove(struct fleet *f, size_t i)
{
    size_t mask = f->n_slots - 1, j = i;

    f->slots[i] = NULL;
    for (;;) {
        j = (j + 1) & mask;
        if (!f->slots[j])
            break;
        size_t home = (size_t)f->slots[j]->hash & mask;
        /* slots[j] may fill the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        f->slots[i] = f->slots[j];
        f->slots[j] = NULL;
        i = j;
    }
    f->n_hosts--;
    f->by_id_stale = true;
}

static void
host_free(struct host *h)
{
    if (!h)
        return;
    free(h->labels);
    free(h->vms);
    free(h->names);
    free(h->decisions);
    free(h);
}

/* ---- the totals, kept as hosts change ---- */

static bool
vm_under_pressure(const struct fleet_vm *vm, uint64_t pressure_kib)
{
    return (vm->has_unused && vm->unused_kib < pressure_kib) ||
           vm->last_reason == SCHED_REASON_NEED_UNMET;
}

static size_t
pressure_count(const struct host *h, uint64_t pressure_kib)
{
    size_t n = 0;

    for (size_t v = 0; v < h->n_vms; v++)
        n += vm_under_pressure(&h->vms[v], pressure_kib);
    return n;
}

static void
sums_apply(struct sums *sum, const struct share *sh, bool add)
{
    /* Unsigned wrap-around makes taking away exact: what is taken was added before. */
    size_t sign = add ? 1 : (size_t)-1;
    unsigned __int128 wide = add ? 1 : (unsigned __int128)-1;

    sum->hosts_by_liveness[sh->liveness] += sign;
    sum->vms += sign * sh->vms;
    if (!sh->reporting)
        return;
    sum->hosts_reporting += sign;
    sum->vms_reporting += sign * sh->vms;
    sum->pressure_reporting += sign * sh->pressure;
    sum->host_total_kib += wide * sh->host_total_kib;
    sum->host_available_kib += wide * sh->host_available_kib;
    sum->vm_actual_kib += wide * sh->vm_actual_kib;
    sum->vm_max_kib += wide * sh->vm_max_kib;
}

/* Take h's share out of the sums, before it changes. */
static void
share_take(struct fleet *f, const struct host *h)
{
    sums_apply(&f->sums, &h->share, false);
}

/* Work h's share out from what it is now and add it to the sums. */
static void
share_put(struct fleet *f, struct host *h)
{
    struct share *sh = &h->share;

    memset(sh, 0, sizeof(*sh));
    sh->liveness = h->liveness;
    sh->vms = h->n_vms;
    /* A down host's numbers are its past, not the fleet's present. */
    sh->reporting = h->has_report && h->liveness != FLEET_LIVENESS_DOWN;
    if (sh->reporting) {
        sh->host_total_kib = h->host_total_kib;
        sh->host_available_kib = h->host_available_kib;
        sh->vm_actual_kib = h->vm_actual_kib;
        sh->vm_max_kib = h->vm_max_kib;
        sh->pressure = pressure_count(h, f->pressure_kib);
    }
    sums_apply(&f->sums, sh, true);
}

static uint64_t
saturated(unsigned __int128 v)
{
    return v > UINT64_MAX ? UINT64_MAX : (uint64_t)v;
}

/* ---- events ---- */

static struct fleet_event *
event_add(struct fleet *f, enum fleet_event_kind kind, const struct host *h, uint64_t now_ms)
{
    struct fleet_event *e = &f->events[f->event_seq % f->opts.events_max];

    memset(e, 0, sizeof(*e));
    e->seq = ++f->event_seq;
    e->at_ms = now_ms;
    e->kind = kind;
    strcpy(e->host_id, h->id);
    e->from = h->liveness;
    e->policy_version = h->policy_version;
    return e;
}

int
fleet_events(const struct fleet *f, uint64_t after_seq, fleet_event_cb cb, void *ctx)
{
    uint64_t kept = f->event_seq < f->opts.events_max ? f->event_seq : f->opts.events_max;
    uint64_t first = f->event_seq - kept + 1;

    if (after_seq + 1 > first)
        first = after_seq + 1;
    for (uint64_t s = first; s <= f->event_seq; s++) {
        const struct fleet_event *e = &f->events[(s - 1) % f->opts.events_max];
        if (e->seq != s)
            continue; /* a gap left by restored events */
        int rc = cb(e, ctx);
        if (rc != 0)
            return rc < 0 ? rc : 0;
    }
    return 0;
}

int
fleet_event_restore(struct fleet *f, const struct fleet_event *e)
{
    if (e->seq <= f->event_seq || !wire_host_id_valid(e->host_id) ||
        (unsigned)e->kind > FLEET_EVENT_REMOVED || (unsigned)e->from >= FLEET_LIVENESS_STATES)
        return -EINVAL;
    /* Slots a gap skips over must not show an older event under a newer number. */
    for (uint64_t s = f->event_seq + 1; s < e->seq && s - f->event_seq <= f->opts.events_max; s++)
        memset(&f->events[(s - 1) % f->opts.events_max], 0, sizeof(*e));
    f->events[(e->seq - 1) % f->opts.events_max] = *e;
    f->event_seq = e->seq;
    return 0;
}

uint64_t
fleet_last_event_seq(const struct fleet *f)
{
    return f->event_seq;
}

/* ---- life cycle ---- */

struct fleet *
fleet_new(const struct fleet_opts *opts)
{
    struct fleet *f = util_xcalloc(1, sizeof(*f));

    if (opts)
        f->opts = *opts;
    if (!f->opts.stale_after_ms)
        f->opts.stale_after_ms = FLEET_STALE_AFTER_MS_DEFAULT;
    if (!f->opts.down_after_ms)
        f->opts.down_after_ms = FLEET_DOWN_AFTER_MS_DEFAULT;
    if (!f->opts.decisions_per_host)
        f->opts.decisions_per_host = FLEET_DECISIONS_PER_HOST_DEFAULT;
    if (!f->opts.events_max)
        f->opts.events_max = FLEET_EVENTS_MAX_DEFAULT;
    if (!f->opts.hosts_max)
        f->opts.hosts_max = FLEET_HOSTS_MAX_DEFAULT;
    assert(f->opts.stale_after_ms < f->opts.down_after_ms);
    f->n_slots = 64;
    f->slots = util_xcalloc(f->n_slots, sizeof(*f->slots));
    f->events = util_xcalloc(f->opts.events_max, sizeof(*f->events));
    return f;
}

void
fleet_destroy(struct fleet **fleet)
{
    struct fleet *f;

    if (!fleet || !*fleet)
        return;
    f = *fleet;
    for (size_t i = 0; i < f->n_slots; i++)
        host_free(f->slots[i]);
    free(f->slots);
    free(f->by_id);
    free(f->events);
    free(f->scratch_vms);
    free(f->scratch_decisions);
    free(f->scratch_names);
    free(f);
    *fleet = NULL;
}

/* ---- messages ---- */

static void
touch(struct host *h, uint64_t now_ms)
{
    if (now_ms > h->last_seen_ms)
        h->last_seen_ms = now_ms;
}

/* Labels as one block of "KEY=VALUE" strings behind their pointers; NULL when invalid. */
static char **
labels_make(const struct wire_label *labels, size_t n)
{
    size_t bytes = n * sizeof(char *);
    char **block, *p;

    if (n > WIRE_LABELS_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!wire_token_valid(labels[i].key, sizeof(labels[i].key)) ||
            !wire_text_valid(labels[i].value, sizeof(labels[i].value), false))
            return NULL;
        bytes += strlen(labels[i].key) + 1 + strlen(labels[i].value) + 1;
    }
    block = util_xrealloc(NULL, bytes, 1);
    p = (char *)(block + n);
    for (size_t i = 0; i < n; i++) {
        block[i] = p;
        p += sprintf(p, "%s=%s", labels[i].key, labels[i].value) + 1;
    }
    return block;
}

int
fleet_hello(struct fleet *f, const char *host_id, const struct wire_hello *hello, uint64_t now_ms)
{
    struct host *h;
    char **labels;
    size_t slot;
    uint64_t hash;
    bool joined = false;

    if (!host_id || !wire_host_id_valid(host_id) ||
        strnlen(hello->agent_version, sizeof(hello->agent_version)) >= sizeof(hello->agent_version))
        return -EINVAL;
    labels = labels_make(hello->labels, hello->n_labels);
    if (!labels)
        return -EINVAL;
    hash = util_hash_str(host_id);
    slot = slot_of(f, host_id, hash);
    h = f->slots[slot];
    if (!h) {
        if (f->n_hosts >= f->opts.hosts_max) {
            free(labels);
            return -ENOSPC;
        }
        h = util_xcalloc(1, sizeof(*h));
        strcpy(h->id, host_id);
        h->hash = hash;
        h->first_seen_ms = h->last_seen_ms = now_ms;
        h->liveness = FLEET_LIVENESS_FRESH;
        f->slots[slot] = h;
        f->n_hosts++;
        f->by_id_stale = true;
        share_put(f, h);
        joined = true;
        if (f->n_hosts * 2 > f->n_slots)
            table_grow(f);
    }
    free(h->labels);
    h->labels = labels;
    h->n_labels = hello->n_labels;
    strcpy(h->agent_version, hello->agent_version);
    h->policy_version = hello->policy_version;
    /* A hello starts the agent's numbering afresh (it restarted, or reconnected). */
    h->has_report_seq = h->has_message_seq = false;
    touch(h, now_ms);
    struct fleet_event *e =
        event_add(f, joined ? FLEET_EVENT_JOINED : FLEET_EVENT_REJOINED, h, now_ms);
    snprintf(e->detail, sizeof(e->detail), "%s", h->agent_version);
    return 0;
}

/* Room in scratch for n VMs and decisions and name_bytes of names. */
static void
scratch_reserve(struct fleet *f, size_t n, size_t name_bytes)
{
    if (n > f->scratch_cap) {
        f->scratch_vms = util_xrealloc(f->scratch_vms, n, sizeof(*f->scratch_vms));
        f->scratch_decisions =
            util_xrealloc(f->scratch_decisions, n, sizeof(*f->scratch_decisions));
        f->scratch_cap = n;
    }
    if (name_bytes > f->scratch_names_cap) {
        f->scratch_names = util_xrealloc(f->scratch_names, name_bytes, 1);
        f->scratch_names_cap = name_bytes;
    }
}

static int
compare_scratch_uuid(const void *a, const void *b)
{
    return memcmp(((const struct scratch_vm *)a)->vm.uuid, ((const struct scratch_vm *)b)->vm.uuid,
                  FLEET_UUID_BYTES);
}

static int
compare_uuid_key(const void *key, const void *elem)
{
    return memcmp(key, ((const struct scratch_vm *)elem)->vm.uuid, FLEET_UUID_BYTES);
}

/* Decode the report's VMs into scratch, sorted by uuid and without duplicates. Returns the
 * count, or -EINVAL with nothing changed outside scratch. */
static int
decode_vms(struct fleet *f, const struct wire_report *r, size_t *n_out, size_t *names_len)
{
    size_t name_bytes = 0, n = 0, used = 0;
    bool sorted = true;

    for (size_t i = 0; i < r->n_vms; i++) {
        size_t len = strnlen(r->vms[i].name, sizeof(r->vms[i].name));
        if (len == sizeof(r->vms[i].name))
            return -EINVAL; /* not terminated */
        name_bytes += len ? len + 1 : 0;
    }
    scratch_reserve(f, r->n_vms, name_bytes);
    for (size_t i = 0; i < r->n_vms; i++) {
        const struct wire_vm *w = &r->vms[i];
        struct scratch_vm *s = &f->scratch_vms[i];
        size_t len = strlen(w->name);

        if (fleet_uuid_parse(w->uuid, s->vm.uuid) < 0 || (unsigned)w->state > SCHED_VM_OTHER)
            return -EINVAL;
        s->vm.max_kib = w->max_kib;
        s->vm.actual_kib = w->actual_kib;
        s->vm.target_kib = w->target_kib;
        s->vm.unused_kib = w->unused_kib;
        s->vm.usable_kib = w->usable_kib;
        s->vm.name = empty_name;
        s->vm.stats_age_ms = w->stats_age_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)w->stats_age_ms;
        s->vm.state = (uint8_t)w->state;
        s->vm.last_reason = FLEET_REASON_NONE;
        s->vm.skip_reason =
            sched_reason_is_skip(w->skip_reason) || w->skip_reason == WIRE_SKIP_OTHER
                ? (uint8_t)w->skip_reason
                : FLEET_REASON_NONE;
        s->vm.has_unused = w->has_unused;
        s->vm.has_usable = w->has_usable;
        s->vm.managed = w->managed;
        s->vm.stuck = w->stuck;
        s->vm.weight = (uint16_t)w->weight; /* the wire allows at most SCHED_WEIGHT_MAX */
        s->vm.min_mib = (uint32_t)(w->min_kib / UTIL_KIB_PER_MIB);
        s->vm.cap_mib = (uint32_t)(w->cap_kib / UTIL_KIB_PER_MIB);
        s->name_off = NO_NAME;
        if (len) {
            memcpy(f->scratch_names + used, w->name, len + 1);
            s->name_off = (uint32_t)used;
            used += len + 1;
        }
        if (i > 0 && compare_scratch_uuid(s - 1, s) >= 0)
            sorted = false;
    }
    /* Agents list VMs in libvirt's order; sorting here makes replacing the set, carrying each
     * VM's last reason over and matching decisions linear or logarithmic. */
    if (!sorted)
        qsort(f->scratch_vms, r->n_vms, sizeof(*f->scratch_vms), compare_scratch_uuid);
    for (size_t i = 0; i < r->n_vms; i++) {
        /* wire.c refuses duplicate uuids; two spellings of one (upper and lower case) meet
         * here: the first is kept. */
        if (n > 0 && compare_scratch_uuid(&f->scratch_vms[n - 1], &f->scratch_vms[i]) == 0)
            continue;
        f->scratch_vms[n++] = f->scratch_vms[i];
    }
    *n_out = n;
    *names_len = used;
    return 0;
}

/* KiB to whole MiB, saturating at what 32 bits hold (4 PiB). */
static uint32_t
mib32(uint64_t kib)
{
    uint64_t mib = kib / UTIL_KIB_PER_MIB;
    return mib > UINT32_MAX ? UINT32_MAX : (uint32_t)mib;
}

static int
decode_decisions(struct fleet *f, const struct wire_report *r, uint64_t now_ms)
{
    for (size_t i = 0; i < r->n_decisions; i++) {
        const struct wire_decision *w = &r->decisions[i];
        struct fleet_decision *d = &f->scratch_decisions[i];

        memset(d, 0, sizeof(*d));
        if (fleet_uuid_parse(w->uuid, d->uuid) < 0 || (unsigned)w->reason >= SCHED_REASON_COUNT)
            return -EINVAL;
        d->at_ms = now_ms;
        d->old_target_kib = w->old_target_kib;
        d->new_target_kib = w->new_target_kib;
        d->reason = (uint8_t)w->reason;
        d->signal_mib = mib32(w->signal_kib);
        d->need_mib = mib32(w->need_kib);
        d->lookahead_mib = mib32(w->lookahead_kib);
        d->vm_mib = mib32(w->vm_kib);
        d->host_mib = mib32(w->host_kib);
        d->policy_version = r->policy_version;
        if (w->counterpart[0] == '\0') {
            d->counterpart = FLEET_COUNTERPART_NONE;
        } else if (strcmp(w->counterpart, WIRE_COUNTERPART_HOST) == 0) {
            d->counterpart = FLEET_COUNTERPART_HOST;
        } else {
            if (fleet_uuid_parse(w->counterpart, d->counterpart_uuid) < 0)
                return -EINVAL;
            d->counterpart = FLEET_COUNTERPART_VM;
        }
    }
    return 0;
}

/* Resize an array so it holds need items: grow to fit, shrink when less than half is used. */
static void *
fit(void *p, size_t *cap, size_t need, size_t size)
{
    if (need > *cap || need * 2 < *cap) {
        p = util_xrealloc(p, need, size);
        *cap = need;
    }
    return p;
}

/* Move the decoded VMs into h: carry each surviving VM's last reason over, apply decisions. */
static void
commit_vms(struct fleet *f, struct host *h, size_t n, size_t names_len, const struct wire_report *r)
{
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        struct fleet_vm *vm = &f->scratch_vms[i].vm;
        while (j < h->n_vms && memcmp(h->vms[j].uuid, vm->uuid, FLEET_UUID_BYTES) < 0)
            j++;
        if (j < h->n_vms && memcmp(h->vms[j].uuid, vm->uuid, FLEET_UUID_BYTES) == 0)
            vm->last_reason = h->vms[j].last_reason;
    }
    for (size_t i = 0; i < r->n_decisions; i++) {
        struct scratch_vm *s = bsearch(f->scratch_decisions[i].uuid, f->scratch_vms, n,
                                       sizeof(*f->scratch_vms), compare_uuid_key);
        if (s)
            s->vm.last_reason = f->scratch_decisions[i].reason;
    }
    h->vms = fit(h->vms, &h->cap_vms, n, sizeof(*h->vms));
    h->names = fit(h->names, &h->cap_names, names_len, 1);
    if (names_len)
        memcpy(h->names, f->scratch_names, names_len);
    h->vm_actual_kib = h->vm_max_kib = 0;
    for (size_t i = 0; i < n; i++) {
        h->vms[i] = f->scratch_vms[i].vm;
        if (f->scratch_vms[i].name_off != NO_NAME)
            h->vms[i].name = h->names + f->scratch_vms[i].name_off;
        h->vm_actual_kib = util_add_sat(h->vm_actual_kib, h->vms[i].actual_kib);
        h->vm_max_kib = util_add_sat(h->vm_max_kib, h->vms[i].max_kib);
    }
    h->n_vms = n;
}

static void
commit_decisions(struct fleet *f, struct host *h, const struct wire_report *r, uint64_t now_ms)
{
    size_t cap = f->opts.decisions_per_host, n = r->n_decisions;
    size_t first = n > cap ? n - cap : 0; /* only the newest cap fit the ring */
    uint64_t sec = now_ms / 1000;

    if (n > 0 && !h->decisions)
        h->decisions = util_xcalloc(cap, sizeof(*h->decisions));
    for (size_t i = 0; i < n; i++) {
        const struct fleet_decision *d = &f->scratch_decisions[i];
        uint64_t moved = d->new_target_kib > d->old_target_kib
                             ? d->new_target_kib - d->old_target_kib
                             : d->old_target_kib - d->new_target_kib;
        h->decisions_by_reason[d->reason]++;
        h->moved_kib_by_reason[d->reason] = util_add_sat(h->moved_kib_by_reason[d->reason], moved);
    }
    for (size_t i = first; i < n; i++) {
        h->decisions[h->decisions_next] = f->scratch_decisions[i];
        h->decisions_next = (h->decisions_next + 1) % cap;
        if (h->n_decisions < cap)
            h->n_decisions++;
    }
    h->decisions_total += n;
    if (f->minute[sec % MINUTE_BUCKETS].sec != sec) {
        f->minute[sec % MINUTE_BUCKETS].sec = sec;
        f->minute[sec % MINUTE_BUCKETS].count = 0;
    }
    f->minute[sec % MINUTE_BUCKETS].count += n;
}

int
fleet_report(struct fleet *f,
             const char *host_id,
             uint64_t sequence,
             const struct wire_report *report,
             uint64_t now_ms)
{
    struct host *h = host_find(f, host_id);
    size_t n = 0, names_len = 0;
    int rc;

    if (!h)
        return -ENOENT;
    if (h->has_report_seq && sequence <= h->report_seq)
        return 1;
    if (report->n_vms > WIRE_VMS_MAX || report->n_decisions > report->n_vms ||
        (report->n_vms && !report->vms) || (report->n_decisions && !report->decisions))
        return -EINVAL;
    rc = decode_vms(f, report, &n, &names_len);
    if (rc < 0)
        return rc;
    rc = decode_decisions(f, report, now_ms);
    if (rc < 0)
        return rc;

    share_take(f, h);
    commit_vms(f, h, n, names_len, report);
    commit_decisions(f, h, report, now_ms);
    h->host_total_kib = report->host_total_kib;
    h->host_available_kib = report->host_available_kib;
    h->vms_total = report->vms_total > report->n_vms ? report->vms_total : report->n_vms;
    h->counters = report->counters;
    if (report->has_policy) {
        h->policy_in_force = report->policy;
        h->has_policy_in_force = true;
    }
    h->has_report = true;
    share_put(f, h);
    h->last_report_ms = now_ms;
    h->report_seq = sequence;
    h->has_report_seq = true;
    /* A report overtaken by a newer heartbeat must not roll the policy version back. */
    if (!h->has_message_seq || sequence > h->message_seq) {
        h->message_seq = sequence;
        h->has_message_seq = true;
        h->policy_version = report->policy_version;
    }
    touch(h, now_ms);
    return 0;
}

int
fleet_heartbeat(struct fleet *f,
                const char *host_id,
                uint64_t sequence,
                uint64_t policy_version,
                uint64_t now_ms)
{
    struct host *h = host_find(f, host_id);

    if (!h)
        return -ENOENT;
    if (h->has_message_seq && sequence <= h->message_seq)
        return 1;
    h->message_seq = sequence;
    h->has_message_seq = true;
    h->policy_version = policy_version;
    touch(h, now_ms);
    return 0;
}

int
fleet_policy_ack(struct fleet *f,
                 const char *host_id,
                 const struct wire_policy_ack *ack,
                 uint64_t now_ms)
{
    struct host *h = host_find(f, host_id);
    struct fleet_event *e;

    if (!h)
        return -ENOENT;
    h->last_ack_version = ack->version;
    h->last_ack_applied = ack->applied;
    if (ack->applied)
        h->policy_version = ack->version;
    touch(h, now_ms);
    e = event_add(f, ack->applied ? FLEET_EVENT_POLICY_APPLIED : FLEET_EVENT_POLICY_REFUSED, h,
                  now_ms);
    e->policy_version = ack->version;
    if (!ack->applied)
        snprintf(e->detail, sizeof(e->detail), "%.*s", (int)sizeof(ack->reason), ack->reason);
    return 0;
}

int
fleet_ack_restore(struct fleet *f, const char *host_id, uint64_t version, bool applied)
{
    struct host *h = host_find(f, host_id);

    if (!h)
        return -ENOENT;
    if (!version)
        return -EINVAL;
    if (h->last_ack_version)
        return 1;
    h->last_ack_version = version;
    h->last_ack_applied = applied;
    return 0;
}

int
fleet_remove(struct fleet *f, const char *host_id, uint64_t now_ms)
{
    size_t slot;
    struct host *h;

    if (!host_id)
        return -ENOENT;
    slot = slot_of(f, host_id, util_hash_str(host_id));
    h = f->slots[slot];
    if (!h)
        return -ENOENT;
    event_add(f, FLEET_EVENT_REMOVED, h, now_ms);
    share_take(f, h);
    table_remove(f, slot);
    host_free(h);
    return 0;
}

/* ---- liveness ---- */

static enum fleet_liveness
liveness_at(const struct fleet *f, const struct host *h, uint64_t now_ms)
{
    uint64_t age_ms = now_ms > h->last_seen_ms ? now_ms - h->last_seen_ms : 0;

    if (age_ms < f->opts.stale_after_ms)
        return FLEET_LIVENESS_FRESH;
    if (age_ms < f->opts.down_after_ms)
        return FLEET_LIVENESS_STALE;
    return FLEET_LIVENESS_DOWN;
}

size_t
fleet_tick(struct fleet *f, uint64_t now_ms, fleet_event_cb cb, void *ctx)
{
    static const enum fleet_event_kind kinds[] = {
        [FLEET_LIVENESS_FRESH] = FLEET_EVENT_BACK,
        [FLEET_LIVENESS_STALE] = FLEET_EVENT_STALE,
        [FLEET_LIVENESS_DOWN] = FLEET_EVENT_DOWN,
    };
    size_t changes = 0;

    for (size_t i = 0; i < f->n_slots; i++) {
        struct host *h = f->slots[i];
        if (!h)
            continue;
        enum fleet_liveness now = liveness_at(f, h, now_ms);
        if (now == h->liveness)
            continue;
        const struct fleet_event *e = event_add(f, kinds[now], h, now_ms);
        share_take(f, h);
        h->liveness = now;
        share_put(f, h);
        changes++;
        if (cb)
            cb(e, ctx);
    }
    return changes;
}

/* ---- reading ---- */

size_t
fleet_host_count(const struct fleet *f)
{
    return f->n_hosts;
}

static void
host_info(const struct host *h, struct fleet_host_info *info)
{
    memset(info, 0, sizeof(*info));
    info->host_id = h->id;
    info->agent_version = h->agent_version;
    info->labels = (const char *const *)h->labels;
    info->n_labels = h->n_labels;
    info->policy_version = h->policy_version;
    info->first_seen_ms = h->first_seen_ms;
    info->last_seen_ms = h->last_seen_ms;
    info->liveness = h->liveness;
    info->last_ack_version = h->last_ack_version;
    info->last_ack_applied = h->last_ack_applied;
    info->has_report = h->has_report;
    info->last_report_ms = h->last_report_ms;
    info->report_sequence = h->report_seq;
    info->host_total_kib = h->host_total_kib;
    info->host_available_kib = h->host_available_kib;
    info->counters = h->counters;
    info->vms = h->vms;
    info->n_vms = h->n_vms;
    info->vms_total = h->vms_total;
    info->vm_actual_kib = h->vm_actual_kib;
    info->vm_max_kib = h->vm_max_kib;
    info->n_decisions = h->n_decisions;
    info->decisions_total = h->decisions_total;
    info->policy_in_force = h->has_policy_in_force ? &h->policy_in_force : NULL;
    info->decisions_by_reason = h->decisions_by_reason;
    info->moved_kib_by_reason = h->moved_kib_by_reason;
}

int
fleet_host_get(const struct fleet *f, const char *host_id, struct fleet_host_info *info)
{
    const struct host *h = host_find(f, host_id);

    if (!h)
        return -ENOENT;
    host_info(h, info);
    return 0;
}

size_t
fleet_host_decisions(const struct fleet *f,
                     const char *host_id,
                     struct fleet_decision *out,
                     size_t cap)
{
    const struct host *h = host_find(f, host_id);
    size_t ring = f->opts.decisions_per_host, n = 0;

    if (!h)
        return 0;
    for (; n < cap && n < h->n_decisions; n++)
        out[n] = h->decisions[(h->decisions_next + ring - 1 - n) % ring];
    return n;
}

static int
compare_host_id(const void *a, const void *b)
{
    return strcmp((*(const struct host *const *)a)->id, (*(const struct host *const *)b)->id);
}

/* The hosts sorted by id, f->n_hosts of them. The order is a cache of the table, not part of
 * the fleet's state, so a reader of a const fleet may bring it up to date. */
static struct host *const *
hosts_by_id(const struct fleet *f)
{
    struct fleet *cache = (struct fleet *)f;
    size_t n = 0;

    if (!f->by_id_stale)
        return f->by_id;
    cache->by_id = util_xrealloc(cache->by_id, f->n_hosts ? f->n_hosts : 1, sizeof(*f->by_id));
    for (size_t i = 0; i < f->n_slots; i++) {
        if (f->slots[i])
            cache->by_id[n++] = f->slots[i];
    }
    qsort(cache->by_id, n, sizeof(*f->by_id), compare_host_id);
    cache->by_id_stale = false;
    return f->by_id;
}

/* The index of the first host whose id sorts after after, or with at_too also at it (0 for
 * NULL). */
static size_t
first_after(struct host *const *list, size_t n, const char *after, bool at_too)
{
    size_t lo = 0, hi = n;

    while (after && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int rc = strcmp(list[mid]->id, after);
        if (at_too ? rc < 0 : rc <= 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int
fleet_hosts_each_after(const struct fleet *f, const char *after, fleet_host_cb cb, void *ctx)
{
    struct host *const *list = hosts_by_id(f);
    struct fleet_host_info info;
    int rc = 0;

    for (size_t i = first_after(list, f->n_hosts, after, false); i < f->n_hosts && rc == 0; i++) {
        host_info(list[i], &info);
        rc = cb(&info, ctx);
    }
    return rc < 0 ? rc : 0;
}

int
fleet_hosts_each(const struct fleet *f, fleet_host_cb cb, void *ctx)
{
    return fleet_hosts_each_after(f, NULL, cb, ctx);
}

struct vm_ref {
    const struct host *host;
    const struct fleet_vm *vm;
};

static int
compare_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int
compare_vm_refs(const void *pa, const void *pb, void *pkey)
{
    const struct vm_ref *a = pa, *b = pb;
    int key = *(const int *)pkey, rc = 0;
    bool descending = key < 0;

    switch ((enum fleet_vm_key)(descending ? -key - 1 : key)) {
    case FLEET_VM_KEY_NAME:
        rc = strcmp(a->vm->name, b->vm->name);
        break;
    case FLEET_VM_KEY_HOST:
        rc = strcmp(a->host->id, b->host->id);
        break;
    case FLEET_VM_KEY_ACTUAL:
        rc = compare_u64(a->vm->actual_kib, b->vm->actual_kib);
        break;
    case FLEET_VM_KEY_UNUSED:
        /* Unknown sorts last whichever the direction: it is neither small nor large. */
        if (a->vm->has_unused != b->vm->has_unused)
            return a->vm->has_unused ? -1 : 1;
        rc = compare_u64(a->vm->unused_kib, b->vm->unused_kib);
        break;
    }
    if (rc != 0)
        return descending ? -rc : rc;
    rc = strcmp(a->host->id, b->host->id);
    return rc ? rc : memcmp(a->vm->uuid, b->vm->uuid, FLEET_UUID_BYTES);
}

/* Keep the limit smallest refs (by cmp) seen so far in a max-heap: the root is the one to drop
 * first. O(n log limit), so "the 20 VMs with least unused" does not sort half a million. */
static void
heap_offer(struct vm_ref *heap, size_t *n, size_t limit, struct vm_ref ref, int *key)
{
    size_t i;

    if (*n < limit) {
        for (i = (*n)++; i > 0 && compare_vm_refs(&heap[(i - 1) / 2], &ref, key) < 0;
             i = (i - 1) / 2)
            heap[i] = heap[(i - 1) / 2];
        heap[i] = ref;
        return;
    }
    if (compare_vm_refs(&ref, &heap[0], key) >= 0)
        return;
    for (i = 0;;) {
        size_t child = 2 * i + 1;
        if (child >= *n)
            break;
        if (child + 1 < *n && compare_vm_refs(&heap[child + 1], &heap[child], key) > 0)
            child++;
        if (compare_vm_refs(&heap[child], &ref, key) <= 0)
            break;
        heap[i] = heap[child];
        i = child;
    }
    heap[i] = ref;
}

int
fleet_vms_each(const struct fleet *f,
               enum fleet_vm_key key,
               bool descending,
               size_t limit,
               fleet_vm_cb cb,
               void *ctx)
{
    size_t n = 0, total = 0;
    struct vm_ref *refs;
    int rc = 0, sort_key = descending ? -(int)key - 1 : (int)key;

    for (size_t i = 0; i < f->n_slots; i++) {
        if (f->slots[i])
            total += f->slots[i]->n_vms;
    }
    if (limit == 0 || limit > total)
        limit = total;
    refs = util_xcalloc(limit, sizeof(*refs));
    for (size_t i = 0; i < f->n_slots; i++) {
        const struct host *h = f->slots[i];
        for (size_t v = 0; h && v < h->n_vms; v++) {
            struct vm_ref ref = {.host = h, .vm = &h->vms[v]};
            if (limit == total)
                refs[n++] = ref;
            else
                heap_offer(refs, &n, limit, ref, &sort_key);
        }
    }
    qsort_r(refs, n, sizeof(*refs), compare_vm_refs, &sort_key);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(refs[i].host->id, refs[i].vm, ctx);
    free(refs);
    return rc < 0 ? rc : 0;
}

int
fleet_vms_each_from(const struct fleet *f, const char *from_host, fleet_vm_cb cb, void *ctx)
{
    struct host *const *list = hosts_by_id(f);
    int rc = 0;

    for (size_t i = first_after(list, f->n_hosts, from_host, true); i < f->n_hosts && rc == 0;
         i++) {
        for (size_t v = 0; v < list[i]->n_vms && rc == 0; v++)
            rc = cb(list[i]->id, &list[i]->vms[v], ctx);
    }
    return rc < 0 ? rc : 0;
}

size_t
fleet_vm_count(const struct fleet *f)
{
    return f->sums.vms;
}

void
fleet_set_pressure_threshold(struct fleet *f, uint64_t pressure_unused_kib)
{
    if (pressure_unused_kib == f->pressure_kib)
        return;
    f->pressure_kib = pressure_unused_kib;
    for (size_t i = 0; i < f->n_slots; i++) {
        struct host *h = f->slots[i];
        if (h) {
            share_take(f, h);
            share_put(f, h);
        }
    }
}

/* VMs under pressure at a threshold other than the one kept: a walk of every reporting host. */
static size_t
pressure_walk(const struct fleet *f, uint64_t pressure_kib)
{
    size_t n = 0;

    for (size_t i = 0; i < f->n_slots; i++) {
        const struct host *h = f->slots[i];
        if (h && h->share.reporting)
            n += pressure_count(h, pressure_kib);
    }
    return n;
}

void
fleet_totals(const struct fleet *f,
             uint64_t now_ms,
             uint64_t pressure_unused_kib,
             struct fleet_totals *t)
{
    const struct sums *sum = &f->sums;
    uint64_t sec = now_ms / 1000;

    memset(t, 0, sizeof(*t));
    t->hosts = f->n_hosts;
    memcpy(t->hosts_by_liveness, sum->hosts_by_liveness, sizeof(t->hosts_by_liveness));
    t->hosts_reporting = sum->hosts_reporting;
    t->vms = sum->vms_reporting;
    t->vms_under_pressure = pressure_unused_kib == f->pressure_kib
                                ? sum->pressure_reporting
                                : pressure_walk(f, pressure_unused_kib);
    t->host_total_kib = saturated(sum->host_total_kib);
    t->host_available_kib = saturated(sum->host_available_kib);
    t->vm_actual_kib = saturated(sum->vm_actual_kib);
    t->vm_max_kib = saturated(sum->vm_max_kib);
    if (t->host_total_kib)
        t->overcommit = (double)t->vm_max_kib / (double)t->host_total_kib;
    for (size_t b = 0; b < MINUTE_BUCKETS; b++) {
        if (f->minute[b].sec <= sec && sec - f->minute[b].sec < MINUTE_BUCKETS)
            t->decisions_last_minute += f->minute[b].count;
    }
}

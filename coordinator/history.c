/*
 * history.c - the fleet's memory over time (history.h).
 *
 * Layout: hosts are found through an open-addressing table of pointers (load <= 1/2); a host
 * holds its own series and its VMs' series sorted by uuid (a report's VMs come sorted the same
 * way, so recording is one merge walk). A series is its uuid, per tier the newest slot written,
 * and one allocation of samples: the fine ring, then the coarse ring.
 */
#include "history.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define MISSING       UINT32_MAX /* sample.a of a slot no report wrote */
#define TIERS         2
#define TABLE_INITIAL 64
#define SWEEP_SERIES  128 /* behind series a record halves besides its own: ~0.1 ms of work */

struct sample {
    uint32_t a, b;
};

struct tier {
    uint32_t step_s;
    uint32_t slots;
};

/* A series' resolution is its level: level L has the steps doubled and the slots halved L times.
 * The history's level only grows; a series catches up when it is next written (lazily, so the
 * halving of 500,000 series is spread over a round of reports instead of stalling one). */
struct series {
    uint8_t uuid[FLEET_UUID_BYTES]; /* zero for a host's own series */
    uint64_t last_slot[TIERS];      /* the newest slot written, per tier, at the series' level */
    uint8_t level;
    bool written;           /* any sample yet */
    struct sample *samples; /* tier 0's slots, then tier 1's */
};

struct host {
    char *id;
    uint64_t hash;
    struct series *own;
    struct series **vms; /* sorted by uuid */
    size_t n_vms;
};

struct history {
    struct tier base[TIERS]; /* fine, coarse: at level 0 */
    uint32_t span_s[TIERS];
    uint8_t level;     /* what every series is at or is catching up to */
    uint8_t max_level; /* the coarsest with HISTORY_MIN_SLOTS per tier */
    uint64_t max_bytes;
    uint64_t sample_bytes; /* held by series now (those catching up still hold more) */
    size_t behind;         /* series below the level, caught up by writes and the sweep */
    size_t sweep_at;       /* the table slot the sweep goes on from */
    bool caught_up;        /* a sweep halved the last series behind: history_take_caught_up() */
    struct host **table;
    size_t n_table, n_hosts;
    size_t n_series;
    uint64_t refused;
};

/* ---- sizes ---- */

static struct tier
tier_at(const struct history *h, int t, uint8_t level)
{
    return (struct tier){h->base[t].step_s << level, h->base[t].slots >> level};
}

static size_t
slots_at(const struct history *h, uint8_t level)
{
    return (size_t)tier_at(h, 0, level).slots + tier_at(h, 1, level).slots;
}

static uint64_t
overhead(const struct history *h, size_t n_series)
{
    return n_series * (sizeof(struct series) + sizeof(struct series *)) +
           h->n_table * sizeof(struct host *) + h->n_hosts * sizeof(struct host);
}

/* The bytes once every series has caught up with the history's level. */
static uint64_t
bytes_settled(const struct history *h, size_t n_series)
{
    return overhead(h, n_series) + n_series * slots_at(h, h->level) * sizeof(struct sample);
}

/* ---- one ring ---- */

static struct sample *
ring_of(const struct history *h, const struct series *s, int t)
{
    return s->samples + (t == 0 ? 0 : tier_at(h, 0, s->level).slots);
}

static void
ring_clear(struct sample *ring, size_t slots)
{
    for (size_t i = 0; i < slots; i++)
        ring[i] = (struct sample){MISSING, MISSING};
}

/* Whether slot still holds what was written for it (not yet overwritten, not in the future). */
static bool
slot_kept(const struct series *s, int t, uint32_t slots, uint64_t slot)
{
    return s->written && slot <= s->last_slot[t] && slot + slots > s->last_slot[t];
}

static void
ring_write(const struct history *h, struct series *s, int t, uint64_t slot, struct sample v)
{
    struct sample *ring = ring_of(h, s, t);
    uint32_t slots = tier_at(h, t, s->level).slots;

    if (slot < s->last_slot[t]) /* the clock is monotonic: only a bug goes back */
        return;
    /* The slots skipped since the last write had no report: mark them missing. */
    for (uint64_t i = s->last_slot[t] + 1; i < slot && i <= s->last_slot[t] + slots; i++)
        ring[i % slots] = (struct sample){MISSING, MISSING};
    ring[slot % slots] = v;
    s->last_slot[t] = slot;
}

/* ---- series ---- */

static struct series *
series_new(struct history *h, const uint8_t *uuid)
{
    struct series *s = util_xcalloc(1, sizeof(*s));
    size_t slots = slots_at(h, h->level);

    if (uuid)
        memcpy(s->uuid, uuid, FLEET_UUID_BYTES);
    s->level = h->level;
    s->samples = util_xcalloc(slots, sizeof(*s->samples));
    ring_clear(s->samples, slots);
    h->n_series++;
    h->sample_bytes += slots * sizeof(struct sample);
    return s;
}

static void
series_free(struct history *h, struct series *s)
{
    if (!s)
        return;
    if (s->level < h->level)
        h->behind--;
    h->sample_bytes -= slots_at(h, s->level) * sizeof(struct sample);
    free(s->samples);
    free(s);
    h->n_series--;
}

/* Tier t of s at half its resolution into out (half the slots): of two merged slots, the newer
 * sample wins when it was written. */
static void
tier_halve(const struct history *h, const struct series *s, int t, struct sample *out)
{
    const struct sample *ring = ring_of(h, s, t);
    uint32_t slots = tier_at(h, t, s->level).slots, half = slots / 2;
    uint64_t last = s->last_slot[t] / 2;

    ring_clear(out, half);
    for (uint64_t n = last + 1 > half ? last + 1 - half : 0; n <= last; n++) {
        for (uint64_t old = 2 * n; old <= 2 * n + 1; old++) {
            if (slot_kept(s, t, slots, old) && ring[old % slots].a != MISSING)
                out[n % half] = ring[old % slots];
        }
    }
}

/* Halve s's resolution once: the halves are built in a new allocation and the old one freed
 * (not shrunk in place: a whole freed block can merge with its freed neighbours). */
static void
series_halve(struct history *h, struct series *s)
{
    size_t before = slots_at(h, s->level), after = slots_at(h, s->level + 1);
    struct sample *halves = util_xcalloc(after, sizeof(*halves));

    tier_halve(h, s, 0, halves);
    tier_halve(h, s, 1, halves + tier_at(h, 0, s->level + 1).slots);
    free(s->samples);
    s->samples = halves;
    for (int t = 0; t < TIERS; t++)
        s->last_slot[t] /= 2;
    s->level++;
    h->sample_bytes -= (before - after) * sizeof(struct sample);
}

/* Bring s to the history's level. Returns whether it was behind. */
static bool
series_catch_up(struct history *h, struct series *s)
{
    if (s->level == h->level)
        return false;
    while (s->level < h->level)
        series_halve(h, s);
    h->behind--;
    return true;
}

static void
series_write(struct history *h, struct series *s, uint64_t now_ms, struct sample v)
{
    uint64_t now_s = now_ms / 1000;

    series_catch_up(h, s);
    for (int t = 0; t < TIERS; t++) {
        uint64_t slot = now_s / tier_at(h, t, s->level).step_s;
        if (!s->written)
            s->last_slot[t] = slot;
        ring_write(h, s, t, slot, v);
    }
    s->written = true;
}

/* ---- hosts ---- */

static size_t
slot_of(const struct history *h, const char *id, uint64_t hash)
{
    size_t mask = h->n_table - 1, i = (size_t)hash & mask;

    while (h->table[i] && (h->table[i]->hash != hash || strcmp(h->table[i]->id, id) != 0))
        i = (i + 1) & mask;
    return i;
}

static struct host *
host_find(const struct history *h, const char *id)
{
    return h->table[slot_of(h, id, util_hash_str(id))];
}

static void
table_grow(struct history *h)
{
    struct host **old = h->table;
    size_t n_old = h->n_table;

    h->n_table *= 2;
    h->table = util_xcalloc(h->n_table, sizeof(*h->table));
    for (size_t i = 0; i < n_old; i++) {
        if (old[i])
            h->table[slot_of(h, old[i]->id, old[i]->hash)] = old[i];
    }
    free(old);
}

/* Take the entry at slot i out, moving later entries of its run back (no tombstones). */
static void
table_remove(struct history *h, size_t i)
{
    size_t mask = h->n_table - 1;

    h->table[i] = NULL;
    for (size_t j = (i + 1) & mask; h->table[j]; j = (j + 1) & mask) {
        size_t home = (size_t)h->table[j]->hash & mask;
        /* j's entry may move to i unless its home lies cyclically in (i, j]. */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            h->table[i] = h->table[j];
            h->table[j] = NULL;
            i = j;
        }
    }
}

/* A new host, when it fits in the bound with its table (NULL: refused, counted). */
static struct host *
host_add(struct history *h, const char *id)
{
    bool grow = 2 * (h->n_hosts + 1) > h->n_table;
    uint64_t more = sizeof(struct host) + (grow ? h->n_table * sizeof(struct host *) : 0);

    if (bytes_settled(h, h->n_series) + more > h->max_bytes) {
        h->refused++;
        return NULL;
    }
    if (grow)
        table_grow(h);
    uint64_t hash = util_hash_str(id);
    size_t i = slot_of(h, id, hash);
    struct host *host = util_xcalloc(1, sizeof(*host));
    host->id = util_xstrdup(id);
    host->hash = hash;
    h->table[i] = host;
    h->n_hosts++;
    return host;
}

static void
host_free(struct history *h, struct host *host)
{
    series_free(h, host->own);
    for (size_t i = 0; i < host->n_vms; i++)
        series_free(h, host->vms[i]);
    free(host->vms);
    free(host->id);
    free(host);
}

/* ---- the budget ---- */

/* Room for up to want more series: raise the level (every series halves as it is next
 * written) while they would not fit once settled; returns how many fit (the rest are refused). */
static size_t
make_room(struct history *h, size_t want)
{
    while (want && bytes_settled(h, h->n_series + want) > h->max_bytes && h->level < h->max_level) {
        h->level++;
        h->behind = h->n_series; /* every series so far is below the new level */
    }
    size_t fit = want;
    while (fit && bytes_settled(h, h->n_series + fit) > h->max_bytes)
        fit--;
    h->refused += want - fit;
    return fit;
}

/* ---- recording ---- */

static struct sample
vm_sample(const struct fleet_vm *vm)
{
    return (struct sample){
        .a = (uint32_t)util_min_u64(vm->actual_kib / UTIL_KIB_PER_MIB, MISSING - 1),
        .b = vm->has_unused ? (uint32_t)util_min_u64(vm->unused_kib / UTIL_KIB_PER_MIB, MISSING - 1)
                            : HISTORY_UNKNOWN,
    };
}

static struct sample
host_sample(const struct fleet_host_info *info)
{
    return (struct sample){
        .a = (uint32_t)util_min_u64(info->host_available_kib / UTIL_KIB_PER_MIB, MISSING - 1),
        .b = (uint32_t)util_min_u64(info->vm_actual_kib / UTIL_KIB_PER_MIB, MISSING - 1),
    };
}

static bool
expired(const struct history *h, const struct series *s, uint64_t now_ms)
{
    uint64_t newest_s = (s->last_slot[1] + 1) * tier_at(h, 1, s->level).step_s;
    return newest_s + h->span_s[1] < now_ms / 1000;
}

/* How many of the report's VMs have no series yet (both lists sorted by uuid). */
static size_t
count_new(const struct host *host, const struct fleet_host_info *info)
{
    size_t i = 0, n = 0;

    for (size_t k = 0; k < info->n_vms; k++) {
        const uint8_t *uuid = info->vms[k].uuid;
        while (i < host->n_vms && memcmp(host->vms[i]->uuid, uuid, FLEET_UUID_BYTES) < 0)
            i++;
        if (i == host->n_vms || memcmp(host->vms[i]->uuid, uuid, FLEET_UUID_BYTES) != 0)
            n++;
    }
    return n;
}

/* The host's VM series merged with the report's VMs (both sorted by uuid): a VM new to the
 * history gets a series while room was made for it, one that left keeps its series until it
 * expires. */
static void
record_vms(struct history *h,
           struct host *host,
           const struct fleet_host_info *info,
           uint64_t now_ms)
{
    size_t room = make_room(h, count_new(host, info));
    struct series **merged = util_xcalloc(host->n_vms + room + 1, sizeof(*merged));
    size_t n = 0, i = 0, k = 0;

    while (i < host->n_vms || k < info->n_vms) {
        int cmp = i == host->n_vms ? 1
                  : k == info->n_vms
                      ? -1
                      : memcmp(host->vms[i]->uuid, info->vms[k].uuid, FLEET_UUID_BYTES);
        struct series *s = NULL;
        if (cmp <= 0)
            s = host->vms[i++];
        if (cmp >= 0) {
            if (!s && room) {
                room--;
                s = series_new(h, info->vms[k].uuid);
            }
            if (s)
                series_write(h, s, now_ms, vm_sample(&info->vms[k]));
            k++;
        }
        if (s && cmp < 0 && expired(h, s, now_ms)) {
            series_free(h, s);
            s = NULL;
        }
        if (s)
            merged[n++] = s;
    }
    free(host->vms);
    host->vms = merged;
    host->n_vms = n;
}

/* Halve up to SWEEP_SERIES series still below the level, going on round the table from where
 * the last sweep stopped: when a whole fleet joins at once (a restart), the series made before
 * the level rose would otherwise all hold their old size until their hosts next report. */
static void
sweep(struct history *h)
{
    size_t done = 0, was_behind = h->behind;

    for (size_t n = 0; h->behind && done < SWEEP_SERIES && n < h->n_table; n++) {
        struct host *host = h->table[h->sweep_at];
        h->sweep_at = (h->sweep_at + 1) & (h->n_table - 1);
        if (!host)
            continue;
        if (host->own)
            done += series_catch_up(h, host->own);
        for (size_t i = 0; i < host->n_vms; i++)
            done += series_catch_up(h, host->vms[i]);
    }
    /* The old, larger blocks are free now but their pages stay resident in the middle of the
     * heap: say so, and the caller gives them back (malloc_trim). */
    if (was_behind && !h->behind)
        h->caught_up = true;
}

bool
history_take_caught_up(struct history *h)
{
    bool caught_up = h->caught_up;

    h->caught_up = false;
    return caught_up;
}

void
history_record(struct history *h, const struct fleet_host_info *info, uint64_t now_ms)
{
    struct host *host = host_find(h, info->host_id);

    if (!host)
        host = host_add(h, info->host_id);
    if (!host)
        return;
    if (!host->own && make_room(h, 1))
        host->own = series_new(h, NULL);
    if (host->own)
        series_write(h, host->own, now_ms, host_sample(info));
    record_vms(h, host, info, now_ms);
    sweep(h);
}

void
history_forget_host(struct history *h, const char *host_id)
{
    size_t i = slot_of(h, host_id, util_hash_str(host_id));
    struct host *host = h->table[i];

    if (!host)
        return;
    table_remove(h, i);
    host_free(h, host);
    h->n_hosts--;
}

/* ---- reading ---- */

static const struct series *
series_find(const struct history *h, const char *host_id, const uint8_t *uuid)
{
    const struct host *host = host_find(h, host_id);

    if (!host)
        return NULL;
    if (!uuid)
        return host->own;
    size_t lo = 0, hi = host->n_vms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = memcmp(host->vms[mid]->uuid, uuid, FLEET_UUID_BYTES);
        if (cmp == 0)
            return host->vms[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Append tier t's kept samples with slot start in [from_ms, to_ms). */
static size_t
read_tier(const struct history *h,
          const struct series *s,
          int t,
          uint64_t from_ms,
          uint64_t to_ms,
          struct history_point *out,
          size_t n,
          size_t cap)
{
    const struct sample *ring = ring_of(h, s, t);
    struct tier tier = tier_at(h, t, s->level);
    uint32_t slots = tier.slots;
    uint64_t step_ms = (uint64_t)tier.step_s * 1000;
    uint64_t last = s->last_slot[t], first = last + 1 > slots ? last + 1 - slots : 0;

    for (uint64_t slot = first; slot <= last && n < cap; slot++) {
        uint64_t at_ms = slot * step_ms;
        const struct sample *v = &ring[slot % slots];
        if (at_ms < from_ms || at_ms >= to_ms || v->a == MISSING)
            continue;
        out[n++] = (struct history_point){.at_ms = at_ms, .a_mib = v->a, .b_mib = v->b};
    }
    return n;
}

int
history_read(const struct history *h,
             const char *host_id,
             const uint8_t uuid[FLEET_UUID_BYTES],
             uint64_t now_ms,
             struct history_point *out,
             size_t cap)
{
    const struct series *s = series_find(h, host_id, uuid);

    if (!s)
        return -ENOENT;
    if (!s->written)
        return 0;
    /* The fine tier covers its span back from now; the coarse tier the slots that end before
     * it (a slot holds its newest report: one overlapping the fine window would repeat it). */
    uint64_t fine_from = util_sub_sat(now_ms, (uint64_t)h->span_s[0] * 1000);
    uint64_t coarse_from = util_sub_sat(now_ms, (uint64_t)h->span_s[1] * 1000);
    uint64_t coarse_step_ms = (uint64_t)tier_at(h, 1, s->level).step_s * 1000;
    size_t n =
        read_tier(h, s, 1, coarse_from, util_sub_sat(fine_from, coarse_step_ms - 1), out, 0, cap);
    n = read_tier(h, s, 0, fine_from, UINT64_MAX, out, n, cap);
    return (int)n;
}

size_t
history_points_max(const struct history *h)
{
    return slots_at(h, 0); /* a series not caught up yet may still hold level 0's */
}

void
history_stats(const struct history *h, struct history_stats *st)
{
    *st = (struct history_stats){
        .hosts = h->n_hosts,
        .series = h->n_series,
        .bytes = overhead(h, h->n_series) + h->sample_bytes,
        .max_bytes = h->max_bytes,
        .fine_step_s = tier_at(h, 0, h->level).step_s,
        .fine_slots = tier_at(h, 0, h->level).slots,
        .coarse_step_s = tier_at(h, 1, h->level).step_s,
        .coarse_slots = tier_at(h, 1, h->level).slots,
        .refused = h->refused,
    };
}

/* ---- life ---- */

static uint32_t
or_default(uint32_t v, uint32_t dflt)
{
    return v ? v : dflt;
}

struct history *
history_new(const struct history_opts *opts)
{
    struct history_opts o = opts ? *opts : (struct history_opts){0};
    struct history *h = util_xcalloc(1, sizeof(*h));

    h->max_bytes = o.max_bytes ? o.max_bytes : (uint64_t)HISTORY_MAX_MIB_DEFAULT << 20;
    h->base[0].step_s = or_default(o.fine_step_s, HISTORY_FINE_STEP_S);
    h->span_s[0] = or_default(o.fine_span_s, HISTORY_FINE_SPAN_S);
    h->base[1].step_s = or_default(o.coarse_step_s, HISTORY_COARSE_STEP_S);
    h->span_s[1] = or_default(o.coarse_span_s, HISTORY_COARSE_SPAN_S);
    for (int t = 0; t < TIERS; t++) {
        assert(h->span_s[t] % h->base[t].step_s == 0);
        h->base[t].slots = h->span_s[t] / h->base[t].step_s;
        assert(h->base[t].slots >= HISTORY_MIN_SLOTS);
    }
    while (tier_at(h, 0, h->max_level + 1).slots >= HISTORY_MIN_SLOTS &&
           tier_at(h, 1, h->max_level + 1).slots >= HISTORY_MIN_SLOTS)
        h->max_level++;
    h->n_table = TABLE_INITIAL;
    h->table = util_xcalloc(h->n_table, sizeof(*h->table));
    return h;
}

void
history_destroy(struct history **history)
{
    struct history *h = *history;

    if (!h)
        return;
    for (size_t i = 0; i < h->n_table; i++) {
        if (h->table[i])
            host_free(h, h->table[i]);
    }
    free(h->table);
    free(h);
    *history = NULL;
}

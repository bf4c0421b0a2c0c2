/*
 * test_sched.c - the scheduler round (common/sched.c), one table row per rule.
 *
 * Each case is a host, a few VMs and policy tweaks, with the expected plan line of every VM
 * (reason, new target, counterpart, memory moved to/from VMs and the host, need) and the
 * expected summary. The expectations are worked out by hand from the rules in sched.h, in MiB
 * (MIB() makes KiB), and each case's comment shows the arithmetic. Every case also checks what
 * holds for any plan: one entry per VM, old_target is the committed size, apply order is
 * shrinks, grows, the rest, and a second run (fresh work, then reused work) gives the same plan.
 *
 * Unless a case says otherwise: default policy (min 100, grow target 200, excess 300, step 64,
 * host min 200, floor 256 MiB, reclaim_idle true, predictive true, demand signal unused - the
 * seed's, not the shipped default) and every VM has max
 * 4096 MiB, actual 2048 MiB, no target set, fresh stats, weight 100, running and managed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "policy.h"
#include "sched.h"
#include "test_util.h"

#define CASE_VMS_MAX 6
#define TWEAKS_MAX   4

#define HOST   SCHED_HOST
#define NOBODY SCHED_NOBODY
#define HOST_MIB(avail)                                                                            \
    {                                                                                              \
        .total_kib = MIB(65536), .available_kib = MIB(avail)                                       \
    }

/* One VM of a case, as differences from the usual VM (zero means the usual value). */
struct vm_spec {
    uint64_t max;    /* 0: MIB(4096) */
    uint64_t actual; /* always given */
    uint64_t target;
    uint64_t unused;
    uint64_t usable; /* 0: same as unused */
    uint64_t min;
    uint64_t cap;
    uint64_t age_ms; /* 0: 1000 */
    uint64_t untouched;
    uint64_t rate; /* KiB/s */
    uint32_t weight;
    enum sched_vm_state state;
    bool unmanaged;
    bool no_balloon;
    bool no_unused;
    bool no_usable;
    bool stuck;
};

/* The expected plan line of one VM. */
struct want {
    enum sched_reason reason;
    uint64_t target; /* new_target_kib */
    int32_t cp;      /* counterpart */
    uint64_t vm;     /* vm_kib */
    uint64_t host;   /* host_kib */
    uint64_t need;   /* need_kib */
};

struct sched_case {
    const char *name;
    const char *tweaks[TWEAKS_MAX][2]; /* policy_set() key, value */
    struct sched_host host;
    size_t n;
    struct vm_spec vms[CASE_VMS_MAX];
    struct want want[CASE_VMS_MAX];
    uint64_t lookahead[CASE_VMS_MAX]; /* each VM's expected lookahead_kib (0 unless given) */
    struct sched_summary sum;
};

/* Shorthands for the usual VM and for a VM left as it is. */
#define VM(unused_mib)                                                                             \
    {                                                                                              \
        .actual = MIB(2048), .unused = MIB(unused_mib)                                             \
    }
#define KEEP(reason_, target_)                                                                     \
    {                                                                                              \
        .reason = (reason_), .target = (target_), .cp = NOBODY                                     \
    }

/* Expected lines are written positionally: {reason, new target, counterpart, vm_kib, host_kib,
 * need}; counterpart is a VM index, HOST or NOBODY. */
static const struct sched_case cases[] = {
    /* ---- transfers between VMs ---- */
    {
        /* vm0 needs 200 - 90 = 110, vm1 releases min(128, 1000 - 100, 2048 - 256) = 128 and
         * gives 110; the host has plenty but donors come first; without reclaim the rest stays. */
        .name = "seed: an idle VM feeds a needy one",
        .tweaks = {{"max_release_step_mib", "128"}, {"reclaim_idle", "false"}},
        .host = HOST_MIB(8192),
        .n = 2,
        .vms = {VM(90), VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2158), 1, MIB(110), 0, MIB(110)},
                {SCHED_REASON_SHRINK, MIB(1938), 0, MIB(110), 0, 0},
            },
        .sum = {.need_kib = MIB(110),
                .granted_kib = MIB(110),
                .transferred_kib = MIB(110),
                .host_budget_kib = MIB(8192),
                .grows = 1,
                .shrinks = 1},
    },
    {
        /* As above with reclaim_idle: the 18 MiB vm0 did not take go to the host. */
        .name = "seed with reclaim: the donor's rest returns to the host",
        .tweaks = {{"max_release_step_mib", "128"}},
        .host = HOST_MIB(8192),
        .n = 2,
        .vms = {VM(90), VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2158), 1, MIB(110), 0, MIB(110)},
                {SCHED_REASON_SHRINK, MIB(1920), 0, MIB(110), MIB(18), 0},
            },
        .sum = {.need_kib = MIB(110),
                .granted_kib = MIB(110),
                .transferred_kib = MIB(110),
                .reclaimed_kib = MIB(18),
                .host_budget_kib = MIB(8192),
                .grows = 1,
                .shrinks = 1},
    },
    {
        /* Need 150 from the host alone. */
        .name = "the host feeds a needy VM",
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {VM(50)},
        .want = {{SCHED_REASON_GROW, MIB(2198), HOST, 0, MIB(150), MIB(150)}},
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(150),
                .host_granted_kib = MIB(150),
                .host_budget_kib = MIB(8192),
                .grows = 1},
    },
    {
        /* Need 150; the donor gives 64, the host 250 - 200 = 50: 114 in all, vm1 gave most. */
        .name = "a donor and the host together",
        .host = HOST_MIB(250),
        .n = 2,
        .vms = {VM(50), VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2162), 1, MIB(64), MIB(50), MIB(150)},
                {SCHED_REASON_SHRINK, MIB(1984), 0, MIB(64), 0, 0},
            },
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(114),
                .transferred_kib = MIB(64),
                .host_granted_kib = MIB(50),
                .host_budget_kib = MIB(250),
                .grows = 1,
                .shrinks = 1},
    },
    /* ---- the host ---- */
    {
        /* available == host_min: not pressure, but 200 - grant >= 200 only for grant 0. */
        .name = "the host at its floor gives nothing",
        .host = HOST_MIB(200),
        .n = 1,
        .vms = {VM(50)},
        .want = {{SCHED_REASON_NEED_UNMET, MIB(2048), NOBODY, 0, 0, MIB(150)}},
        .sum = {.need_kib = MIB(150), .host_budget_kib = MIB(200)},
    },
    {
        .name = "the host gives only down to its floor",
        .host = HOST_MIB(250),
        .n = 1,
        .vms = {VM(50)},
        .want = {{SCHED_REASON_GROW, MIB(2098), HOST, 0, MIB(50), MIB(150)}},
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(50),
                .host_granted_kib = MIB(50),
                .host_budget_kib = MIB(250),
                .grows = 1},
    },
    {
        /* vm1's 150 MiB grow is on its way (committed 2198 - actual 2048) and covers its need;
         * the host budget is 400 - 150 = 250, so vm0 gets 50. */
        .name = "grows in flight shrink the host budget",
        .host = HOST_MIB(400),
        .n = 2,
        .vms = {VM(50), {.actual = MIB(2048), .target = MIB(2198), .unused = MIB(50)}},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2098), HOST, 0, MIB(50), MIB(150)},
                KEEP(SCHED_REASON_IN_FLIGHT, MIB(2198)),
            },
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(50),
                .host_granted_kib = MIB(50),
                .host_budget_kib = MIB(250),
                .inflight_grow_kib = MIB(150),
                .grows = 1},
    },
    {
        /* Budget 350 - 150 = 200: nothing above the host's floor. */
        .name = "grows in flight use up the host budget",
        .host = HOST_MIB(350),
        .n = 2,
        .vms = {VM(50), {.actual = MIB(2048), .target = MIB(2198), .unused = MIB(50)}},
        .want =
            {
                {SCHED_REASON_NEED_UNMET, MIB(2048), NOBODY, 0, 0, MIB(150)},
                KEEP(SCHED_REASON_IN_FLIGHT, MIB(2198)),
            },
        .sum = {.need_kib = MIB(150), .host_budget_kib = MIB(200), .inflight_grow_kib = MIB(150)},
    },
    {
        /* "Sum of grows in flight, all VMs": a skipped VM's 100 MiB still on its way counts,
         * budget 400 - 100 = 300, vm0 gets 100. */
        .name = "a skipped VM's grow in flight still counts",
        .host = HOST_MIB(400),
        .n = 2,
        .vms = {VM(50),
                {.actual = MIB(2048), .target = MIB(2148), .unused = MIB(150), .age_ms = 6000}},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2148), HOST, 0, MIB(100), MIB(150)},
                KEEP(SCHED_REASON_STALE_STATS, MIB(2148)),
            },
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(100),
                .host_granted_kib = MIB(100),
                .host_budget_kib = MIB(300),
                .inflight_grow_kib = MIB(100),
                .grows = 1,
                .skipped = 1},
    },
    {
        /* available 100 < host_min 200: no grants at all, not even VM to VM, and the donor
         * returns its step to the host although reclaim_idle is off. */
        .name = "host pressure: no grows, donors reclaim",
        .tweaks = {{"reclaim_idle", "false"}},
        .host = HOST_MIB(100),
        .n = 2,
        .vms = {VM(50), VM(1000)},
        .want =
            {
                {SCHED_REASON_NEED_UNMET, MIB(2048), NOBODY, 0, 0, MIB(150)},
                {SCHED_REASON_SHRINK, MIB(1984), HOST, 0, MIB(64), 0},
            },
        .sum = {.need_kib = MIB(150),
                .reclaimed_kib = MIB(64),
                .host_budget_kib = MIB(100),
                .host_deficit_kib = MIB(100),
                .shrinks = 1,
                .host_pressure = true},
    },
    {
        /* Grows in flight (150) exceed available (100): the budget is 0, not negative. */
        .name = "host pressure with grows in flight: budget clamps at 0",
        .host = HOST_MIB(100),
        .n = 2,
        .vms = {{.actual = MIB(2048), .target = MIB(2198), .unused = MIB(50)}, VM(50)},
        .want =
            {
                KEEP(SCHED_REASON_IN_FLIGHT, MIB(2198)),
                {SCHED_REASON_NEED_UNMET, MIB(2048), NOBODY, 0, 0, MIB(150)},
            },
        .sum = {.need_kib = MIB(150),
                .host_budget_kib = 0,
                .inflight_grow_kib = MIB(150),
                .host_deficit_kib = MIB(200),
                .host_pressure = true},
    },
    {
        /* Memory granted but not yet touched is still the host's debt: available 1000 less
         * 700 untouched leaves a budget of 300, so 100 above the floor for vm0's need of 150. */
        .name = "untouched grants count against the host",
        .host = HOST_MIB(1000),
        .n = 2,
        .vms = {VM(50), {.actual = MIB(2048), .unused = MIB(200), .untouched = MIB(700)}},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2148), HOST, 0, MIB(100), MIB(150)},
                KEEP(SCHED_REASON_IN_BAND, MIB(2048)),
            },
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(100),
                .host_granted_kib = MIB(100),
                .host_budget_kib = MIB(300),
                .untouched_kib = MIB(700),
                .grows = 1},
    },
    {
        /* Budget 1000 - 900 untouched = 100 < 200: a deficit of 100. The donors, largest
         * first (equal: by index), restore it before anyone is fed: vm1 gives its 64, vm2 36;
         * vm2's other 28 feed vm0; nothing comes from the host. */
        .name = "host pressure: donors restore the floor first, the rest feeds the needy",
        .tweaks = {{"reclaim_idle", "false"}},
        .host = HOST_MIB(1000),
        .n = 3,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .untouched = MIB(900)},
                VM(1000),
                VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2076), 2, MIB(28), 0, MIB(150)},
                {SCHED_REASON_SHRINK, MIB(1984), HOST, 0, MIB(64), 0},
                {SCHED_REASON_SHRINK, MIB(1984), HOST, MIB(28), MIB(36), 0},
            },
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(28),
                .transferred_kib = MIB(28),
                .reclaimed_kib = MIB(100),
                .host_budget_kib = MIB(100),
                .untouched_kib = MIB(900),
                .host_deficit_kib = MIB(100),
                .grows = 1,
                .shrinks = 2,
                .host_pressure = true},
    },
    {
        /* A deficit of 50, but vm1's shrink of 64 is already on its way back: nothing more is
         * owed to the host, so vm2's release all feeds vm0. */
        .name = "host pressure: shrinks in flight count toward the floor",
        .host = HOST_MIB(150),
        .n = 3,
        .vms = {VM(50), {.actual = MIB(2048), .target = MIB(1984), .unused = MIB(1000)}, VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2112), 2, MIB(64), 0, MIB(150)},
                KEEP(SCHED_REASON_IN_FLIGHT, MIB(1984)),
                {SCHED_REASON_SHRINK, MIB(1984), 0, MIB(64), 0, 0},
            },
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(64),
                .transferred_kib = MIB(64),
                .host_budget_kib = MIB(150),
                .inflight_shrink_kib = MIB(64),
                .host_deficit_kib = MIB(50),
                .grows = 1,
                .shrinks = 1,
                .host_pressure = true},
    },
    /* ---- predictive ---- */
    {
        /* 50 MiB/s over a 3 s horizon: 150 MiB will be gone before a grant arrives, so unused
         * 150 (in band by the seed's rule) has an outlook of 0 < 100: grown to 200 + 150. */
        .name = "predictive: a fast consumer is grown before it crosses the minimum",
        .host = {.total_kib = MIB(65536), .available_kib = MIB(8192), .horizon_ms = 3000},
        .n = 1,
        .vms = {{.actual = MIB(2048), .unused = MIB(150), .rate = MIB(50)}},
        .want = {{SCHED_REASON_GROW, MIB(2248), HOST, 0, MIB(200), MIB(200)}},
        .lookahead = {MIB(150)},
        .sum = {.need_kib = MIB(200),
                .granted_kib = MIB(200),
                .host_granted_kib = MIB(200),
                .host_budget_kib = MIB(8192),
                .grows = 1},
    },
    {
        /* The same VM with predictive off: the seed's rule, in band. */
        .name = "predictive off: the seed's literal rule",
        .tweaks = {{"predictive", "false"}},
        .host = {.total_kib = MIB(65536), .available_kib = MIB(8192), .horizon_ms = 3000},
        .n = 1,
        .vms = {{.actual = MIB(2048), .unused = MIB(150), .rate = MIB(50)}},
        .want = {KEEP(SCHED_REASON_IN_BAND, MIB(2048))},
        .sum = {.host_budget_kib = MIB(8192)},
    },
    {
        /* Unused 400 is above excess, but 300 of it will be used within the horizon: outlook
         * 100 is in band, so it is not a donor. */
        .name = "predictive: a fast consumer is not a donor",
        .host = {.total_kib = MIB(65536), .available_kib = MIB(8192), .horizon_ms = 3000},
        .n = 1,
        .vms = {{.actual = MIB(2048), .unused = MIB(400), .rate = MIB(100)}},
        .want = {KEEP(SCHED_REASON_IN_BAND, MIB(2048))},
        .lookahead = {MIB(300)},
        .sum = {.host_budget_kib = MIB(8192)},
    },
    {
        /* vm1 (unused 120, 20 MiB/s: outlook 60) is more urgent than vm0 (outlook 90). Supply
         * 64 from vm2 + 50 from the host < need 110 + 140: 57 each by weight. vm1 takes first,
         * from the donor: 57; vm0 gets the donor's last 7 and 50 from the host. */
        .name = "predictive: the fastest consumer is the most urgent",
        .host = {.total_kib = MIB(65536), .available_kib = MIB(250), .horizon_ms = 3000},
        .n = 3,
        .vms = {VM(90), {.actual = MIB(2048), .unused = MIB(120), .rate = MIB(20)}, VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2105), HOST, MIB(7), MIB(50), MIB(110)},
                {SCHED_REASON_GROW, MIB(2105), 2, MIB(57), 0, MIB(140)},
                {SCHED_REASON_SHRINK, MIB(1984), 1, MIB(64), 0, 0},
            },
        .lookahead = {0, MIB(60)},
        .sum = {.need_kib = MIB(250),
                .granted_kib = MIB(114),
                .transferred_kib = MIB(64),
                .host_granted_kib = MIB(50),
                .host_budget_kib = MIB(250),
                .grows = 2,
                .shrinks = 1},
    },
    /* ---- releases ---- */
    {
        /* min(64, 1000 - 100, 2048 - 256) = 64, nobody needs it: reclaimed. */
        .name = "release capped at max_release_step, reclaimed",
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {VM(1000)},
        .want = {{SCHED_REASON_SHRINK, MIB(1984), HOST, 0, MIB(64), 0}},
        .sum = {.reclaimed_kib = MIB(64), .host_budget_kib = MIB(8192), .shrinks = 1},
    },
    {
        /* min(256, 350 - 100, 2048 - 256) = 250. */
        .name = "release limited by unused - vm_min_unused",
        .tweaks = {{"max_release_step_mib", "256"}},
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {VM(350)},
        .want = {{SCHED_REASON_SHRINK, MIB(1798), HOST, 0, MIB(250), 0}},
        .sum = {.reclaimed_kib = MIB(250), .host_budget_kib = MIB(8192), .shrinks = 1},
    },
    {
        /* min(64, 400 - 100, 1050 - 1024) = 26. */
        .name = "release limited by the policy floor",
        .tweaks = {{"vm_floor_mib", "1024"}},
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {{.actual = MIB(1050), .unused = MIB(400)}},
        .want = {{SCHED_REASON_SHRINK, MIB(1024), HOST, 0, MIB(26), 0}},
        .sum = {.reclaimed_kib = MIB(26), .host_budget_kib = MIB(8192), .shrinks = 1},
    },
    {
        /* The VM's own floor 1030 replaces the policy's 256: min(64, 300, 1050 - 1030) = 20. */
        .name = "release limited by the VM's min_kib",
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {{.actual = MIB(1050), .unused = MIB(400), .min = MIB(1030)}},
        .want = {{SCHED_REASON_SHRINK, MIB(1030), HOST, 0, MIB(20), 0}},
        .sum = {.reclaimed_kib = MIB(20), .host_budget_kib = MIB(8192), .shrinks = 1},
    },
    {
        /* A VM floor below the policy's overrides it too: min(64, 300, 1050 - 512) = 64. */
        .name = "a VM min_kib below the policy floor overrides it",
        .tweaks = {{"vm_floor_mib", "1024"}},
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {{.actual = MIB(1050), .unused = MIB(400), .min = MIB(512)}},
        .want = {{SCHED_REASON_SHRINK, MIB(986), HOST, 0, MIB(64), 0}},
        .sum = {.reclaimed_kib = MIB(64), .host_budget_kib = MIB(8192), .shrinks = 1},
    },
    {
        /* Excess, but actual - floor is 0 (at the floor) or below (under it). */
        .name = "excess at or under the floor cannot be released",
        .tweaks = {{"vm_floor_mib", "1024"}},
        .host = HOST_MIB(8192),
        .n = 2,
        .vms = {{.actual = MIB(1024), .unused = MIB(400)},
                {.actual = MIB(900), .unused = MIB(400)}},
        .want = {KEEP(SCHED_REASON_AT_FLOOR, MIB(1024)), KEEP(SCHED_REASON_AT_FLOOR, MIB(900))},
        .sum = {.host_budget_kib = MIB(8192)},
    },
    {
        /* Committed 1984 = actual - release already: not asked again. Committed 1900 is lower
         * still. Neither is a grow in flight. */
        .name = "a shrink already in flight is not asked again",
        .host = HOST_MIB(8192),
        .n = 2,
        .vms = {{.actual = MIB(2048), .target = MIB(1984), .unused = MIB(1000)},
                {.actual = MIB(2048), .target = MIB(1900), .unused = MIB(1000)}},
        .want = {KEEP(SCHED_REASON_IN_FLIGHT, MIB(1984)), KEEP(SCHED_REASON_IN_FLIGHT, MIB(1900))},
        .sum = {.host_budget_kib = MIB(8192), .inflight_shrink_kib = MIB(64 + 148)},
    },
    {
        /* The stuck VM's excess is not counted on; the host is at its floor. */
        .name = "a stuck VM with excess is not a donor",
        .host = HOST_MIB(200),
        .n = 2,
        .vms = {VM(50), {.actual = MIB(2048), .unused = MIB(1000), .stuck = true}},
        .want =
            {
                {SCHED_REASON_NEED_UNMET, MIB(2048), NOBODY, 0, 0, MIB(150)},
                KEEP(SCHED_REASON_STUCK_DONOR, MIB(2048)),
            },
        .sum = {.need_kib = MIB(150), .host_budget_kib = MIB(200)},
    },
    {
        .name = "reclaim_idle false leaves idle excess alone",
        .tweaks = {{"reclaim_idle", "false"}},
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {VM(1000)},
        .want = {KEEP(SCHED_REASON_IN_BAND, MIB(2048))},
        .sum = {.host_budget_kib = MIB(8192)},
    },
    /* ---- the band ---- */
    {
        /* unused == min is not needy, unused == excess is not excess; a target equal to actual
         * is nothing in flight. */
        .name = "inside the band nothing moves (edges included)",
        .host = HOST_MIB(8192),
        .n = 4,
        .vms = {VM(100),
                VM(300),
                VM(200),
                {.actual = MIB(2048), .target = MIB(2048), .unused = MIB(200)}},
        .want = {KEEP(SCHED_REASON_IN_BAND, MIB(2048)), KEEP(SCHED_REASON_IN_BAND, MIB(2048)),
                 KEEP(SCHED_REASON_IN_BAND, MIB(2048)), KEEP(SCHED_REASON_IN_BAND, MIB(2048))},
        .sum = {.host_budget_kib = MIB(8192)},
    },
    /* ---- eligibility (step 2) ---- */
    {
        /* vm0 reports no unused; vm1 reports no usable, which the unused signal does not need. */
        .name = "no stats: left alone",
        .host = HOST_MIB(8192),
        .n = 2,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .no_unused = true},
                {.actual = MIB(2048), .unused = MIB(1000), .no_usable = true}},
        .want =
            {
                KEEP(SCHED_REASON_NO_STATS, MIB(2048)),
                {SCHED_REASON_SHRINK, MIB(1984), HOST, 0, MIB(64), 0},
            },
        .sum = {.reclaimed_kib = MIB(64), .host_budget_kib = MIB(8192), .shrinks = 1, .skipped = 1},
    },
    {
        /* With the usable signal, it is usable that must be reported. */
        .name = "demand_signal usable: no usable stats, left alone",
        .tweaks = {{"demand_signal", "usable"}},
        .host = HOST_MIB(8192),
        .n = 2,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .no_usable = true},
                {.actual = MIB(2048), .unused = MIB(50), .usable = MIB(50), .no_unused = true}},
        .want =
            {
                KEEP(SCHED_REASON_NO_STATS, MIB(2048)),
                {SCHED_REASON_GROW, MIB(2198), HOST, 0, MIB(150), MIB(150)},
            },
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(150),
                .host_granted_kib = MIB(150),
                .host_budget_kib = MIB(8192),
                .grows = 1,
                .skipped = 1},
    },
    {
        /* stale_stats_s 5: 6 s old is stale, 4 s is not. */
        .name = "stale stats: left alone",
        .host = HOST_MIB(8192),
        .n = 3,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .age_ms = 6000},
                {.actual = MIB(2048), .unused = MIB(1000), .age_ms = 6000},
                {.actual = MIB(2048), .unused = MIB(1000), .age_ms = 4000}},
        .want =
            {
                KEEP(SCHED_REASON_STALE_STATS, MIB(2048)),
                KEEP(SCHED_REASON_STALE_STATS, MIB(2048)),
                {SCHED_REASON_SHRINK, MIB(1984), HOST, 0, MIB(64), 0},
            },
        .sum = {.reclaimed_kib = MIB(64), .host_budget_kib = MIB(8192), .shrinks = 1, .skipped = 2},
    },
    {
        /* "Older than" stale_stats_s: exactly 5 s old is still acted on. */
        .name = "stats exactly stale_stats_s old are still fresh",
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .age_ms = 5000}},
        .want = {{SCHED_REASON_GROW, MIB(2198), HOST, 0, MIB(150), MIB(150)}},
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(150),
                .host_granted_kib = MIB(150),
                .host_budget_kib = MIB(8192),
                .grows = 1},
    },
    {
        .name = "paused, other states and migrating: left alone",
        .host = HOST_MIB(8192),
        .n = 3,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .state = SCHED_VM_PAUSED},
                {.actual = MIB(2048), .unused = MIB(1000), .state = SCHED_VM_OTHER},
                {.actual = MIB(2048), .unused = MIB(50), .state = SCHED_VM_MIGRATING}},
        .want = {KEEP(SCHED_REASON_NOT_RUNNING, MIB(2048)),
                 KEEP(SCHED_REASON_NOT_RUNNING, MIB(2048)),
                 KEEP(SCHED_REASON_MIGRATING, MIB(2048))},
        .sum = {.host_budget_kib = MIB(8192), .skipped = 3},
    },
    {
        .name = "unmanaged and no balloon: left alone",
        .host = HOST_MIB(8192),
        .n = 2,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .unmanaged = true},
                {.actual = MIB(2048), .unused = MIB(1000), .no_balloon = true}},
        .want = {KEEP(SCHED_REASON_UNMANAGED, MIB(2048)), KEEP(SCHED_REASON_NO_BALLOON, MIB(2048))},
        .sum = {.host_budget_kib = MIB(8192), .skipped = 2},
    },
    {
        /* actual 0; actual above max: left alone. Unused above actual is a sample taken before
         * the balloon's last move: still managed (no flip to unmanaged), but not acted on. */
        .name = "bad samples: left alone; stats older than the balloon: wait",
        .host = HOST_MIB(8192),
        .n = 3,
        .vms = {{.actual = 0, .unused = 0},
                {.max = MIB(1024), .actual = MIB(2048), .unused = MIB(50)},
                {.actual = MIB(512), .unused = MIB(600)}},
        .want = {KEEP(SCHED_REASON_BAD_SAMPLE, 0), KEEP(SCHED_REASON_BAD_SAMPLE, MIB(2048)),
                 KEEP(SCHED_REASON_IN_FLIGHT, MIB(512))},
        .sum = {.host_budget_kib = MIB(8192), .skipped = 2},
    },
    {
        /* Under the usable signal, usable above actual is the inconsistent one: wait. */
        .name = "stats older than the balloon under the usable signal: wait",
        .tweaks = {{"demand_signal", "usable"}},
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {{.actual = MIB(512), .unused = MIB(50), .usable = MIB(600)}},
        .want = {KEEP(SCHED_REASON_IN_FLIGHT, MIB(512))},
        .sum = {.host_budget_kib = MIB(8192)},
    },
    /* ---- need ---- */
    {
        /* min(150, 2100 - 2048) = 52. */
        .name = "need capped by max",
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {{.max = MIB(2100), .actual = MIB(2048), .unused = MIB(50)}},
        .want = {{SCHED_REASON_GROW, MIB(2100), HOST, 0, MIB(52), MIB(52)}},
        .sum = {.need_kib = MIB(52),
                .granted_kib = MIB(52),
                .host_granted_kib = MIB(52),
                .host_budget_kib = MIB(8192),
                .grows = 1},
    },
    {
        /* min(150, min(4096, 2080) - 2048) = 32. */
        .name = "need capped by cap_kib",
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .cap = MIB(2080)}},
        .want = {{SCHED_REASON_GROW, MIB(2080), HOST, 0, MIB(32), MIB(32)}},
        .sum = {.need_kib = MIB(32),
                .granted_kib = MIB(32),
                .host_granted_kib = MIB(32),
                .host_budget_kib = MIB(8192),
                .grows = 1},
    },
    {
        /* Needy at max_kib, at cap_kib, and above cap_kib (cap below actual). */
        .name = "a needy VM at its max",
        .host = HOST_MIB(8192),
        .n = 3,
        .vms = {{.max = MIB(2048), .actual = MIB(2048), .unused = MIB(50)},
                {.actual = MIB(2048), .unused = MIB(50), .cap = MIB(2048)},
                {.actual = MIB(2048), .unused = MIB(50), .cap = MIB(1024)}},
        .want = {KEEP(SCHED_REASON_AT_MAX, MIB(2048)), KEEP(SCHED_REASON_AT_MAX, MIB(2048)),
                 KEEP(SCHED_REASON_AT_MAX, MIB(2048))},
        .sum = {.host_budget_kib = MIB(8192)},
    },
    {
        /* 150 less the 100 on its way = 50, granted on top of the committed 2148. */
        .name = "need reduced by a grow in flight",
        .host = HOST_MIB(8192),
        .n = 1,
        .vms = {{.actual = MIB(2048), .target = MIB(2148), .unused = MIB(50)}},
        .want = {{SCHED_REASON_GROW, MIB(2198), HOST, 0, MIB(50), MIB(50)}},
        .sum = {.need_kib = MIB(50),
                .granted_kib = MIB(50),
                .host_granted_kib = MIB(50),
                .host_budget_kib = MIB(8092),
                .inflight_grow_kib = MIB(100),
                .grows = 1},
    },
    {
        /* 150 on its way covers the need exactly; 252 more than covers it. */
        .name = "need covered by a grow in flight",
        .host = HOST_MIB(8192),
        .n = 2,
        .vms = {{.actual = MIB(2048), .target = MIB(2198), .unused = MIB(50)},
                {.actual = MIB(2048), .target = MIB(2300), .unused = MIB(50)}},
        .want = {KEEP(SCHED_REASON_IN_FLIGHT, MIB(2198)), KEEP(SCHED_REASON_IN_FLIGHT, MIB(2300))},
        .sum = {.host_budget_kib = MIB(7790), .inflight_grow_kib = MIB(402)},
    },
    {
        /* vm0 is short (unused 50) and its 150 on the way cover its want of 200 - 50 = 150:
         * donors keep 150 from the host for it. vm1 (unused 1000) keeps its 128, vm2 (900)
         * keeps 22 and returns 106. Budget 8192 - 150. */
        .name = "a short VM's grow in flight: donors keep what it awaits from the host",
        .tweaks = {{"max_release_step_mib", "128"}},
        .host = HOST_MIB(8192),
        .n = 3,
        .vms = {{.actual = MIB(2048), .target = MIB(2198), .unused = MIB(50)}, VM(1000), VM(900)},
        .want = {KEEP(SCHED_REASON_IN_FLIGHT, MIB(2198)),
                 KEEP(SCHED_REASON_IN_BAND, MIB(2048)),
                 {SCHED_REASON_SHRINK, MIB(1942), HOST, 0, MIB(106), 0}},
        .sum = {.reclaimed_kib = MIB(106),
                .host_budget_kib = MIB(8042),
                .inflight_grow_kib = MIB(150),
                .shrinks = 1},
    },
    {
        /* As above with vm0's balloon stuck: its grow may never land, nothing is kept for it,
         * and both donors return their 128. */
        .name = "a stuck VM's grow in flight: donors keep nothing for it",
        .tweaks = {{"max_release_step_mib", "128"}},
        .host = HOST_MIB(8192),
        .n = 3,
        .vms = {{.actual = MIB(2048), .target = MIB(2198), .unused = MIB(50), .stuck = true},
                VM(1000),
                VM(900)},
        .want = {KEEP(SCHED_REASON_IN_FLIGHT, MIB(2198)),
                 {SCHED_REASON_SHRINK, MIB(1920), HOST, 0, MIB(128), 0},
                 {SCHED_REASON_SHRINK, MIB(1920), HOST, 0, MIB(128), 0}},
        .sum = {.reclaimed_kib = MIB(256),
                .host_budget_kib = MIB(8042),
                .inflight_grow_kib = MIB(150),
                .shrinks = 2},
    },
    /* ---- order of supply ---- */
    {
        /* Step 128. Needy: vm1 (unused 20, need 180) before vm0 (unused 90, need 110).
         * Donors: vm3 (unused 1000) before vm2 (unused 500), 128 each.
         * vm1 takes 128 from vm3 and 52 from vm2; vm0 takes the other 76 of vm2 and 34 from
         * the host. */
        .name = "most urgent needy first, largest donor first",
        .tweaks = {{"max_release_step_mib", "128"}},
        .host = HOST_MIB(8192),
        .n = 4,
        .vms = {VM(90), VM(20), VM(500), VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2158), 2, MIB(76), MIB(34), MIB(110)},
                {SCHED_REASON_GROW, MIB(2228), 3, MIB(180), 0, MIB(180)},
                {SCHED_REASON_SHRINK, MIB(1920), 0, MIB(128), 0, 0},
                {SCHED_REASON_SHRINK, MIB(1920), 1, MIB(128), 0, 0},
            },
        .sum = {.need_kib = MIB(290),
                .granted_kib = MIB(290),
                .transferred_kib = MIB(256),
                .host_granted_kib = MIB(34),
                .host_budget_kib = MIB(8192),
                .grows = 2,
                .shrinks = 2},
    },
    {
        /* Need 52 (max 2100); vm2 (unused 1000) covers it, vm1 (500) is not touched. */
        .name = "the largest donor is used first",
        .tweaks = {{"reclaim_idle", "false"}},
        .host = HOST_MIB(8192),
        .n = 3,
        .vms = {{.max = MIB(2100), .actual = MIB(2048), .unused = MIB(50)}, VM(500), VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2100), 2, MIB(52), 0, MIB(52)},
                KEEP(SCHED_REASON_IN_BAND, MIB(2048)),
                {SCHED_REASON_SHRINK, MIB(1996), 0, MIB(52), 0, 0},
            },
        .sum = {.need_kib = MIB(52),
                .granted_kib = MIB(52),
                .transferred_kib = MIB(52),
                .host_budget_kib = MIB(8192),
                .grows = 1,
                .shrinks = 1},
    },
    {
        /* Step 256: vm2 releases 256 and gives 110 + 120 = 230; vm1 took most. */
        .name = "one donor feeds two needy VMs",
        .tweaks = {{"max_release_step_mib", "256"}, {"reclaim_idle", "false"}},
        .host = HOST_MIB(200),
        .n = 3,
        .vms = {VM(90), VM(80), VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2158), 2, MIB(110), 0, MIB(110)},
                {SCHED_REASON_GROW, MIB(2168), 2, MIB(120), 0, MIB(120)},
                {SCHED_REASON_SHRINK, MIB(1818), 1, MIB(230), 0, 0},
            },
        .sum = {.need_kib = MIB(230),
                .granted_kib = MIB(230),
                .transferred_kib = MIB(230),
                .host_budget_kib = MIB(200),
                .grows = 2,
                .shrinks = 1},
    },
    {
        /* Need 110: 64 from vm1 (unused 1000), 46 from vm2 (unused 800). */
        .name = "two donors feed one needy VM",
        .tweaks = {{"reclaim_idle", "false"}},
        .host = HOST_MIB(200),
        .n = 3,
        .vms = {VM(90), VM(1000), VM(800)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2158), 1, MIB(110), 0, MIB(110)},
                {SCHED_REASON_SHRINK, MIB(1984), 0, MIB(64), 0, 0},
                {SCHED_REASON_SHRINK, MIB(2002), 0, MIB(46), 0, 0},
            },
        .sum = {.need_kib = MIB(110),
                .granted_kib = MIB(110),
                .transferred_kib = MIB(110),
                .host_budget_kib = MIB(200),
                .grows = 1,
                .shrinks = 2},
    },
    {
        /* As above with reclaim: vm2's other 18 go to the host; it gave vm0 more (46). */
        .name = "two donors feed one needy VM, the rest reclaimed",
        .host = HOST_MIB(200),
        .n = 3,
        .vms = {VM(90), VM(1000), VM(800)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2158), 1, MIB(110), 0, MIB(110)},
                {SCHED_REASON_SHRINK, MIB(1984), 0, MIB(64), 0, 0},
                {SCHED_REASON_SHRINK, MIB(1984), 0, MIB(46), MIB(18), 0},
            },
        .sum = {.need_kib = MIB(110),
                .granted_kib = MIB(110),
                .transferred_kib = MIB(110),
                .reclaimed_kib = MIB(18),
                .host_budget_kib = MIB(200),
                .grows = 1,
                .shrinks = 2},
    },
    /* ---- sharing by weight ---- */
    {
        /* The host has 264 - 200 = 64 for 300 of need: 100:300 gives 16 and 48. */
        .name = "weights share the host's supply",
        .host = HOST_MIB(264),
        .n = 2,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .weight = 100},
                {.actual = MIB(2048), .unused = MIB(50), .weight = 300}},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2064), HOST, 0, MIB(16), MIB(150)},
                {SCHED_REASON_GROW, MIB(2096), HOST, 0, MIB(48), MIB(150)},
            },
        .sum = {.need_kib = MIB(300),
                .granted_kib = MIB(64),
                .host_granted_kib = MIB(64),
                .host_budget_kib = MIB(264),
                .grows = 2},
    },
    {
        /* A donor's 64 for 300 of need, the host at its floor: 16 and 48 again. */
        .name = "weights share a donor's supply",
        .host = HOST_MIB(200),
        .n = 3,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .weight = 100},
                {.actual = MIB(2048), .unused = MIB(50), .weight = 300},
                VM(1000)},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2064), 2, MIB(16), 0, MIB(150)},
                {SCHED_REASON_GROW, MIB(2096), 2, MIB(48), 0, MIB(150)},
                {SCHED_REASON_SHRINK, MIB(1984), 1, MIB(64), 0, 0},
            },
        .sum = {.need_kib = MIB(300),
                .granted_kib = MIB(64),
                .transferred_kib = MIB(64),
                .host_budget_kib = MIB(200),
                .grows = 2,
                .shrinks = 1},
    },
    {
        /* 64 to share, weights 300:100:100. vm0's share (38.4) is more than its need (20,
         * max 2068), so it gets 20 and the other 44 are split 22/22. */
        .name = "water-filling: a VM needing less than its share gets its need",
        .host = HOST_MIB(264),
        .n = 3,
        .vms = {{.max = MIB(2068), .actual = MIB(2048), .unused = MIB(50), .weight = 300},
                {.actual = MIB(2048), .unused = MIB(50), .weight = 100},
                {.actual = MIB(2048), .unused = MIB(50), .weight = 100}},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2068), HOST, 0, MIB(20), MIB(20)},
                {SCHED_REASON_GROW, MIB(2070), HOST, 0, MIB(22), MIB(150)},
                {SCHED_REASON_GROW, MIB(2070), HOST, 0, MIB(22), MIB(150)},
            },
        .sum = {.need_kib = MIB(320),
                .granted_kib = MIB(64),
                .host_granted_kib = MIB(64),
                .host_budget_kib = MIB(264),
                .grows = 3},
    },
    {
        /* As above, but the VM needing less than its share is the least urgent (unused 80,
         * need min(120, 2068 - 2048) = 20): water-filling does not depend on urgency order. */
        .name = "water-filling: the light VM last in urgency order",
        .host = HOST_MIB(264),
        .n = 3,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .weight = 100},
                {.actual = MIB(2048), .unused = MIB(50), .weight = 100},
                {.max = MIB(2068), .actual = MIB(2048), .unused = MIB(80), .weight = 300}},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2070), HOST, 0, MIB(22), MIB(150)},
                {SCHED_REASON_GROW, MIB(2070), HOST, 0, MIB(22), MIB(150)},
                {SCHED_REASON_GROW, MIB(2068), HOST, 0, MIB(20), MIB(20)},
            },
        .sum = {.need_kib = MIB(320),
                .granted_kib = MIB(64),
                .host_granted_kib = MIB(64),
                .host_budget_kib = MIB(264),
                .grows = 3},
    },
    {
        /* Weight 0 is SCHED_WEIGHT_DEFAULT (100): an even split. */
        .name = "weight 0 means the default weight",
        .host = HOST_MIB(264),
        .n = 2,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .weight = 0},
                {.actual = MIB(2048), .unused = MIB(50), .weight = 100}},
        .want =
            {
                {SCHED_REASON_GROW, MIB(2080), HOST, 0, MIB(32), MIB(150)},
                {SCHED_REASON_GROW, MIB(2080), HOST, 0, MIB(32), MIB(150)},
            },
        .sum = {.need_kib = MIB(300),
                .granted_kib = MIB(64),
                .host_granted_kib = MIB(64),
                .host_budget_kib = MIB(264),
                .grows = 2},
    },
    /* ---- demand signal ---- */
    {
        /* usable decides: vm0 is in band by usable, vm1 needy (150), vm2 a donor (64),
         * vm3 in band although its unused is high. vm1 gets 64 from vm2 and 86 from the host. */
        .name = "demand_signal usable uses usable_kib",
        .tweaks = {{"demand_signal", "usable"}},
        .host = HOST_MIB(8192),
        .n = 4,
        .vms = {{.actual = MIB(2048), .unused = MIB(50), .usable = MIB(250)},
                {.actual = MIB(2048), .unused = MIB(250), .usable = MIB(50)},
                {.actual = MIB(2048), .unused = MIB(200), .usable = MIB(1000)},
                {.actual = MIB(2048), .unused = MIB(1000), .usable = MIB(200)}},
        .want =
            {
                KEEP(SCHED_REASON_IN_BAND, MIB(2048)),
                {SCHED_REASON_GROW, MIB(2198), HOST, MIB(64), MIB(86), MIB(150)},
                {SCHED_REASON_SHRINK, MIB(1984), 1, MIB(64), 0, 0},
                KEEP(SCHED_REASON_IN_BAND, MIB(2048)),
            },
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(150),
                .transferred_kib = MIB(64),
                .host_granted_kib = MIB(86),
                .host_budget_kib = MIB(8192),
                .grows = 1,
                .shrinks = 1},
    },
    /* ---- apply order ---- */
    {
        /* Index order is in band, grow, skipped, shrink, shrink; the plan must list the two
         * shrinks, then the grow, then the rest. vm1 needs 100 (max 2148): 64 from vm3
         * (unused 1000), 36 from vm4 (unused 900), whose other 28 are reclaimed. */
        .name = "apply order: shrinks, then grows, then the rest",
        .host = HOST_MIB(8192),
        .n = 5,
        .vms = {VM(200),
                {.max = MIB(2148), .actual = MIB(2048), .unused = MIB(50)},
                {.actual = MIB(2048), .unused = MIB(50), .age_ms = 60000},
                VM(1000),
                VM(900)},
        .want =
            {
                KEEP(SCHED_REASON_IN_BAND, MIB(2048)),
                {SCHED_REASON_GROW, MIB(2148), 3, MIB(100), 0, MIB(100)},
                KEEP(SCHED_REASON_STALE_STATS, MIB(2048)),
                {SCHED_REASON_SHRINK, MIB(1984), 1, MIB(64), 0, 0},
                {SCHED_REASON_SHRINK, MIB(1984), 1, MIB(36), MIB(28), 0},
            },
        .sum = {.need_kib = MIB(100),
                .granted_kib = MIB(100),
                .transferred_kib = MIB(100),
                .reclaimed_kib = MIB(28),
                .host_budget_kib = MIB(8192),
                .grows = 1,
                .shrinks = 2,
                .skipped = 1},
    },
    /* ---- edges ---- */
    {
        .name = "zero VMs",
        .host = HOST_MIB(8192),
        .n = 0,
        .sum = {.host_budget_kib = MIB(8192)},
    },
    {
        /* Values past SCHED_KIB_MAX are clamped to it, and nothing overflows. */
        .name = "huge values are clamped",
        .host = {.total_kib = UINT64_MAX, .available_kib = UINT64_MAX},
        .n = 1,
        .vms = {{.max = UINT64_MAX, .actual = MIB(2048), .unused = MIB(50)}},
        .want = {{SCHED_REASON_GROW, MIB(2198), HOST, 0, MIB(150), MIB(150)}},
        .sum = {.need_kib = MIB(150),
                .granted_kib = MIB(150),
                .host_granted_kib = MIB(150),
                .host_budget_kib = SCHED_KIB_MAX,
                .grows = 1},
    },
};

/* ---- running a case ---- */

static struct sched_vm
make_vm(const struct vm_spec *s)
{
    struct sched_vm vm;

    memset(&vm, 0, sizeof(vm));
    vm.max_kib = s->max ? s->max : MIB(4096);
    vm.actual_kib = s->actual;
    vm.target_kib = s->target;
    vm.unused_kib = s->unused;
    vm.usable_kib = s->usable ? s->usable : s->unused;
    vm.min_kib = s->min;
    vm.cap_kib = s->cap;
    vm.stats_age_ms = s->age_ms ? s->age_ms : 1000;
    vm.weight = s->weight;
    vm.state = s->state;
    vm.managed = !s->unmanaged;
    vm.has_balloon = !s->no_balloon;
    vm.has_unused = !s->no_unused;
    vm.has_usable = !s->no_usable;
    vm.stuck = s->stuck;
    vm.untouched_kib = s->untouched;
    vm.rate_kib_s = s->rate;
    return vm;
}

static void
make_policy(const struct sched_case *c, struct policy *p)
{
    char err[POLICY_ERR_MAX] = "";

    policy_init_defaults(p);
    /* The table is written on the seed's signal (unused); cases that want usable say so. */
    p->demand_signal = POLICY_DEMAND_UNUSED;
    for (size_t i = 0; i < TWEAKS_MAX && c->tweaks[i][0] != NULL; i++) {
        int rc = policy_set(p, c->tweaks[i][0], c->tweaks[i][1], err, sizeof(err));
        if (rc != 0)
            fail_msg("case \"%s\": policy_set %s=%s: want 0, got %d (%s)", c->name, c->tweaks[i][0],
                     c->tweaks[i][1], rc, err);
    }
    int rc = policy_validate(p, err, sizeof(err));
    if (rc != 0)
        fail_msg("case \"%s\": policy_validate: want 0, got %d (%s)", c->name, rc, err);
}

static const char *
cp_name(int32_t cp, char *buf, size_t len)
{
    if (cp == SCHED_HOST)
        return "host";
    if (cp == SCHED_NOBODY)
        return "nobody";
    snprintf(buf, len, "vm%" PRId32, cp);
    return buf;
}

/* Counts mismatches and prints each as case, vm, field, want, got. */
struct diff {
    const char *name;
    unsigned errors;
};

static void
diff_u64(struct diff *d, long vm, const char *field, uint64_t want, uint64_t got)
{
    if (want == got)
        return;
    d->errors++;
    if (vm < 0)
        print_error("case \"%s\" summary %s: want %" PRIu64 " KiB (%.2f MiB), got %" PRIu64
                    " KiB (%.2f MiB)\n",
                    d->name, field, want, want / 1024.0, got, got / 1024.0);
    else
        print_error("case \"%s\" vm%ld %s: want %" PRIu64 " KiB (%.2f MiB), got %" PRIu64
                    " KiB (%.2f MiB)\n",
                    d->name, vm, field, want, want / 1024.0, got, got / 1024.0);
}

static void
diff_count(struct diff *d, const char *field, uint64_t want, uint64_t got)
{
    if (want == got)
        return;
    d->errors++;
    print_error("case \"%s\" %s: want %" PRIu64 ", got %" PRIu64 "\n", d->name, field, want, got);
}

static void
diff_reason(struct diff *d, long vm, enum sched_reason want, enum sched_reason got)
{
    if (want == got)
        return;
    d->errors++;
    print_error("case \"%s\" vm%ld reason: want %s, got %s\n", d->name, vm, sched_reason_name(want),
                sched_reason_name(got));
}

static void
diff_cp(struct diff *d, long vm, int32_t want, int32_t got)
{
    char wb[16];
    char gb[16];

    if (want == got)
        return;
    d->errors++;
    print_error("case \"%s\" vm%ld counterpart: want %s, got %s\n", d->name, vm,
                cp_name(want, wb, sizeof(wb)), cp_name(got, gb, sizeof(gb)));
}

/* What holds for any plan: one entry per VM, old target = committed, apply order. Fills
 * by_vm[i] with the entry of VM i. */
static void
check_shape(struct diff *d,
            const struct sched_vm *vms,
            size_t n,
            const struct sched_plan *plan,
            const struct sched_entry **by_vm)
{
    diff_count(d, "n_entries", n, plan->n_entries);
    if (plan->n_entries != n)
        return;
    for (size_t i = 0; i < n; i++)
        by_vm[i] = NULL;
    for (size_t i = 0; i < n; i++) {
        const struct sched_entry *e = &plan->entries[i];

        if (e->vm >= n || by_vm[e->vm] != NULL) {
            d->errors++;
            print_error("case \"%s\" entries[%zu].vm: want a VM index < %zu listed once, got "
                        "%" PRIu32 "\n",
                        d->name, i, n, e->vm);
            continue;
        }
        by_vm[e->vm] = e;
    }
    diff_count(d, "n_shrinks + n_grows <= n_entries", 1,
               plan->n_shrinks + plan->n_grows <= plan->n_entries);
    for (size_t i = 0; i < plan->n_entries; i++) {
        enum sched_reason r = plan->entries[i].reason;
        const char *want_group;
        bool ok;

        if (i < plan->n_shrinks) {
            want_group = "shrink";
            ok = r == SCHED_REASON_SHRINK;
        } else if (i < plan->n_shrinks + plan->n_grows) {
            want_group = "grow";
            ok = r == SCHED_REASON_GROW;
        } else {
            want_group = "neither shrink nor grow";
            ok = r != SCHED_REASON_SHRINK && r != SCHED_REASON_GROW;
        }
        if (!ok) {
            d->errors++;
            print_error("case \"%s\" apply order: entries[%zu] (vm%" PRIu32
                        "): want %s, got %s (n_shrinks %zu, n_grows %zu)\n",
                        d->name, i, plan->entries[i].vm, want_group, sched_reason_name(r),
                        plan->n_shrinks, plan->n_grows);
        }
    }
    for (size_t i = 0; i < n; i++) {
        const struct sched_entry *e = by_vm[i];
        uint64_t committed = vms[i].target_kib ? vms[i].target_kib : vms[i].actual_kib;

        if (e == NULL)
            continue;
        diff_u64(d, (long)i, "old_target_kib (committed)", committed, e->old_target_kib);
        if (sched_reason_is_skip(e->reason) != (e->reason >= SCHED_REASON_UNMANAGED)) {
            d->errors++;
            print_error("case \"%s\" vm%zu: sched_reason_is_skip(%s) is wrong\n", d->name, i,
                        sched_reason_name(e->reason));
        }
    }
}

static void
check_entries(struct diff *d, const struct sched_case *c, const struct sched_entry **by_vm)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct want *w = &c->want[i];
        const struct sched_entry *e = by_vm[i];

        if (e == NULL)
            continue;
        diff_reason(d, (long)i, w->reason, e->reason);
        diff_u64(d, (long)i, "new_target_kib", w->target, e->new_target_kib);
        diff_cp(d, (long)i, w->cp, e->counterpart);
        diff_u64(d, (long)i, "vm_kib", w->vm, e->vm_kib);
        diff_u64(d, (long)i, "host_kib", w->host, e->host_kib);
        diff_u64(d, (long)i, "need_kib", w->need, e->need_kib);
        diff_u64(d, (long)i, "lookahead_kib", c->lookahead[i], e->lookahead_kib);
    }
}

static void
check_summary(struct diff *d,
              const struct sched_summary *w,
              const struct sched_summary *g,
              const struct sched_plan *plan)
{
    diff_u64(d, -1, "need_kib", w->need_kib, g->need_kib);
    diff_u64(d, -1, "granted_kib", w->granted_kib, g->granted_kib);
    diff_u64(d, -1, "transferred_kib", w->transferred_kib, g->transferred_kib);
    diff_u64(d, -1, "host_granted_kib", w->host_granted_kib, g->host_granted_kib);
    diff_u64(d, -1, "reclaimed_kib", w->reclaimed_kib, g->reclaimed_kib);
    diff_u64(d, -1, "host_budget_kib", w->host_budget_kib, g->host_budget_kib);
    diff_u64(d, -1, "inflight_grow_kib", w->inflight_grow_kib, g->inflight_grow_kib);
    diff_u64(d, -1, "inflight_shrink_kib", w->inflight_shrink_kib, g->inflight_shrink_kib);
    diff_u64(d, -1, "untouched_kib", w->untouched_kib, g->untouched_kib);
    diff_u64(d, -1, "host_deficit_kib", w->host_deficit_kib, g->host_deficit_kib);
    diff_count(d, "summary grows", w->grows, g->grows);
    diff_count(d, "summary shrinks", w->shrinks, g->shrinks);
    diff_count(d, "summary skipped", w->skipped, g->skipped);
    diff_count(d, "summary host_pressure", w->host_pressure, g->host_pressure);
    diff_count(d, "n_grows", w->grows, plan->n_grows);
    diff_count(d, "n_shrinks", w->shrinks, plan->n_shrinks);
}

/* Two plans of the same input are the same, field by field. */
static void
check_same(struct diff *d, const char *run, const struct sched_plan *a, const struct sched_plan *b)
{
    bool same =
        a->n_entries == b->n_entries && a->n_shrinks == b->n_shrinks && a->n_grows == b->n_grows;

    for (size_t i = 0; same && i < a->n_entries; i++) {
        const struct sched_entry *x = &a->entries[i];
        const struct sched_entry *y = &b->entries[i];

        same = x->vm == y->vm && x->reason == y->reason && x->counterpart == y->counterpart &&
               x->old_target_kib == y->old_target_kib && x->new_target_kib == y->new_target_kib &&
               x->need_kib == y->need_kib && x->vm_kib == y->vm_kib && x->host_kib == y->host_kib;
    }
    const struct sched_summary *s = &a->summary;
    const struct sched_summary *t = &b->summary;
    same = same && s->need_kib == t->need_kib && s->granted_kib == t->granted_kib &&
           s->transferred_kib == t->transferred_kib && s->host_granted_kib == t->host_granted_kib &&
           s->reclaimed_kib == t->reclaimed_kib && s->host_budget_kib == t->host_budget_kib &&
           s->inflight_grow_kib == t->inflight_grow_kib &&
           s->inflight_shrink_kib == t->inflight_shrink_kib &&
           s->untouched_kib == t->untouched_kib && s->host_deficit_kib == t->host_deficit_kib &&
           s->grows == t->grows && s->shrinks == t->shrinks && s->skipped == t->skipped &&
           s->host_pressure == t->host_pressure;
    if (!same) {
        d->errors++;
        print_error("case \"%s\": want the same plan on the %s run, got a different one\n", d->name,
                    run);
    }
}

/* A plan's entries live in its work until the next call: keep a copy. */
struct plan_copy {
    struct sched_entry entries[CASE_VMS_MAX];
    struct sched_plan plan;
};

static void
copy_plan(struct plan_copy *dst, const struct sched_plan *src)
{
    assert_true(src->n_entries <= CASE_VMS_MAX);
    dst->plan = *src;
    if (src->n_entries > 0)
        memcpy(dst->entries, src->entries, src->n_entries * sizeof(src->entries[0]));
    dst->plan.entries = dst->entries;
}

static void
run_plan(const struct policy *p,
         const struct sched_host *host,
         const struct sched_vm *vms,
         size_t n,
         struct sched_work *work,
         struct plan_copy *out)
{
    struct sched_plan plan;

    memset(&plan, 0, sizeof(plan));
    int rc = sched_plan(p, host, vms, n, work, &plan);
    assert_int_equal(rc, 0);
    copy_plan(out, &plan);
}

static void
run_case(void **state)
{
    const struct sched_case *c = *state;
    struct sched_vm vms[CASE_VMS_MAX];
    const struct sched_entry *by_vm[CASE_VMS_MAX];
    struct policy policy;
    struct plan_copy first;
    struct plan_copy second;
    struct plan_copy third;
    struct diff d = {.name = c->name, .errors = 0};

    assert_true(c->n <= CASE_VMS_MAX);
    make_policy(c, &policy);
    for (size_t i = 0; i < c->n; i++)
        vms[i] = make_vm(&c->vms[i]);

    struct sched_work *work = sched_work_new(CASE_VMS_MAX);
    struct sched_work *other = sched_work_new(CASE_VMS_MAX);
    assert_non_null(work);
    assert_non_null(other);

    run_plan(&policy, &c->host, vms, c->n, work, &first);
    run_plan(&policy, &c->host, vms, c->n, other, &second);
    run_plan(&policy, &c->host, vms, c->n, work, &third);

    check_shape(&d, vms, c->n, &first.plan, by_vm);
    if (first.plan.n_entries == c->n)
        check_entries(&d, c, by_vm);
    check_summary(&d, &c->sum, &first.plan.summary, &first.plan);
    check_same(&d, "second (fresh work)", &first.plan, &second.plan);
    check_same(&d, "third (reused work)", &first.plan, &third.plan);

    sched_work_destroy(&work);
    sched_work_destroy(&other);
    assert_null(work);
    if (d.errors > 0)
        fail_msg("case \"%s\": %u mismatches (listed above)", c->name, d.errors);
}

/* ---- tests outside the table ---- */

static void
test_e2big(void **state)
{
    (void)state;
    struct policy p;
    struct sched_host host = HOST_MIB(8192);
    struct sched_vm vms[3];
    struct sched_plan plan;
    struct sched_work *work = sched_work_new(2);

    policy_init_defaults(&p);
    for (size_t i = 0; i < ARRAY_SIZE(vms); i++) {
        const struct vm_spec s = VM(200);
        vms[i] = make_vm(&s);
    }
    assert_non_null(work);
    memset(&plan, 0, sizeof(plan));
    assert_int_equal(sched_plan(&p, &host, vms, 3, work, &plan), -E2BIG);
    /* At capacity is fine. */
    assert_int_equal(sched_plan(&p, &host, vms, 2, work, &plan), 0);
    assert_int_equal(plan.n_entries, 2);
    sched_work_destroy(&work);
    assert_null(work);
    sched_work_destroy(&work); /* NULL-safe and repeatable */
    sched_work_destroy(NULL);
}

static void
test_reason_names(void **state)
{
    (void)state;
    for (int r = 0; r < SCHED_REASON_COUNT; r++) {
        const char *name = sched_reason_name((enum sched_reason)r);

        assert_non_null(name);
        assert_true(strlen(name) > 0);
        for (int s = 0; s < r; s++)
            assert_string_not_equal(name, sched_reason_name((enum sched_reason)s));
        assert_int_equal(sched_reason_is_skip((enum sched_reason)r), r >= SCHED_REASON_UNMANAGED);
    }
    assert_string_equal(sched_reason_name(SCHED_REASON_GROW), "grow");
    assert_string_equal(sched_reason_name(SCHED_REASON_STALE_STATS), "stale_stats");
}

int
main(void)
{
    /* One cmocka test per table row, named after it; the table's size is known at compile
     * time, so cmocka_run_group_tests()'s sizeof trick is replaced by its underlying call. */
    static struct CMUnitTest tests[ARRAY_SIZE(cases) + 2];
    size_t n = 0;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        tests[n].name = cases[i].name;
        tests[n].test_func = run_case;
        tests[n].initial_state = (void *)&cases[i];
        n++;
    }
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_e2big);
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_reason_names);
    return _cmocka_run_group_tests("sched", tests, n, NULL, NULL);
}

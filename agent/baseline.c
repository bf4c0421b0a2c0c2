/*
 * baseline.c - the seed, Proxmox VE and oVirt MOM balloon policies (baseline.h), each written
 * from the public description of its behaviour, cited above its function. Where a description
 * leaves a choice open, the comment says which was made.
 */
#include "baseline.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A VM a balloon policy can act on: running, ballooned, managed, with guest stats. */
static bool
eligible(const struct hv_vm *vm)
{
    return vm->state == SCHED_VM_RUNNING && vm->has_balloon && vm->managed && vm->has_unused;
}

static uint64_t
floor_of(const struct policy *policy, const struct hv_vm *vm)
{
    return vm->min_kib ? vm->min_kib : policy->vm_floor_kib;
}

static uint64_t
ceiling_of(const struct hv_vm *vm)
{
    return vm->cap_kib ? util_min_u64(vm->cap_kib, vm->max_kib) : vm->max_kib;
}

static void
targets_from(const struct hv_vm *vms, size_t n, const uint64_t *want, uint64_t *targets)
{
    for (size_t i = 0; i < n; i++)
        targets[i] = want[i] != vms[i].actual_kib ? want[i] : 0;
}

/*
 * shared/seed/MemoryScheduler.md, taken literally: a VM whose unused memory is below
 * DOMAIN_MIN_UNUSED_MEMORY needs what brings it back to it (no grow target: the seed has none);
 * one above EXCESS_THRESHOLD that can give MAX_MEMORY_RELEASE and keep DOMAIN_MIN_UNUSED_MEMORY
 * gives that much. For each pair (needy i, donor j) memory moves from j to i; what is still
 * needed comes from the host while it keeps more than HOST_MIN_UNUSED_MEMORY. Nothing goes back
 * to the host unasked. Signal: guest unused memory (MemFree), as the seed says.
 */
void
baseline_seed(const struct policy *policy,
              const struct hv_host *host,
              const struct hv_vm *vms,
              size_t n,
              uint64_t *targets)
{
    uint64_t *want = util_xcalloc(n, sizeof(*want)), *need = util_xcalloc(n, sizeof(*need));
    uint64_t *give = util_xcalloc(n, sizeof(*give));
    uint64_t avail = host->available_kib;

    for (size_t i = 0; i < n; i++) {
        const struct hv_vm *vm = &vms[i];
        want[i] = vm->actual_kib;
        if (!eligible(vm))
            continue;
        if (vm->unused_kib < policy->vm_min_unused_kib)
            need[i] = util_min_u64(policy->vm_min_unused_kib - vm->unused_kib,
                                   util_sub_sat(ceiling_of(vm), vm->actual_kib));
        else if (vm->unused_kib > policy->vm_excess_unused_kib &&
                 vm->unused_kib >= policy->max_release_step_kib + policy->vm_min_unused_kib)
            give[i] = util_min_u64(policy->max_release_step_kib,
                                   util_sub_sat(vm->actual_kib, floor_of(policy, vm)));
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n && need[i]; j++) {
            uint64_t t = util_min_u64(need[i], give[j]);
            want[i] += t;
            want[j] -= t;
            need[i] -= t;
            give[j] -= t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (need[i] && avail > need[i] && avail - need[i] > policy->host_min_unused_kib) {
            want[i] += need[i];
            avail -= need[i];
        }
    }
    targets_from(vms, n, want, targets);
    free(want);
    free(need);
    free(give);
}

#define PROXMOX_GOAL_PERMILLE 800u /* the host aimed at 80 % used */
#define PROXMOX_STEP_KIB      (100u * UTIL_KIB_PER_MIB)
#define PROXMOX_SHARES        1000u /* a VM's default shares */

/* A ballooned VM with room to move the way the host needs. */
static bool
proxmox_movable(const struct policy *policy, const struct hv_vm *vm, bool shrink)
{
    if (vm->state != SCHED_VM_RUNNING || !vm->has_balloon || !vm->managed)
        return false;
    return shrink ? vm->actual_kib > floor_of(policy, vm) : vm->actual_kib < ceiling_of(vm);
}

/*
 * Proxmox VE auto-ballooning, as its admin guide ("Memory" in "Qemu/KVM Virtual Machines")
 * and pvestatd's behaviour are described: the host is aimed at 80 % memory used; above that,
 * ballooned VMs are shrunk toward their minimum, below it grown toward their maximum, the
 * difference shared out by each VM's shares, at most 100 MiB a VM a cycle. It reads no guest
 * statistics: a VM's need does not enter. Shares: the VM's weight, else 1000 (Proxmox's
 * default). Minimum: the VM's floor.
 */
void
baseline_proxmox(const struct policy *policy,
                 const struct hv_host *host,
                 const struct hv_vm *vms,
                 size_t n,
                 uint64_t *targets)
{
    uint64_t goal_used = host->total_kib / 1000 * PROXMOX_GOAL_PERMILLE;
    uint64_t used = util_sub_sat(host->total_kib, host->available_kib);
    bool shrink = used > goal_used;
    uint64_t gap = shrink ? used - goal_used : goal_used - used;
    uint64_t *want = util_xcalloc(n, sizeof(*want));
    uint64_t shares = 0;

    for (size_t i = 0; i < n; i++)
        if (proxmox_movable(policy, &vms[i], shrink))
            shares += vms[i].weight ? vms[i].weight : PROXMOX_SHARES;
    for (size_t i = 0; i < n; i++) {
        const struct hv_vm *vm = &vms[i];
        uint64_t share = vm->weight ? vm->weight : PROXMOX_SHARES, part;
        want[i] = vm->actual_kib;
        if (!proxmox_movable(policy, vm, shrink))
            continue;
        part = util_min_u64((uint64_t)((double)gap * (double)share / (double)shares),
                            PROXMOX_STEP_KIB);
        if (shrink)
            want[i] = util_max_u64(util_sub_sat(vm->actual_kib, part), floor_of(policy, vm));
        else
            want[i] = util_min_u64(vm->actual_kib + part, ceiling_of(vm));
    }
    targets_from(vms, n, want, targets);
    free(want);
}

#define MOM_PRESSURE_PERMILLE 200u /* host free below 20 %: pressure */
#define MOM_MIN_FREE_PERMILLE 200u /* a guest below 20 % free grows */
#define MOM_MAX_FREE_PERMILLE 250u /* under pressure, a guest above 25 % free shrinks */
#define MOM_CHANGE_PERMILLE   50u  /* 5 % of the balloon a cycle */
#define MOM_TINY_PER_10K      25u  /* changes under 0.25 % are skipped */

/*
 * oVirt MOM's shipped balloon policy (the "balloon" rules of MOM's default policy, as its
 * documentation and the oVirt memory-overcommit pages describe them): the host is under pressure
 * when its free memory is below 20 % of its total. Without pressure, a guest with less than 20 %
 * of its balloon free is grown toward its used memory + 20 % (used / 0.8), by at least 5 % of its
 * balloon, never above its maximum; with pressure, a guest with more than 25 % free is shrunk by
 * 5 % of its balloon, never below used + 20 %. Changes under 0.25 % are not made. It does not
 * hold back a grow for the host's sake. Guest free memory: MemAvailable where reported (MOM's
 * guest agent reports free + reclaimable cache), else MemFree.
 */
void
baseline_mom(const struct policy *policy,
             const struct hv_host *host,
             const struct hv_vm *vms,
             size_t n,
             uint64_t *targets)
{
    bool pressure = host->available_kib < host->total_kib / 1000 * MOM_PRESSURE_PERMILLE;
    uint64_t *want = util_xcalloc(n, sizeof(*want));

    for (size_t i = 0; i < n; i++) {
        const struct hv_vm *vm = &vms[i];
        uint64_t cur = vm->actual_kib, free_kib, used, comfortable, step;
        want[i] = cur;
        if (!eligible(vm) || cur == 0)
            continue;
        free_kib = util_min_u64(vm->has_usable ? vm->usable_kib : vm->unused_kib, cur);
        used = cur - free_kib;
        comfortable = used / (1000 - MOM_MIN_FREE_PERMILLE) * 1000;
        step = cur / 1000 * MOM_CHANGE_PERMILLE;
        if (!pressure && free_kib * 1000 < cur * MOM_MIN_FREE_PERMILLE)
            want[i] = util_min_u64(util_max_u64(comfortable, cur + step), ceiling_of(vm));
        else if (pressure && free_kib * 1000 > cur * MOM_MAX_FREE_PERMILLE)
            want[i] = util_max_u64(util_max_u64(util_sub_sat(cur, step), comfortable),
                                   floor_of(policy, vm));
        uint64_t change = want[i] > cur ? want[i] - cur : cur - want[i];
        if (change * 10000 < cur * MOM_TINY_PER_10K)
            want[i] = cur;
    }
    targets_from(vms, n, want, targets);
    free(want);
}

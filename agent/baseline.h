/*
 * baseline.h - the balloon policies operators run today, written from their public descriptions
 * (no code copied; each function in baseline.c says where its rules were described), so that
 * memsched is judged against them on the same scenarios (eval.h).
 *
 * A baseline sees what memsched sees (the port's samples: host memory, each VM's balloon, max,
 * guest stats and overrides) and answers with targets; it keeps no state between cycles, as none
 * of the three does. It is not checked against memsched's invariants: what it does to the host
 * is what the evaluator measures.
 */
#ifndef MEMSCHED_AGENT_BASELINE_H
#define MEMSCHED_AGENT_BASELINE_H

#include <stddef.h>
#include <stdint.h>

#include "hv.h"
#include "policy.h"

/* One cycle: targets[i] becomes vms[i]'s new balloon target, 0 = leave it alone. */
typedef void (*baseline_plan_fn)(const struct policy *policy,
                                 const struct hv_host *host,
                                 const struct hv_vm *vms,
                                 size_t n,
                                 uint64_t *targets);

/* The seed's pair loop (shared/seed/MemoryScheduler.md), on the policy's thresholds. */
void baseline_seed(const struct policy *policy,
                   const struct hv_host *host,
                   const struct hv_vm *vms,
                   size_t n,
                   uint64_t *targets);

/* Proxmox VE's auto-ballooning: the host aimed at 80 % used, by shares, 100 MiB a VM a cycle. */
void baseline_proxmox(const struct policy *policy,
                      const struct hv_host *host,
                      const struct hv_vm *vms,
                      size_t n,
                      uint64_t *targets);

/* oVirt MOM's shipped balloon policy: guests toward used + 20 %, shrunk under host pressure. */
void baseline_mom(const struct policy *policy,
                  const struct hv_host *host,
                  const struct hv_vm *vms,
                  size_t n,
                  uint64_t *targets);

/* Their shipped cycles: pvestatd and MOM's policy engine both run every 10 s. */
#define BASELINE_PROXMOX_CYCLE_MS 10000u
#define BASELINE_MOM_CYCLE_MS     10000u

#endif /* MEMSCHED_AGENT_BASELINE_H */

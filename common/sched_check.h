/*
 * sched_check.h - the scheduling invariants of DESIGN.md, checked on a finished plan.
 *
 * Written apart from the planner, from the rules alone, so that one can catch the other:
 * the property test runs it on random snapshots, the sim and e2e tests on every round, and the
 * agent before it applies a plan (a plan that breaks an invariant is not applied).
 */
#ifndef MEMSCHED_COMMON_SCHED_CHECK_H
#define MEMSCHED_COMMON_SCHED_CHECK_H

#include <stddef.h>

#include "policy.h"
#include "sched.h"

/* 0 when plan keeps every invariant for this input; -EPROTO otherwise, with msg naming the
 * first broken invariant, the VM index and the numbers involved. */
int sched_check_plan(const struct policy *policy,
                     const struct sched_host *host,
                     const struct sched_vm *vms,
                     size_t n_vms,
                     const struct sched_plan *plan,
                     char *msg,
                     size_t msg_len);

#endif /* MEMSCHED_COMMON_SCHED_CHECK_H */

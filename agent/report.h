/*
 * report.h - what a person running the agent by hand sees: a per-VM table each round and a
 * summary at the end. Logs are for machines; this is for eyes.
 */
#ifndef MEMSCHED_AGENT_REPORT_H
#define MEMSCHED_AGENT_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "policy.h"
#include "round.h"

void report_round(FILE *out,
                  const struct round_view *view,
                  const struct policy *policy,
                  uint64_t round_no,
                  uint64_t elapsed_ms);

/* One CSV line per VM per round, for plots and for checking a run afterwards. The header names
 * the columns: t_ms,round,vm,name,reason,old_target_kib,new_target_kib,actual_kib,max_kib,
 * unused_kib,usable_kib,stats_age_ms,stuck,vm_kib,host_kib,host_total_kib,host_available_kib,
 * host_min_unused_kib,applied (unknown stats are empty). */
void report_csv_header(FILE *out);

void report_csv_round(FILE *out,
                      const struct round_view *view,
                      const struct policy *policy,
                      uint64_t round_no,
                      uint64_t elapsed_ms);

void report_summary(FILE *out, const struct round_counters *counters, uint64_t elapsed_ms);

#endif /* MEMSCHED_AGENT_REPORT_H */

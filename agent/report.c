/*
 * report.c - the per-round VM table and the closing summary (MiB, one decimal).
 */
#include "report.h"

#include <inttypes.h>

#include "util.h"

static void
describe(char *buf, size_t len, const struct round_view *view, const struct sched_entry *e)
{
    const char *peer = e->counterpart == SCHED_HOST ? "host"
                       : e->counterpart >= 0        ? view->vms[e->counterpart].name
                                                    : "-";

    if (e->reason == SCHED_REASON_GROW)
        snprintf(buf, len, "grow +%.0f (vms %.0f, host %.0f) from %s",
                 util_kib_to_mib(e->vm_kib + e->host_kib), util_kib_to_mib(e->vm_kib),
                 util_kib_to_mib(e->host_kib), peer);
    else if (e->reason == SCHED_REASON_SHRINK)
        snprintf(buf, len, "shrink -%.0f to %s", util_kib_to_mib(e->vm_kib + e->host_kib), peer);
    else if (e->reason == SCHED_REASON_NEED_UNMET)
        snprintf(buf, len, "need_unmet %.0f", util_kib_to_mib(e->need_kib));
    else
        snprintf(buf, len, "%s", sched_reason_name(e->reason));
}

void
report_round(FILE *out,
             const struct round_view *view,
             const struct policy *policy,
             uint64_t round_no,
             uint64_t elapsed_ms)
{
    const struct sched_summary *s = &view->plan->summary;
    char decision[160], unused[16];

    fprintf(out,
            "round %" PRIu64 "  t=%.1fs  host available %.0f MiB (floor %.0f)%s  granted %.0f"
            "  reclaimed %.0f%s\n",
            round_no, (double)elapsed_ms / 1000.0, util_kib_to_mib(view->host->available_kib),
            util_kib_to_mib(policy->host_min_unused_kib), s->host_pressure ? " PRESSURE" : "",
            util_kib_to_mib(s->granted_kib), util_kib_to_mib(s->reclaimed_kib),
            view->applied ? "" : "  (not applied)");
    fprintf(out, "  %-16s %9s %9s %9s  %s\n", "vm", "balloon", "unused", "max", "decision");
    for (size_t i = 0; i < view->n_vms; i++) {
        const struct hv_vm *vm = &view->vms[i];
        const struct sched_entry *e = view->entry_of[i];
        if (vm->has_unused)
            snprintf(unused, sizeof(unused), "%.1f", util_kib_to_mib(vm->unused_kib));
        else
            snprintf(unused, sizeof(unused), "-");
        describe(decision, sizeof(decision), view, e);
        fprintf(out, "  %-16.16s %9.1f %9s %9.0f  %s\n", vm->name, util_kib_to_mib(vm->actual_kib),
                unused, util_kib_to_mib(vm->max_kib), decision);
    }
    fflush(out);
}

void
report_csv_header(FILE *out)
{
    fprintf(out, "t_ms,round,vm,name,reason,old_target_kib,new_target_kib,actual_kib,max_kib,"
                 "unused_kib,usable_kib,stats_age_ms,stuck,vm_kib,host_kib,host_total_kib,"
                 "host_available_kib,host_min_unused_kib,applied,rss_kib,untouched_kib,rate_kib_s,"
                 "lookahead_kib,horizon_ms,sample_ms\n");
}

static void
csv_optional(FILE *out, bool present, uint64_t value)
{
    if (present)
        fprintf(out, "%" PRIu64 ",", value);
    else
        fputc(',', out);
}

void
report_csv_round(FILE *out,
                 const struct round_view *view,
                 const struct policy *policy,
                 uint64_t round_no,
                 uint64_t elapsed_ms)
{
    for (size_t i = 0; i < view->n_vms; i++) {
        const struct hv_vm *vm = &view->vms[i];
        const struct sched_entry *e = view->entry_of[i];
        /* VM names come from libvirt; keep the CSV parseable whatever they contain. */
        fprintf(out, "%" PRIu64 ",%" PRIu64 ",%s,\"", elapsed_ms, round_no, vm->uuid);
        for (const char *c = vm->name; *c; c++)
            fputs(*c == '"' ? "\"\"" : (char[2]){*c, 0}, out);
        fprintf(out, "\",%s,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",",
                sched_reason_name(e->reason), e->old_target_kib, e->new_target_kib, vm->actual_kib,
                vm->max_kib);
        csv_optional(out, vm->has_unused, vm->unused_kib);
        csv_optional(out, vm->has_usable, vm->usable_kib);
        csv_optional(out, vm->has_unused || vm->has_usable, vm->stats_age_ms);
        fprintf(out, "%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%d,",
                view->snapshot[i].stuck, e->vm_kib, e->host_kib, view->host->total_kib,
                view->host->available_kib, policy->host_min_unused_kib, view->applied);
        csv_optional(out, vm->has_rss, vm->rss_kib);
        fprintf(out, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",",
                view->snapshot[i].untouched_kib, view->snapshot[i].rate_kib_s, e->lookahead_kib,
                view->sched_host->horizon_ms);
        /* How long the sample this round planned on had been seen when it was applied. */
        if (view->sample_seen_ms[i])
            fprintf(out, "%" PRIu64 "\n", view->now_ms - view->sample_seen_ms[i]);
        else
            fputs("\n", out);
    }
    fflush(out);
}

void
report_summary(FILE *out, const struct round_counters *c, uint64_t elapsed_ms)
{
    fprintf(out, "\nsummary: %" PRIu64 " rounds in %.1f s (%" PRIu64 " failed to sample)\n",
            c->rounds, (double)elapsed_ms / 1000.0, c->failed_rounds);
    fprintf(out,
            "  granted %.0f MiB in %" PRIu64
            " grows (%.0f from VMs, %.0f from the host) to %" PRIu64 " VMs\n",
            util_kib_to_mib(c->granted_kib), c->grows, util_kib_to_mib(c->transferred_kib),
            util_kib_to_mib(c->host_granted_kib), c->vms_fed);
    fprintf(out, "  reclaimed %.0f MiB to the host; %" PRIu64 " shrinks in all\n",
            util_kib_to_mib(c->reclaimed_kib), c->shrinks);
    fprintf(out, "  apply failures %" PRIu64 ", plans refused %" PRIu64 "\n", c->apply_failures,
            c->plans_refused);
}

# metrics.awk - what moved in a window of memsched-agent's --record CSV, for one VM or all.
#
#   awk -F, -v vm=NAME -v since_ms=T0 [-v until_ms=T1] [-v nvms=4] -f csvcols.awk \
#       -f metrics.awk ROUNDS.csv
#
# Columns by name (csvcols.awk): round, t_ms, name, reason, actual_kib, vm_kib, host_kib,
# host_available_kib, host_min_unused_kib; rows that do not match the header are skipped.
# vm empty = every VM. Only complete rounds (nvms rows) inside [since_ms, until_ms] count.
# Prints key=value pairs on one line (KiB unless named otherwise):
#   rounds            rounds in the window
#   grows granted_kib from_vms_kib from_host_kib      the VM's (or all) grows
#   shrinks released_kib to_vms_kib to_host_kib       the VM's (or all) shrinks
#   first_grow_ms     agent time of the first grow in the window (-1: none)
#   first_grow_wait_ms / first_grow_rounds   since since_ms, and how many rounds that took
#                                             (the round of the grow counts: 1 = the first round)
#   actual_first_kib actual_last_kib actual_min_kib actual_max_kib   the VM's balloon (vm set)
#   min_margin_kib    least host available - host_min_unused over the window
#   need_unmet        rounds in which the VM (or any VM) needed memory and got none
#   at_max            rounds in which the VM was at its max and needy
#   last_reasons      the VM's reason in each of the last 5 rounds, oldest first
function flush_round(    i) {
    if (cur == "" || count != nvms || t < since_ms || (until_ms != "" && t > until_ms))
        return
    rounds++
    if (first_round == "")
        first_round = cur
    for (i = 1; i <= count; i++)
        take(i)
    m = r_avail - r_min
    if (margin_set == 0 || m < min_margin) {
        min_margin = m
        margin_set = 1
    }
}

function take(i) {
    if (vm != "" && rows_name[i] != vm)
        return
    reason = rows_reason[i]
    if (reason == "grow") {
        grows++
        granted += rows_vm[i] + rows_host[i]
        from_vms += rows_vm[i]
        from_host += rows_host[i]
        if (first_grow == -1) {
            first_grow = rows_t[i]
            first_grow_rounds = cur - first_round + 1
        }
    } else if (reason == "shrink") {
        shrinks++
        released += rows_vm[i] + rows_host[i]
        to_vms += rows_vm[i]
        to_host += rows_host[i]
    } else if (reason == "need_unmet") {
        need_unmet++
    } else if (reason == "at_max") {
        at_max++
    }
    if (vm != "") {
        a = rows_actual[i]
        if (actual_first == "")
            actual_first = a
        actual_last = a
        if (actual_min == "" || a < actual_min)
            actual_min = a
        if (actual_max == "" || a > actual_max)
            actual_max = a
        last[++nlast] = reason
    }
}

BEGIN {
    if (nvms == "")
        nvms = 4
    if (since_ms == "")
        since_ms = 0
    first_grow = -1
    cur = ""
}

FNR == 1 && CSV_BAD {
    print "metrics.awk: " CSV_WHY > "/dev/stderr"
    exit 2
}

FNR == 1 || NF != HNF { next }

{
    if ($C["round"] != cur) {
        flush_round()
        cur = $C["round"]
        count = 0
    }
    count++
    t = $C["t_ms"] + 0
    rows_t[count] = t
    rows_name[count] = vm_name()
    rows_reason[count] = $C["reason"]
    rows_actual[count] = $C["actual_kib"] + 0
    rows_vm[count] = $C["vm_kib"] + 0
    rows_host[count] = $C["host_kib"] + 0
    r_avail = $C["host_available_kib"] + 0
    r_min = $C["host_min_unused_kib"] + 0
}

END {
    flush_round()
    reasons = ""
    for (i = (nlast > 5 ? nlast - 4 : 1); i <= nlast; i++)
        reasons = reasons (reasons == "" ? "" : ",") last[i]
    printf "rounds=%d grows=%d granted_kib=%d from_vms_kib=%d from_host_kib=%d", rounds, grows,
           granted, from_vms, from_host
    printf " shrinks=%d released_kib=%d to_vms_kib=%d to_host_kib=%d", shrinks, released, to_vms,
           to_host
    printf " first_grow_ms=%d first_grow_wait_ms=%d first_grow_rounds=%d", first_grow,
           first_grow < 0 ? -1 : first_grow - since_ms, first_grow < 0 ? -1 : first_grow_rounds
    if (vm != "")
        printf " actual_first_kib=%d actual_last_kib=%d actual_min_kib=%d actual_max_kib=%d",
               actual_first, actual_last, actual_min, actual_max
    printf " min_margin_kib=%d need_unmet=%d at_max=%d last_reasons=%s\n", min_margin,
           need_unmet, at_max, reasons == "" ? "-" : reasons
}

# check_rounds.awk - the invariants of DESIGN.md, checked on every round memsched-agent recorded
# (--record CSV), independently of the agent's own checker.
#
#   awk -F, -v floor_kib=262144 -v min_unused_kib=102400 -v excess_kib=307200 \
#       -v step_kib=65536 [-v signal=unused|usable] -f csvcols.awk -f check_rounds.awk ROUNDS.csv
#
# Columns, found by name (csvcols.awk; more columns after them are fine): t_ms,round,vm,name,
#   reason,old_target_kib,new_target_kib,actual_kib,max_kib,unused_kib,usable_kib,stats_age_ms,
#   stuck,vm_kib,host_kib,host_total_kib,host_available_kib,host_min_unused_kib,applied
#   (old_target = what the balloon was heading to before the round). The guest's demand signal
#   is the column the agent decided on: unused_kib (demand_signal = unused, the default) or
#   usable_kib (signal=usable).
# The host floor of each round is the one the agent logged (host_min_unused_kib). The e2e guests
# set no per-VM min/max overrides, so a VM's floor is floor_kib and its max is max_kib.
#
# Per VM and round:
#   touched    only grow and shrink change a target; everything else (in band, at max, no stats,
#              unmanaged, ...) leaves it as it was
#   grow       only a needy VM grows: its signal less its look-ahead (lookahead_kib, what the
#              agent's `predictive` policy expects it to use before a grant arrives; 0 when the
#              recording has no such column) below min; never above its max; what it gets is
#              what the round says it got (from VMs + from the host). An old recording without
#              lookahead_kib, with -v predictive=1, is not checked for the signal < min part
#   shrink     only a VM whose signal less look-ahead is above the excess threshold, not stuck,
#              shrinks; never below its floor; at most step below its balloon; keeps >= min
#              unused (less look-ahead); gives what the round says
#   applied    every recorded round's plan was applied
# Per round:
#   balance    KiB given by VMs = KiB taken from VMs
#   host floor host grants <= host available - grows in flight - untouched - host_min_unused
#              (none when that is negative); in flight = sum over VMs of old_target - actual
#              when positive; untouched = sum of untouched_kib (memory granted that the guests
#              have not touched yet, which the host still owes; 0 without the column)
#   order      no grant from the host while a VM returns memory to the host (needy VMs are fed
#              from donors first, the host only when the donors are used up)
# Prints one line per broken rule, then a summary; exits 1 when anything broke, 2 on a bad file.

function fail(what) {
    violations++
    if (violations <= 50)
        printf "check: round %s t_ms=%s vm=%s: %s\n", cur_round, cur_t, name, what
}

function end_round(    budget) {
    if (cur_round == "")
        return
    rounds++
    if (given_by_vms != taken_from_vms) {
        name = "-"
        fail(sprintf("balance: VMs gave %d KiB, VMs took %d KiB", given_by_vms, taken_from_vms))
    }
    budget = avail - inflight - untouched - host_min
    if (host_granted > 0 && host_granted > budget) {
        name = "-"
        fail(sprintf("host floor: granted %d KiB from the host, budget %d KiB (available %d - in flight %d - untouched %d - floor %d)",
                     host_granted, budget, avail, inflight, untouched, host_min))
    }
    if (host_granted > 0 && host_reclaimed > 0) {
        name = "-"
        fail(sprintf("order: granted %d KiB from the host while %d KiB went back to it",
                     host_granted, host_reclaimed))
    }
    margin = avail - host_min
    if (rounds == 1 || margin < min_margin)
        min_margin = margin
    given_by_vms = taken_from_vms = host_granted = host_reclaimed = inflight = untouched = 0
}

BEGIN {
    if (floor_kib == "" || min_unused_kib == "" || excess_kib == "" || step_kib == "") {
        print "check_rounds.awk: set floor_kib, min_unused_kib, excess_kib and step_kib" > "/dev/stderr"
        bad = 1
        exit 2
    }
    cur_round = ""
}

FNR == 1 {
    if (CSV_BAD) {
        print "check_rounds.awk: " CSV_WHY > "/dev/stderr"
        bad = 1
        exit 2
    }
    sig = C[signal == "usable" ? "usable_kib" : "unused_kib"]
    # Recordings that carry them: what the agent expected each VM to use before a grant could
    # arrive (its look-ahead), and what the host owed as memory granted but not yet touched.
    la_col = ("lookahead_kib" in C) ? C["lookahead_kib"] : 0
    ut_col = ("untouched_kib" in C) ? C["untouched_kib"] : 0
    next
}

NF != HNF {
    print "check_rounds.awk: line " NR " has " NF " fields, its header " HNF > "/dev/stderr"
    bad = 1
    exit 2
}

{
    if ($C["round"] != cur_round) {
        end_round()
        cur_round = $C["round"]
    }
    cur_t = $C["t_ms"]
    name = vm_name()
    reason = $C["reason"]
    old = $C["old_target_kib"] + 0; new = $C["new_target_kib"] + 0
    actual = $C["actual_kib"] + 0; max = $C["max_kib"] + 0
    has_unused = $sig != ""
    unused = $sig + 0
    lookahead = la_col ? $la_col + 0 : 0
    untouched += ut_col ? $ut_col + 0 : 0
    outlook = unused - lookahead
    stuck = $C["stuck"] + 0; vm_kib = $C["vm_kib"] + 0; host_kib = $C["host_kib"] + 0
    avail = $C["host_available_kib"] + 0; host_min = $C["host_min_unused_kib"] + 0
    rows++
    if (old > actual)
        inflight += old - actual
    if ($C["applied"] != 1)
        fail("applied: the round's plan was not applied")

    if (reason != "grow" && reason != "shrink") {
        if (new != old)
            fail(sprintf("touched: reason %s but target %d -> %d KiB", reason, old, new))
        next
    }
    moved = vm_kib + host_kib
    if (!has_unused) {
        fail(sprintf("%s without guest stats", reason))
        next
    }
    if (reason == "grow") {
        grows++
        base = old > actual ? old : actual
        if (outlook >= min_unused_kib && !(predictive && !la_col))
            fail(sprintf("grow: unused %d KiB less look-ahead %d is not below the minimum %d",
                         unused, lookahead, min_unused_kib))
        if (new > max)
            fail(sprintf("grow: target %d KiB above max %d", new, max))
        if (new - base != moved)
            fail(sprintf("grow: target %d - base %d != given %d (vms %d + host %d)",
                         new, base, moved, vm_kib, host_kib))
        taken_from_vms += vm_kib
        host_granted += host_kib
        granted_kib += moved
    } else {
        shrinks++
        base = old < actual ? old : actual
        released = actual > new ? actual - new : 0
        if (outlook <= excess_kib)
            fail(sprintf("shrink: unused %d KiB less look-ahead %d is not above the excess threshold %d",
                         unused, lookahead, excess_kib))
        if (stuck)
            fail("shrink: a stuck balloon was counted on as a donor")
        if (new < floor_kib)
            fail(sprintf("shrink: target %d KiB below the floor %d", new, floor_kib))
        if (released > step_kib)
            fail(sprintf("shrink: %d KiB below the balloon, step is %d", released, step_kib))
        if (outlook - released < min_unused_kib)
            fail(sprintf("shrink: leaves %d KiB unused (less look-ahead), minimum %d",
                         outlook - released, min_unused_kib))
        if (base - new != moved)
            fail(sprintf("shrink: base %d - target %d != given %d (vms %d + host %d)",
                         base, new, moved, vm_kib, host_kib))
        given_by_vms += vm_kib
        host_reclaimed += host_kib
        reclaimed_kib += host_kib
    }
}

END {
    if (bad)
        exit 2
    end_round()
    printf "check: %d rounds, %d VM rows, %d grows (%d KiB), %d shrinks (%d KiB to the host), " \
           "min host margin %d KiB, %d violations\n",
           rounds, rows, grows, granted_kib, shrinks, reclaimed_kib, min_margin, violations
    if (rounds == 0) {
        print "check: no rounds recorded"
        exit 1
    }
    exit violations ? 1 : 0
}

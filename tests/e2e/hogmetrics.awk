# hogmetrics.awk - what one hog's guest went through, from memsched-agent's --record CSV.
#
#   awk -F, -v vm=NAME -v t0=HOG_START_MS [-v t_free=FREE_MS] -v min_kib=102400 \
#       [-v signal=unused|usable] -f csvcols.awk -f hogmetrics.awk ROUNDS.csv
#
# Times are agent time (the CSV's t_ms: ms since the agent started; a hog started before the
# agent has a negative t0). The hog is active from t0 to t_free (or, without t_free, to the
# last recorded round). Columns by name (csvcols.awk): t_ms, name, reason, actual_kib,
# stats_age_ms, vm_kib, host_kib and the signal's column (unused_kib, or usable_kib with
# signal=usable: the one the agent decided on). Prints key=value pairs on one line:
#   pressure_ms      how long, while the hog was active, the guest's signal was below min_kib
#                    (vm_min_unused): each guest stats sample (taken at t_ms - stats_age_ms;
#                    a sample seen again in a later round counts once) holds until the next
#   first_grant_ms   from t0 to the first round that grew the VM (-1: none)
#   granted_kib      what the VM's grows gave it while the hog was active
#   returned_kib     how far the balloon (actual_kib) came down after t_free: from its highest
#                    (a grant in flight at the free still arrives) to its lowest after that
#   giveback90_ms    from t_free to the first round whose balloon had come down 90 % of
#                    returned_kib (-1: nothing returned; empty without t_free). Not 90 % of
#                    granted_kib: a guest keeps up to vm_excess_unused free by design, so what it
#                    returns is less than it was granted when it started below that (a guest
#                    from 300 MiB returns ~90 % of its grant at most); granted vs returned says
#                    how much came back, this says how fast
function flush_sample(upto,    a, b) {
    if (have_s && s_below) {
        a = s_t > w0 ? s_t : w0
        b = upto < w1 ? upto : w1
        if (b > a)
            pressure += b - a
    }
}

BEGIN {
    if (vm == "" || t0 == "" || min_kib == "") {
        print "hogmetrics.awk: set vm, t0 and min_kib" > "/dev/stderr"
        bad = 1
        exit 2
    }
    w0 = t0 + 0
    first_grant = -1
    peak = -1
    back_at = -1
}

FNR == 1 && CSV_BAD {
    print "hogmetrics.awk: " CSV_WHY > "/dev/stderr"
    bad = 1
    exit 2
}

FNR == 1 {
    sig = C[signal == "usable" ? "usable_kib" : "unused_kib"]
    next
}

NF != HNF || vm_name() != vm { next }

{
    t = $C["t_ms"] + 0
    last_t = t
    rows[++n] = t
    row_reason[n] = $C["reason"]
    row_actual[n] = $C["actual_kib"] + 0
    row_given[n] = $C["vm_kib"] + $C["host_kib"]
    age = col("stats_age_ms")
    if ($sig == "" || age == "")
        next
    st = t - age
    if (ns > 0 && st <= samples[ns])
        next # the same sample again (or an older one)
    samples[++ns] = st
    sample_below[ns] = ($sig + 0 < min_kib + 0)
}

END {
    if (bad)
        exit 2
    w1 = t_free != "" ? t_free + 0 : last_t
    for (i = 1; i <= ns; i++) {
        have_s = 1
        s_t = samples[i]
        s_below = sample_below[i]
        flush_sample(i < ns ? samples[i + 1] : w1)
    }
    for (i = 1; i <= n; i++) {
        if (rows[i] < w0)
            continue
        if (row_reason[i] == "grow" && (t_free == "" || rows[i] <= w1)) {
            if (first_grant < 0)
                first_grant = rows[i] - w0
            granted += row_given[i]
        }
    }
    if (t_free != "") {
        for (i = 1; i <= n; i++) {
            if (rows[i] < w1)
                continue
            if (row_actual[i] > peak) {
                peak = row_actual[i]
                peak_i = i
            }
        }
        for (i = peak_i; i <= n && peak >= 0; i++)
            if (peak - row_actual[i] > returned)
                returned = peak - row_actual[i]
        for (i = peak_i; i <= n && returned > 0; i++)
            if (peak - row_actual[i] >= 0.9 * returned) {
                back_at = rows[i] - w1
                break
            }
    }
    printf "pressure_ms=%d first_grant_ms=%d granted_kib=%d giveback90_ms=%s returned_kib=%d\n",
           pressure, first_grant, granted, t_free == "" ? "" : back_at, returned
}

# csvcols.awk - memsched-agent's --record CSV by column NAME, never by position: the agent may
# add columns (at the end of its header), and every script here must go on working.
#
#   awk -F, -f csvcols.awk -f SCRIPT.awk ROUNDS.csv      (or the text of this file prepended)
#
# On each file's header line (FNR == 1) it sets:
#   C[NAME]   the column of NAME (C["reason"] = 5 ...); a name not in the header is not in C
#   HNF       the header's number of fields: a row with another count is not a whole row (the
#             agent writing it while we read), and the scripts skip or refuse it
#   CSV_BAD   1 when the header lacks a column every script relies on (or is no header): the
#             scripts print CSV_WHY and stop
# and offers col(NAME) (the field, "" when there is no such column) and vm_name() (the name
# column without its quotes). The columns relied on are the agent's first nineteen:
#   t_ms round vm name reason old_target_kib new_target_kib actual_kib max_kib unused_kib
#   usable_kib stats_age_ms stuck vm_kib host_kib host_total_kib host_available_kib
#   host_min_unused_kib applied
FNR == 1 {
    split("", C)
    HNF = NF
    for (_cc_i = 1; _cc_i <= NF; _cc_i++)
        C[$_cc_i] = _cc_i
    CSV_BAD = 0
    CSV_WHY = ""
    _cc_n = split("t_ms round vm name reason old_target_kib new_target_kib actual_kib max_kib " \
                   "unused_kib usable_kib stats_age_ms stuck vm_kib host_kib host_total_kib " \
                   "host_available_kib host_min_unused_kib applied", _cc_need, " ")
    for (_cc_i = 1; _cc_i <= _cc_n; _cc_i++)
        if (!(_cc_need[_cc_i] in C)) {
            CSV_BAD = 1
            CSV_WHY = CSV_WHY " " _cc_need[_cc_i]
        }
    if (CSV_BAD)
        CSV_WHY = "not a memsched-agent --record file (no column" CSV_WHY "): " $0
}

function col(name) {
    return (name in C) ? $(C[name]) : ""
}

function vm_name(    n) {
    n = $(C["name"])
    gsub(/"/, "", n)
    return n
}

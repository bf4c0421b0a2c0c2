#!/usr/bin/env bash
# run.sh --agent BIN --hog BIN --chan BIN --out DIR [--only SCENARIO,...]
#
# memsched end to end: a private libvirtd, four QEMU guests (TCG; max 1 GiB, 512 MiB at start,
# each with a memory hog driven over virtio-serial), memsched-agent driving their balloons.
# The guests boot once; the scenarios run on them in this order, each with a fresh agent, its
# own config and its own recording, and (but the first) from a known state that the harness
# sets with libvirt before the agent starts (guests_reset: balloon sizes, hogs freed):
#   no_driver        g4 boots without virtio_balloon: reported unmanaged, never touched, even
#                    while it hogs; after it loads the driver it is managed like the rest
#   all_hog          every guest hogs on a host with ~384 MiB to spare: the host gives it out
#                    and keeps its floor, nobody is shrunk below its floor
#   one_hog          g1 hogs while g2-g4 sit idle with memory to spare: g1 is fed from them,
#                    then from the host, up to its max or the host floor; when g1 frees, the
#                    memory goes back to the host
#   demand_moves     g1 hogs until the host floor, g2 starts hogging too, then g1 frees: g1's
#                    memory goes to g2
#   libvirtd_restart g3 hogs slowly while libvirtd is restarted, then killed and started: the
#                    agent logs each outage and recovery once and goes on granting
# Each scenario is checked against libvirt's view (domstats, the domain's current memory), the
# guests' consoles (what each hog held; no OOM kill) and the invariants on every recorded round
# (check_rounds.awk), and plotted. Artifacts: DIR/SCENARIO/{rounds.csv,agent.log,events.txt,
# check.txt,result.txt,plot.png,domstats-*.txt}, DIR/guests/ (consoles, domain XML, QEMU
# logs), DIR/summary.txt, DIR/run.log.
#
# Exits 0 when everything passed, 1 when anything failed, 77 (skipped, saying why) without
# root, QEMU, libvirtd or the guest kernel - unless CI=true, where that is a failure.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AGENT="" HOG="" CHAN="" OUT="" ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
    --agent) AGENT=$2; shift 2 ;;
    --hog) HOG=$2; shift 2 ;;
    --chan) CHAN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: run.sh --agent BIN --hog BIN --chan BIN --out DIR [--only S1,S2]" >&2; exit 2 ;;
    esac
done
[ -n "$AGENT" ] && [ -n "$HOG" ] && [ -n "$CHAN" ] && [ -n "$OUT" ] || {
    echo "usage: run.sh --agent BIN --hog BIN --chan BIN --out DIR [--only S1,S2]" >&2
    exit 2
}

abspath() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
mkdir -p "$OUT"
AGENT=$(abspath "$AGENT") HOG=$(abspath "$HOG") CHAN=$(abspath "$CHAN") OUT=$(abspath "$OUT")

# shellcheck source=../lib/libvirtd.sh
. "$HERE/../lib/libvirtd.sh"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

E2E_MAX_MIB=1024
E2E_CUR_MIB=512
E2E_SCARCE_MIB=${MEMSCHED_E2E_SCARCE_MIB:-384} # what a "scarce" host can give
E2E_FLOOR_TOL_MIB=${MEMSCHED_E2E_FLOOR_TOL_MIB:-128} # how far under the floor the host may be seen (README)
E2E_VIRT_TYPE=${MEMSCHED_E2E_VIRT_TYPE:-qemu}  # qemu = TCG; kvm where it works
E2E_QEMU=/usr/bin/qemu-system-x86_64
E2E_DEADLINE=$((SECONDS + ${MEMSCHED_E2E_BUDGET_S:-780}))

skip_or_fail() {
    if [ "${CI:-}" = "true" ]; then
        echo "e2e: FAIL: $* (CI=true: the e2e tests must run here)"
        exit 1
    fi
    echo "SKIP: $*"
    exit 77
}

# ---- prerequisites ----
[ "$(id -u)" = 0 ] || skip_or_fail "e2e needs root (a private libvirtd run as nobody, QEMU guests)"
[ -x "$E2E_QEMU" ] || skip_or_fail "no QEMU ($E2E_QEMU; Debian: qemu-system-x86, see tests/e2e/install-deps.sh)"
command -v virsh >/dev/null || skip_or_fail "no virsh (Debian: libvirt-clients)"
libvirtd_available || skip_or_fail "$LIBVIRTD_WHY"
ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so >/dev/null 2>&1 ||
    skip_or_fail "libvirtd has no QEMU driver (Debian: libvirt-daemon-driver-qemu)"
[ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1 ||
    skip_or_fail "no static /bin/busybox for the guests' initramfs (Debian: busybox-static)"
if ! command -v gnuplot >/dev/null; then
    [ "${CI:-}" = "true" ] && skip_or_fail "no gnuplot for the plots (Debian: gnuplot-nox)"
    echo "e2e: no gnuplot: the run goes on without plots"
fi

# Artifacts from an earlier run go; the kernel cache stays.
mkdir -p "$OUT"
find "$OUT" -mindepth 1 -maxdepth 1 ! -name cache -exec rm -rf {} +
exec > >(tee "$OUT/run.log") 2>&1
T_START=$SECONDS

GUEST_DIR="$OUT/guest"
say "preparing the guest kernel and initramfs"
bash "$HERE/prepare.sh" "$OUT/cache" "$HOG" "$GUEST_DIR"
case $? in
0) ;;
3) skip_or_fail "could not fetch the guest kernel (apt-get download linux-image-cloud-amd64)" ;;
*) echo "e2e: FAIL: could not build the guests' kernel and initramfs"; exit 1 ;;
esac

reap_stale
# libvirtd.sh would stop the daemon on EXIT before our teardown has destroyed the guests; our
# teardown stops it itself, in the right order.
_LIBVIRTD_TRAPPED=1
trap e2e_teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

# ---- scenario bookkeeping ----
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"

scenario_begin() {
    SCEN=$1
    SCEN_DIR="$OUT/$1"
    SCEN_T0=$SECONDS
    SCEN_FAIL0=$FAILURES
    SCEN_HOST_MIN_MIB=200 # the default; scenarios with a scarce host set theirs
    rm -rf "$SCEN_DIR"
    mkdir -p "$SCEN_DIR"
    : >"$SCEN_DIR/events.txt"
    say "==== $1: $2"
}

# scenario_end "summary fields": stop the agent, check every round, plot, one summary line.
scenario_end() {
    agent_stop
    local oom
    if oom=$(consoles_oom); then ok "no OOM kill, no hog died in any guest"; else fail "guest OOM or hog death: $oom"; fi
    check_rounds
    check_floor
    plot_scenario "$SCEN: $SCEN_TITLE"
    local verdict=PASS
    [ "$FAILURES" -gt "$SCEN_FAIL0" ] && verdict=FAIL
    local line
    line=$(printf '%-17s %s  %3ds  %s; %s; %d rounds' "$SCEN" "$verdict" $((SECONDS - SCEN_T0)) "$*" \
        "$FLOOR_TEXT" "$(mget rounds "$(metrics "" 0)")")
    echo "$line" >>"$SUMMARY"
    say "$line"
    SCEN=""
    SCEN_DIR=""
}

# The host floor, from libvirt's view (guest_margin_kib): the least the host had to spare above
# host_min_unused, where memory other work on the machine took is not held against memsched and
# memory it freed may be given away. Sets FLOOR_TEXT.
check_floor() {
    local least seen guests others
    read -r least seen guests others <<<"$(guest_margin_kib "$SCEN_HOST_MIN_MIB")"
    FLOOR_TEXT="least spare above the floor $(mib "$least") MiB (as the agent saw it $(mib "$seen"), by the guests' growth $(mib "$guests")"
    if [ "$others" -gt $((32 * 1024)) ]; then
        FLOOR_TEXT+="; up to $(mib "$others") MiB less available than the guests explain"
        say "NOTE [$SCEN]: the host's available memory fell up to $(mib "$others") MiB more than the guests' QEMU processes grew (other work on this machine, or memory a balloon gave back that the host kernel has not freed yet: guest RAM in transparent huge pages is freed when the huge page is split, later): the agent saw a host scarcer than planned"
    fi
    FLOOR_TEXT+=")"
    if [ "$least" -ge $((-E2E_FLOOR_TOL_MIB * 1024)) ]; then
        ok "host floor held: $FLOOR_TEXT; tolerance $E2E_FLOOR_TOL_MIB MiB"
        FLOOR_TEXT="floor held: $FLOOR_TEXT"
    else
        fail "host floor broken: $FLOOR_TEXT; tolerance $E2E_FLOOR_TOL_MIB MiB"
        FLOOR_TEXT="floor BROKEN: $FLOOR_TEXT"
    fi
}

first_grant_text() {
    # first_grant_text METRICS
    local w r
    w=$(mget first_grow_wait_ms "$1")
    r=$(mget first_grow_rounds "$1")
    if [ "$w" -lt 0 ]; then echo "no grant"; else echo "first grant after $r rounds, $(awk -v w="$w" 'BEGIN{printf "%.1f", w/1000}') s"; fi
}

hogs_up() {
    local g
    for g in "${E2E_GUESTS[@]}"; do
        CMD_ID=$((CMD_ID + 1))
        "$CHAN" "$RUN/$g.sock" "$CMD_ID" status --timeout-ms 1000 >/dev/null 2>&1 || return 1
    done
}

all_stats() {
    local g
    for g in "$@"; do has_stats "$g" || return 1; done
}

grep_log() { grep -q -- "$1" "$SCEN_DIR/agent.log" 2>/dev/null; }

# rounds_after MS N: at least N complete rounds recorded at or after agent time MS.
rounds_after() { [ "$(mget rounds "$(metrics "" "$1")")" -ge "$2" ]; }

# The host has nothing left to give: its budget (available - in flight - floor) in the last
# round is under 32 MiB and every guest named needed memory in each of the last 2 rounds.
host_spent() {
    local g
    for g in "$@"; do
        reason_streak "$g" 'need_unmet|grow|in_flight' 3 && reason_streak "$g" need_unmet 1 || return 1
    done
    rawk -v n="${#E2E_GUESTS[@]}" 'FNR == 1 || NF != HNF { next }
        { r = $C["round"]; c[r]++; o = $C["old_target_kib"] + 0; a = $C["actual_kib"] + 0
          if (o > a) inf[r] += o - a
          b[r] = $C["host_available_kib"] - $C["host_min_unused_kib"]; if (r + 0 > last) last = r + 0 }
        END { for (r = last; r > 0; r--) if (c[r] == n) { exit !(b[r] - inf[r] < 32 * 1024) } exit 1 }' \
        "$(csv)"
}

# hog_done G...: each guest's hog reached its limit (state=holding), or the guest its max.
hog_done() {
    local g
    for g in "$@"; do
        reason_streak "$g" at_max 2 && continue
        CMD_ID=$((CMD_ID + 1))
        [[ "$("$CHAN" "$RUN/$g.sock" "$CMD_ID" status --timeout-ms 2000 2>/dev/null)" == *state=holding* ]] || return 1
    done
}

# fed_all G...: the host is spent, or every hog has what it wanted (a host with more to spare
# than planned - other work on the machine freed memory - ends here).
fed_all() { host_spent "$@" || hog_done "$@"; }

# ======================================================================================
say "booting ${#E2E_GUESTS[@]} guests ($E2E_VIRT_TYPE, max $E2E_MAX_MIB MiB, current $E2E_CUR_MIB MiB)"
T_BOOT=$SECONDS
guests_boot || { fail "the guests did not start"; exit 1; }
wait_for "every guest's hog answering on its channel" 240 hogs_up || exit 1
# g4 boots without its balloon driver for no_driver, which loads it; without that scenario, now.
want no_driver || hog g4 balloon >/dev/null
BOOT_S=$((SECONDS - T_BOOT))
say "guests up in ${BOOT_S}s"

# ---- no_driver ----
if want no_driver; then
    scenario_begin no_driver "a guest without a balloon driver: reported unmanaged, never touched"
    SCEN_TITLE="g4 has no balloon driver (hogs 256 MiB), then loads it"
    g4_target0=$(dom_current_kib g4)
    agent_start
    wait_for "the first round" 60 rounds_done 1
    hog g4 hog 64 256 >/dev/null && event "g4 hogs 256 MiB"
    wait_for "g1-g3 reporting stats and every target settled" 120 \
        eval 'all_stats g1 g2 g3 && quiet 3 && rounds_done 10'
    domstats_save driverless
    m=$(metrics g4 0)
    rows_g4=$(rawk -v vm="$(dom g4)" 'FNR > 1 && NF == HNF && vm_name() == vm { c++ } END { print c + 0 }' "$(csv)")
    bad_g4=$(rawk -v vm="$(dom g4)" 'FNR > 1 && NF == HNF && vm_name() == vm &&
        ($C["reason"] != "no_stats" || $C["old_target_kib"] != $C["new_target_kib"]) { c++ } END { print c + 0 }' "$(csv)")
    check "g4 recorded as no_stats and untouched in all of its $rows_g4 rounds" "$rows_g4" -ge 10 -a "$bad_g4" -eq 0
    if grep_log "name=$(dom g4) event=appeared managed=no why=no_stats"; then
        ok "the agent reported g4: $(grep -o "name=$(dom g4) event=appeared.*" "$SCEN_DIR/agent.log" | head -n1)"
    else
        fail "the agent did not report g4 as appeared managed=no why=no_stats"
    fi
    if grep -q "name=$(dom g4) decision=" "$SCEN_DIR/agent.log"; then fail "the agent decided something for g4"; else ok "no decision for g4"; fi
    g4_target1=$(dom_current_kib g4)
    g4_balloon=$(domstats_field g4 balloon.current)
    check "libvirt: g4's target never set (current memory $g4_target0 -> $g4_target1 KiB)" "$g4_target0" = "$g4_target1"
    check "libvirt: g4's balloon untouched at its max ($g4_balloon KiB)" "${g4_balloon:-0}" -eq $((E2E_MAX_MIB * 1024))
    held4=$(console_max_held g4 0)
    check "g4's hog held ${held4} MiB with no balloon driver" "$held4" -ge 256
    idle=$(metrics "" 0)
    # Now the driver: g4 becomes an ordinary managed guest for the scenarios after this one.
    hog g4 free >/dev/null
    hog g4 balloon >/dev/null && event "g4 loads virtio_balloon"
    wait_for "the agent managing g4" 60 grep_log "name=$(dom g4) event=managed"
    ok "$(grep -o "name=$(dom g4) event=managed.*" "$SCEN_DIR/agent.log" | head -n1)"
    wait_for "every target settled" 60 quiet 3
    domstats_save end
    scenario_end "g4 untouched in $rows_g4 rounds; idle guests returned $(mib "$(mget to_host_kib "$idle")") MiB to the host"
fi

# ---- all_hog ----
if want all_hog; then
    scenario_begin all_hog "every guest hogs; the host has ~${E2E_SCARCE_MIB} MiB to give"
    guests_reset 352 "${E2E_GUESTS[@]}"
    avail=$(host_available_mib)
    host_min=$((avail - E2E_SCARCE_MIB))
    SCEN_HOST_MIN_MIB=$host_min
    SCEN_TITLE="all guests hog; host floor ${host_min} MiB (${E2E_SCARCE_MIB} MiB to give)"
    agent_start "host_min_unused_mib = $host_min"
    wait_for "two rounds" 30 rounds_done 2
    domstats_save before
    declare -A mark
    for g in "${E2E_GUESTS[@]}"; do mark[$g]=$(console_size "$g"); done
    t_hog=$(agent_ms)
    for g in "${E2E_GUESTS[@]}"; do hog "$g" hog 48 800 >/dev/null; done
    event "all hog (48 MiB/s)"
    wait_for "the host's spare given out" 120 fed_all g1 g2 g3 g4
    domstats_save end
    m=$(metrics "" "$t_hog")
    check "the host gave memory ($(mib "$(mget from_host_kib "$m")") MiB)" "$(mget from_host_kib "$m")" -gt 0
    held=""
    for g in "${E2E_GUESTS[@]}"; do
        mg=$(metrics "$g" "$t_hog")
        say "$g: $(mget grows "$mg") grows, $(mib "$(mget granted_kib "$mg")") MiB"
        check "$g never below the floor (least balloon $(mib "$(mget actual_min_kib "$mg")") MiB)" \
            "$(mget actual_min_kib "$mg")" -ge $((E2E_FLOOR_MIB * 1024))
        cur=$(domstats_field "$g" balloon.current)
        check "libvirt: $g's balloon $(mib "$cur") MiB, at or above the floor" "${cur:-0}" -ge $((E2E_FLOOR_MIB * 1024))
        h=$(console_max_held "$g" "${mark[$g]}")
        check "$g's hog held $h MiB" "$h" -gt 0
        held+="$g ${h}, "
    done
    scenario_end "granted $(mib "$(mget granted_kib "$m")") MiB (host $(mib "$(mget from_host_kib "$m")"), VMs $(mib "$(mget from_vms_kib "$m")")); $(first_grant_text "$m"); hogs held (MiB) ${held%, }"
fi

# ---- one_hog ----
# The idle guests start at 640 MiB, ~250 MiB above what they need, which they return at most
# 64 MiB a round (to the host while nobody needs it); g1 starts its hog with the agent and is
# short within two rounds, so it is fed from them while they last, and then from the host - g1
# needs more (up to its max, 1024 MiB) than they have.
if want one_hog; then
    scenario_begin one_hog "g1 hogs: fed from the idle guests, then the host; frees: back to the host"
    guests_reset 640 g1=352 g2 g3 g4
    avail=$(host_available_mib)
    host_min=$((avail - E2E_SCARCE_MIB))
    SCEN_HOST_MIN_MIB=$host_min
    SCEN_TITLE="g1 hogs (128 MiB/s), g2-g4 idle at 640 MiB; host floor ${host_min} MiB (${E2E_SCARCE_MIB} MiB to give)"
    mark1=$(console_size g1)
    domstats_save before
    b1=$(domstats_field g1 balloon.current)
    hog g1 hog 128 1000 >/dev/null
    hog_wall=$(now_ms)
    agent_start "host_min_unused_mib = $host_min"
    t_hog=$((hog_wall - AGENT_T0))
    event "g1 hogs (128 MiB/s)"
    wait_for "g1 at its max or the host at its floor" 120 fed_all g1
    domstats_save fed
    m=$(metrics g1 "$t_hog")
    b1_fed=$(domstats_field g1 balloon.current)
    check "g1 fed from the idle guests ($(mib "$(mget from_vms_kib "$m")") MiB)" "$(mget from_vms_kib "$m")" -gt 0
    check "g1 fed from the host ($(mib "$(mget from_host_kib "$m")") MiB)" "$(mget from_host_kib "$m")" -gt 0
    reached="the host floor"
    reason_streak g1 at_max 2 && reached="its max"
    hog_done g1 && ! reason_streak g1 at_max 2 && reached="its hog's limit (the host had more)"
    check "libvirt: g1's balloon $(mib "$b1") -> $(mib "$b1_fed") MiB ($reached)" "${b1_fed:-0}" -gt "${b1:-0}"
    held1=$(console_max_held g1 "$mark1")
    hog g1 free >/dev/null
    event "g1 frees"
    t_free=$(agent_ms)
    wait_for "g1's memory back with the host" 90 eval 'rounds_after "$t_free" 3 && reason_streak g1 in_band 3'
    domstats_save end
    r=$(metrics g1 "$t_free")
    b1_end=$(domstats_field g1 balloon.current)
    check "g1 returned $(mib "$(mget to_host_kib "$r")") MiB to the host" "$(mget to_host_kib "$r")" -ge $((128 * 1024))
    check "g1 gave only to the host after freeing" "$(mget to_vms_kib "$r")" -eq 0
    check "libvirt: g1's balloon $(mib "$b1_fed") -> $(mib "$b1_end") MiB" "${b1_end:-0}" -lt "${b1_fed:-0}"
    check "g1's hog held ${held1} MiB" "$held1" -gt 0
    scenario_end "g1 +$(mib "$(mget granted_kib "$m")") MiB (VMs $(mib "$(mget from_vms_kib "$m")"), host $(mib "$(mget from_host_kib "$m")")) up to $reached, balloon $(mib "$b1") -> $(mib "$b1_fed") MiB; then returned $(mib "$(mget to_host_kib "$r")") MiB to the host; $(first_grant_text "$m"); g1's hog held ${held1} MiB"
fi

# ---- demand_moves ----
# The host has 256 MiB to give. g1 hogs 500 MiB and takes them; then g2 starts a hog too and,
# once it has used its own free memory, asks with nothing left to give it; then g1 frees. Needy
# VMs take from donors first, so g1's memory goes to g2. The balloon takes 1-2 rounds to reach
# a target under TCG, and the scheduler never counts on memory that has not arrived: while g1's
# last shrink is in flight it gives only what is new, and in a round when g2's last grow is in
# flight (so g2 asks for nothing) g1's release goes to the host, from which g2 takes it the next
# round. So what is asserted: both balloons moved (libvirt), at least a step's worth went
# straight from g1 to g2, and g2 got no more than g1 gave back plus what the host had spare.
# (The host is at its floor here: if other work on the machine takes memory, the host is under
# pressure and nothing is granted at all - DESIGN step 6 - which the summary would show.)
if want demand_moves; then
    scenario_begin demand_moves "demand moves from g1 to g2: the memory follows"
    guests_reset 352 "${E2E_GUESTS[@]}"
    avail=$(host_available_mib)
    host_min=$((avail - 256))
    SCEN_HOST_MIN_MIB=$host_min
    SCEN_TITLE="demand moves from g1 to g2; host floor ${host_min} MiB (256 MiB to give)"
    agent_start "host_min_unused_mib = $host_min"
    wait_for "two rounds" 30 rounds_done 2
    mark1=$(console_size g1)
    mark2=$(console_size g2)
    t_a=$(agent_ms)
    hog g1 hog 64 500 >/dev/null && event "g1 hogs (64 MiB/s)"
    wait_for "g1 fed until the host floor" 90 fed_all g1
    ma=$(metrics g1 "$t_a")
    hog g2 hog 64 400 >/dev/null && event "g2 hogs (64 MiB/s)"
    wait_for "g2 short, with nothing left to give it" 90 fed_all g2
    domstats_save g1-fed
    b1=$(domstats_field g1 balloon.current)
    b2=$(domstats_field g2 balloon.current)
    held1=$(console_max_held g1 "$mark1")
    t_b=$(agent_ms)
    spare_b=$(rawk 'FNR > 1 && NF == HNF { r = $C["round"]; o = $C["old_target_kib"] + 0; a = $C["actual_kib"] + 0
            if (o > a) inf[r] += o - a; b[r] = $C["host_available_kib"] - $C["host_min_unused_kib"]; last = r }
        END { print b[last] - inf[last] }' "$(csv)")
    hog g1 free >/dev/null && event "g1 frees"
    wait_for "g1 drained and g2 fed" 90 eval 'rounds_after "$t_b" 4 && reason_streak g1 in_band 2 && fed_all g2'
    domstats_save end
    b1_end=$(domstats_field g1 balloon.current)
    b2_end=$(domstats_field g2 balloon.current)
    m2=$(metrics g2 "$t_b")
    m1=$(metrics g1 "$t_b")
    moved_down=$((${b1:-0} - ${b1_end:-0}))
    moved_up=$((${b2_end:-0} - ${b2:-0}))
    check "libvirt: g1's balloon $(mib "$b1") -> $(mib "$b1_end") MiB ($(mib $((-moved_down))))" "$moved_down" -ge $((128 * 1024))
    check "libvirt: g2's balloon $(mib "$b2") -> $(mib "$b2_end") MiB (+$(mib $moved_up))" "$moved_up" -ge $((E2E_STEP_MIB * 1024))
    n_from_g1=$(grep -c "name=$(dom g2) decision=grow .*from=$(dom g1) " "$SCEN_DIR/agent.log")
    check "g2 fed straight from g1 ($(mib "$(mget from_vms_kib "$m2")") MiB; the agent logged $n_from_g1 grows of g2 from g1)" \
        "$(mget from_vms_kib "$m2")" -ge $((E2E_STEP_MIB * 1024)) -a "$n_from_g1" -ge 1
    limit=$(($(mget released_kib "$m1") + (spare_b > 0 ? spare_b : 0) + E2E_FLOOR_TOL_MIB * 1024))
    check "g2 got $(mib "$(mget granted_kib "$m2")") MiB <= g1's $(mib "$(mget released_kib "$m1")") + the host's spare $(mib "$spare_b") (+$E2E_FLOOR_TOL_MIB)" \
        "$(mget granted_kib "$m2")" -le "$limit"
    held2=$(console_max_held g2 "$mark2")
    check "g1's hog held ${held1} MiB, g2's ${held2} MiB" "$held1" -gt 0 -a "$held2" -gt 0
    scenario_end "g1 +$(mib "$(mget granted_kib "$ma")") MiB from the host ($(first_grant_text "$ma")); after g1 freed, g1 $(mib $((-moved_down))) MiB, g2 +$(mib $moved_up) MiB ($(mib "$(mget from_vms_kib "$m2")") straight from g1, $(mib "$(mget from_host_kib "$m2")") via the host; first grant to g2 after g1 freed: $(first_grant_text "$m2")); hogs held g1 ${held1}, g2 ${held2} MiB"
fi

# ---- libvirtd_restart ----
# lost N / back N: the agent logged N lost connections / N reconnections.
lost() { [ "$(grep -c 'event=connection_lost' "$SCEN_DIR/agent.log")" -ge "$1" ]; }
back() { [ "$(grep -c 'event=reconnected' "$SCEN_DIR/agent.log")" -ge "$1" ]; }
# granted_since G MS: G was grown in a round recorded at or after agent time MS.
granted_since() { [ "$(mget grows "$(metrics "$1" "$2")")" -ge 1 ]; }
if want libvirtd_restart; then
    scenario_begin libvirtd_restart "libvirtd restarted (and killed) while g3 hogs: the agent carries on"
    SCEN_TITLE="g3 hogs slowly; libvirtd restarted, then killed and started 3 s later"
    guests_reset 352 "${E2E_GUESTS[@]}"
    agent_start
    wait_for "two rounds" 30 rounds_done 2
    mark3=$(console_size g3)
    t_hog=$(agent_ms)
    hog g3 hog 16 2000 >/dev/null && event "g3 hogs (16 MiB/s)"
    wait_for "a grant to g3" 60 granted_since g3 "$t_hog"
    m=$(metrics g3 "$t_hog")
    agent_pid0=$AGENT_PID
    t_restart=$(agent_ms)
    event "libvirtd restart"
    libvirtd_restart || fail "libvirtd did not restart"
    wait_for "the agent back on the restarted libvirtd" 60 eval 'lost 1 && back 1'
    wait_for "a grant to g3 after the restart" 60 granted_since g3 "$t_restart"
    resumed1=$(mget first_grow_ms "$(metrics g3 "$t_restart")")
    t_kill=$(agent_ms)
    event "libvirtd killed"
    libvirtd_kill
    sleep 3
    event "libvirtd started"
    libvirtd_restart || fail "libvirtd did not start again"
    wait_for "the agent back on the new libvirtd" 60 eval 'lost 2 && back 2'
    wait_for "a grant to g3 after the kill" 60 granted_since g3 "$t_kill"
    resumed2=$(mget first_grow_ms "$(metrics g3 "$t_kill")")
    domstats_save end
    check "the agent kept running (pid $agent_pid0)" "$AGENT_PID" = "$agent_pid0" -a -d "/proc/$agent_pid0"
    n_lost=$(grep -c 'event=connection_lost' "$SCEN_DIR/agent.log")
    n_back=$(grep -c 'event=reconnected' "$SCEN_DIR/agent.log")
    check "each outage and each recovery logged once ($n_lost lost, $n_back reconnected, 2 outages)" "$n_lost" -eq 2 -a "$n_back" -eq 2
    n_down=$(grep -c 'event=hypervisor_unavailable.* failures=1$' "$SCEN_DIR/agent.log")
    n_up=$(grep -c 'event=hypervisor_recovered' "$SCEN_DIR/agent.log")
    check "rounds lost to an outage: logged $n_down times, recovered $n_up times" "$n_down" -eq "$n_up"
    missed=$(rawk 'FNR > 1 && NF == HNF { r[$C["round"]] = 1; if ($C["round"] + 0 > last) last = $C["round"] + 0 } END { for (i = 1; i <= last; i++) if (!(i in r)) n++; print n + 0 }' "$(csv)")
    running=$(vsh list --state-running --name | grep -c "^$E2E_PREFIX")
    check "libvirt: all ${#E2E_GUESTS[@]} guests still running ($running)" "$running" -eq "${#E2E_GUESTS[@]}"
    m_all=$(metrics g3 "$t_hog")
    held3=$(console_max_held g3 "$mark3")
    check "g3's hog held ${held3} MiB" "$held3" -gt 0
    hog g3 free >/dev/null
    sec() { awk -v ms="$1" 'BEGIN { printf "%.1f", ms / 1000 }'; }
    scenario_end "g3 +$(mib "$(mget granted_kib "$m_all")") MiB in $(mget grows "$m_all") grows ($(first_grant_text "$m")); across a restart (next grant $(sec $((resumed1 - t_restart))) s after it) and a kill (next grant $(sec $((resumed2 - t_kill))) s after it, $missed rounds missed); logged lost $n_lost, reconnected $n_back; g3's hog held ${held3} MiB"
fi

# ======================================================================================
TOTAL_S=$((SECONDS - T_START))
{
    echo "guests up in ${BOOT_S}s; whole run ${TOTAL_S}s ($E2E_VIRT_TYPE, $(nproc) cores)"
} >>"$SUMMARY"
echo
echo "==== e2e summary ($OUT/summary.txt)"
cat "$SUMMARY"
if [ "$FAILURES" -gt 0 ]; then
    echo "e2e: $FAILURES check(s) failed"
    exit 1
fi
echo "e2e: all scenarios passed"
exit 0

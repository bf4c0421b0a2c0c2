# shellcheck shell=bash
#
# lib.sh - the e2e harness: guests on a private libvirtd, their hogs, the agent, the recorded
# rounds, the checks and the teardown. Sourced by run.sh after tests/lib/libvirtd.sh.
#
# Set before use: OUT (artifacts), AGENT, HOG, CHAN, HERE (this directory), GUEST_DIR
# (vmlinuz + initramfs.cpio). guests_boot sets RUN (sockets, consoles: in the daemon's private
# directory, which its user owns) and URI (qemu+unix:///session?socket=...).
#
# Why a session daemon: tests/lib/libvirtd.sh runs libvirtd as `nobody` with private XDG
# directories, so it cannot collide with a system libvirtd (qemu:///system, /run/libvirt) or
# another test run; QEMU runs as nobody too. stdio_handler = "file" keeps virtlogd out of it.
#
# Teardown (e2e_teardown, on EXIT): the agent, every domain (destroy + undefine), any QEMU of
# ours still alive (by the pid files libvirt wrote and by our guest directory in its command
# line), then the daemon and its directory; artifacts are copied out first.

E2E_GUESTS=(g1 g2 g3 g4)
E2E_CACHE_GUEST=g3 # has a disk (sparse, E2E_DISK_MIB) to fill its page cache from (warm_cache)
E2E_DISK_MIB=1024  # more than the guest can cache even at its max: its MemFree stays low
E2E_PREFIX=memsched-e2e-
E2E_FLOOR_MIB=256
E2E_MIN_UNUSED_MIB=100
E2E_EXCESS_MIB=300
E2E_STEP_MIB=64
FAILURES=0
AGENT_PID=""
AGENT_T0=0
SCEN=""
SCEN_DIR=""
CMD_ID=0

now_ms() { date +%s%3N; }

say() { printf '%s e2e: %s\n' "$(date +%T)" "$*"; }

# A failed check: counted, printed, the run goes on (the exit status says it failed).
fail() {
    FAILURES=$((FAILURES + 1))
    printf '%s e2e: FAIL [%s] %s\n' "$(date +%T)" "${SCEN:-setup}" "$*"
    [ -n "$SCEN_DIR" ] && printf 'FAIL %s\n' "$*" >>"$SCEN_DIR/result.txt"
    return 1
}

ok() {
    printf '%s e2e: ok   [%s] %s\n' "$(date +%T)" "${SCEN:-setup}" "$*"
    [ -n "$SCEN_DIR" ] && printf 'ok   %s\n' "$*" >>"$SCEN_DIR/result.txt"
    return 0
}

# check DESCRIPTION TEST-ARGS...: ok or fail on a `test` expression.
check() {
    local what=$1
    shift
    if [ "$@" ]; then ok "$what"; else fail "$what (got: $*)"; fi
}

dom() { echo "$E2E_PREFIX$1"; }

vsh() { virsh -q -c "$URI" "$@"; }

# ---- the guests ----

guest_xml() {
    local g=$1 cur_mib=$2 max_mib=$3 cmdline=$4 disk=${5:-}
    cat <<EOF
<domain type='$E2E_VIRT_TYPE'>
  <name>$(dom "$g")</name>
  <memory unit='MiB'>$max_mib</memory>
  <currentMemory unit='MiB'>$cur_mib</currentMemory>
  <!-- no <memoryBacking><allocation mode='immediate'/>: like a production guest, a page is
       backed on the host only when the guest first touches it (guests_reset touches what a
       scenario starts with), so a grant costs the host only once the guest uses it -->
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$RUN/vmlinuz</kernel>
    <initrd>$RUN/initramfs.cpio</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 transparent_hugepage=never $cmdline</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>$E2E_QEMU</emulator>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='$RUN/$g.console'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <source mode='bind' path='$RUN/$g.sock'/>
      <target type='virtio' name='memsched.hog'/>
    </channel>
$disk    <memballoon model='virtio'/>
  </devices>
</domain>
EOF
}

# Start the daemon and define + start the guests; g4 boots without the balloon driver.
guests_boot() {
    local g extra disk
    libvirtd_start || return 1
    RUN="$LIBVIRTD_DIR/guests"
    URI="qemu+unix:///session?socket=$LIBVIRTD_SOCK"
    echo "$$" >"$LIBVIRTD_DIR/owner.pid"
    mkdir -p "$RUN" "$LIBVIRTD_DIR/config/libvirt"
    printf 'stdio_handler = "file"\n' >"$LIBVIRTD_DIR/config/libvirt/qemu.conf"
    cp "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initramfs.cpio" "$RUN/"
    chown -R nobody: "$RUN" "$LIBVIRTD_DIR/config"
    libvirtd_restart || return 1 # read the qemu.conf just written
    say "libvirtd pid $(cat "$LIBVIRTD_DIR/pid"), $URI"
    for g in "${E2E_GUESTS[@]}"; do
        extra="" disk=""
        [ "$g" = g4 ] && extra="memsched.balloon=0"
        if [ "$g" = "$E2E_CACHE_GUEST" ]; then
            truncate -s "${E2E_DISK_MIB}M" "$RUN/$g.img" && chown nobody: "$RUN/$g.img" || return 1
            disk="    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$RUN/$g.img'/>
      <target dev='vda' bus='virtio'/>
      <readonly/>
    </disk>
"
        fi
        guest_xml "$g" "$E2E_CUR_MIB" "$E2E_MAX_MIB" "$extra" "$disk" >"$RUN/$g.xml"
        vsh define "$RUN/$g.xml" >/dev/null || return 1
    done
    for g in "${E2E_GUESTS[@]}"; do
        vsh start "$(dom "$g")" >/dev/null || return 1
    done
    return 0
}

# hog G COMMAND...: run a command on G's hog; prints its answer. 1 when it failed.
hog() {
    local g=$1
    shift
    CMD_ID=$((CMD_ID + 1))
    local answer
    if ! answer=$("$CHAN" "$RUN/$g.sock" "$CMD_ID" "$@" --timeout-ms 20000 2>&1); then
        fail "hog $g $*: $answer"
        return 1
    fi
    echo "$answer"
}

# hog_start G RATE_MIB_S LIMIT_MIB: G's hog allocates at RATE up to LIMIT, an allocation failing
# when the guest's MemAvailable would fall below 24 MiB after it (hog.c). Noted in
# SCEN_DIR/hogs.txt ("G start WALL_MS CONSOLE_MARK RATE LIMIT", the time taken just before the
# command is sent) for the scenario's metrics (hog_metrics).
# The guest's MemAvailable just before (HOG_AVAIL0[G], MiB; empty when its hog did not answer)
# is what the hog could take without the agent (check_hog_fed).
declare -A HOG_AVAIL0=()
hog_start() {
    local g=$1 rate=$2 limit=$3 mark t
    HOG_AVAIL0[$g]=""
    hog_status "$g" && HOG_AVAIL0[$g]=$(mget avail_mib "$HOG_STATUS")
    mark=$(console_size "$g")
    t=$(now_ms)
    hog "$g" hog "$rate" "$limit" >/dev/null || return 1
    echo "$g start $t $mark $rate $limit" >>"$SCEN_DIR/hogs.txt"
}

# hog_free G: G's hog frees what it holds ("G free WALL_MS" in SCEN_DIR/hogs.txt).
hog_free() {
    local t
    t=$(now_ms)
    hog "$1" free >/dev/null || return 1
    echo "$1 free $t" >>"$SCEN_DIR/hogs.txt"
}

# hog_status G: G's hog status answer into HOG_STATUS ("ok id=... state=... waited_s=...
# failed_s=...": mget reads a key of it); 1 when it did not answer. Not to be called in a
# command substitution: the command id must advance in this shell (the hog answers a repeated
# id from its memory, without running the command: a free sent with an id a status in a
# subshell had used would be lost).
# shellcheck disable=SC2034 # HOG_STATUS is read by run.sh
HOG_STATUS=""
hog_status() {
    CMD_ID=$((CMD_ID + 1))
    # shellcheck disable=SC2034
    HOG_STATUS=$("$CHAN" "$RUN/$1.sock" "$CMD_ID" status --timeout-ms 5000 2>/dev/null)
}

# hog_console_counts G MARK CMD_MS GRANT_MS: from G's console after byte MARK, its hog's waited
# and failed seconds since the hog command there, in all and after agent time GRANT_MS (the
# command came at agent time CMD_MS; each line says, in cmd_ms, how long after it the counters
# moved; GRANT_MS < 0: no grant, every second counts as before it). Prints "W F W_AFTER F_AFTER".
hog_console_counts() {
    tail -c +"$(($2 + 1))" "$RUN/$1.console" 2>/dev/null | tr -d '\r' |
        awk -v t_cmd="$3" -v t_grant="$4" '
            /^hog: .*event=hog/ { if (started) exit; started = 1 }
            !started || !/^hog: t_ms=/ { next }
            { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
              late = t_grant >= 0 && t_cmd + v["cmd_ms"] > t_grant + 0
              nw = v["waited_s"] + 0; nf = v["failed_s"] + 0
              if (nw > w) { if (late) wa += nw - w; w = nw }
              if (nf > f) { if (late) fa += nf - f; f = nf } }
            END { print w + 0, f + 0, wa + 0, fa + 0 }'
}

# set_latency: "N MEDIAN P95" (ms, nearest rank) of the stats->set latency over the scenario's
# grows: each grow row's stats_age_ms, the age of the guest stats sample that showed the need
# when the round planned the grow (the balloon is set right after, in the same round); "0 - -"
# without grows. stats_age_ms counts from libvirt's balloon.last-update, which has whole
# seconds: it reads 0-1000 ms more than the sample's true age. MEMSCHED_E2E_LATENCY_COLUMN names
# another column of the CSV to use instead (an agent that stamps a sample's arrival itself).
set_latency() {
    rawk -v c="${MEMSCHED_E2E_LATENCY_COLUMN:-stats_age_ms}" 'FNR == 1 || NF != HNF { next }
          $C["reason"] == "grow" && col(c) != "" { print col(c) + 0 }' \
        "$(csv)" 2>/dev/null | sort -n |
        awk '{ v[NR] = $1 }
             END { if (NR == 0) { print "0 - -"; exit }
                   m = int((NR + 1) / 2); p = int(0.95 * NR); if (p < 0.95 * NR) p++
                   print NR, v[m], v[p] }'
}

# hog_metrics G T0_MS [TFREE_MS]: hogmetrics.awk's key=value line for G's hog, active from agent
# time T0_MS to TFREE_MS (or the end of the recording), judged on the signal the agent used.
hog_metrics() {
    awk -F, -v vm="$(dom "$1")" -v t0="$2" -v t_free="${3:-}" -v min_kib="$AGENT_MIN_KIB" \
        -v signal="$AGENT_SIGNAL" -f "$HERE/csvcols.awk" -f "$HERE/hogmetrics.awk" "$(csv)"
}

# guests_reset SIZE_MIB G|G=MIB...: a known start for a scenario (no agent runs in between):
# each guest's hog freed (and its page-cache reader stopped, its cache dropped), its balloon set
# to SIZE (or its own MIB) by libvirt (setmem --live), then every page it has touched once by its
# hog (reserve 0: only the hog's no-OOM guard) and freed again - so the guest's free memory is
# backed on the host and the host's available memory moves only with the balloons and the
# guests' use. The guests are reset together (one wait for all), whatever their sizes.
declare -A RESET_MIB=()
guests_reset() {
    local size=$1 a g
    shift
    local -a gs=()
    for a in "$@"; do
        g=${a%%=*}
        gs+=("$g")
        RESET_MIB[$g]=$size
        [[ "$a" == *=* ]] && RESET_MIB[$g]=${a#*=}
    done
    for g in "${gs[@]}"; do
        hog "$g" free >/dev/null
        vsh setmem "$(dom "$g")" "${RESET_MIB[$g]}M" --live || fail "virsh setmem $g ${RESET_MIB[$g]}M failed"
    done
    wait_for "balloons of $* (default $size MiB) at their sizes" 60 balloons_at "${gs[@]}" || return 1
    for g in "${gs[@]}"; do hog "$g" hog 4096 "${RESET_MIB[$g]}" 0 >/dev/null; done
    wait_for "${gs[*]}: every page touched" 60 hogs_waiting "${gs[@]}" || return 1
    for g in "${gs[@]}"; do hog "$g" free >/dev/null; done
    # The agent's first round must see the guests' memory free again, not the hog that was.
    wait_for "${gs[*]}: stats showing the memory free" 30 stats_free "${gs[@]}"
}

# stats_free G...: libvirt's balloon stats show each guest's memory free again (unused at least
# its reset size - 150 MiB).
stats_free() {
    local g u
    for g in "$@"; do
        u=$(domstats_field "$g" balloon.unused)
        [ "${u:-0}" -ge $(((RESET_MIB[$g] - 150) * 1024)) ] || return 1
    done
}

# balloons_at G...: each guest's balloon at its reset size.
balloons_at() {
    local g
    for g in "$@"; do
        [ "$(domstats_field "$g" balloon.current)" = $((RESET_MIB[$g] * 1024)) ] || return 1
    done
}

# hogs_waiting G...: each hog stopped growing (waiting for memory, or at its limit).
hogs_waiting() {
    local g answer
    for g in "$@"; do
        CMD_ID=$((CMD_ID + 1))
        answer=$("$CHAN" "$RUN/$g.sock" "$CMD_ID" status --timeout-ms 2000 2>/dev/null)
        [[ "$answer" == *state=waiting* || "$answer" == *state=holding* ]] || return 1
    done
}

# The balloon stats libvirt has for a guest: domstats_field G FIELD (balloon.current...).
domstats_field() {
    vsh domstats --balloon "$(dom "$1")" 2>/dev/null | awk -F= -v k="$2" '$1 ~ "^ *"k"$" {print $2}'
}

# libvirt's own view of every guest, kept as an artifact: domstats_save LABEL.
domstats_save() {
    vsh domstats --balloon --state >"$SCEN_DIR/domstats-$1.txt" 2>&1
}

# The target libvirt last set for a guest (the running domain's currentMemory, KiB).
dom_current_kib() {
    vsh dumpxml "$(dom "$1")" 2>/dev/null | awk -F'[<>]' '/<currentMemory/ {print $3; exit}'
}

console_size() { stat -c %s "$RUN/$1.console" 2>/dev/null || echo 0; }

# The most the hog of G held after byte offset MARK of its console, in MiB.
console_max_held() {
    tail -c +"$(($2 + 1))" "$RUN/$1.console" 2>/dev/null |
        awk '/^hog: t_ms=/ { for (i = 1; i <= NF; i++) if ($i ~ /^held_mib=/) { split($i, a, "="); if (a[2] + 0 > m) m = a[2] + 0 } } END { print m + 0 }'
}

# check_hog_fed G MARK: what the agent caused, not what the guest had anyway. The hog stops
# allocating where the guest's MemAvailable would fall below its reserve (24 MiB), so without
# the agent it holds at most about HOG_AVAIL0[G] - 24 MiB (and a guest never OOMs by its hog:
# "no OOM" alone is true by construction). Held beyond that (+8 MiB for the guest's own drift)
# is memory the agent's grows put there.
check_hog_fed() {
    local g=$1 held room
    held=$(console_max_held "$g" "$2")
    if [ -z "${HOG_AVAIL0[$g]:-}" ]; then
        fail "$g's hog held $held MiB; its MemAvailable before it hogged is unknown (no status answer)"
        return
    fi
    room=$((HOG_AVAIL0[$g] - 24 + 8))
    check "$g's hog held $held MiB, beyond the ~$room MiB its guest had to give before the agent grew it" \
        "$held" -gt "$room"
}

# hog_beyond_mib G MARK: how much more G's hog held than its guest could give it alone
# (HOG_AVAIL0[G] - 24; negative when less); empty when unknown.
hog_beyond_mib() {
    [ -n "${HOG_AVAIL0[$1]:-}" ] || return 0
    echo $(($(console_max_held "$1" "$2") - (HOG_AVAIL0[$1] - 24)))
}

# Kernel OOM kills or a dead hog in any guest's console: printed, and status 1.
consoles_oom() {
    ! grep -HE 'Out of memory|oom-kill|invoked oom-killer|Killed process|hog exited' \
        "$RUN"/*.console 2>/dev/null
}

# ---- waiting ----

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: poll every 0.5 s; fail on the timeout, the run's
# deadline or a dead agent.
wait_for() {
    local what=$1 timeout_s=$2
    shift 2
    local deadline=$((SECONDS + timeout_s))
    [ "$deadline" -gt "$E2E_DEADLINE" ] && deadline=$E2E_DEADLINE
    while ! "$@"; do
        if [ -n "$AGENT_PID" ] && ! kill -0 "$AGENT_PID" 2>/dev/null; then
            fail "the agent died while waiting for: $what"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "timed out after ${timeout_s}s waiting for: $what"
            return 1
        fi
        sleep 0.5
    done
    return 0
}

# ---- a scenario's host ----

# scenario_floor GIVE_MIB TITLE: the host's floor for the scenario such that it has GIVE_MIB
# to give now (its available memory less GIVE_MIB): host_min and SCEN_HOST_MIN_MIB (check_floor),
# and SCEN_TITLE (the plot's) as TITLE plus the floor.
# shellcheck disable=SC2034 # run.sh reads all three
scenario_floor() {
    host_min=$(($(host_available_mib) - $1))
    SCEN_HOST_MIN_MIB=$host_min
    SCEN_TITLE="$2; host floor ${host_min} MiB ($1 MiB to give)"
}

# scenario_setup GIVE_MIB TITLE RESET_SIZE G|G=MIB...: the usual preamble - the guests reset
# (guests_reset RESET_SIZE G...), the floor (scenario_floor GIVE_MIB TITLE), a fresh agent with
# that floor, two rounds done.
scenario_setup() {
    local give=$1 title=$2
    shift 2
    guests_reset "$@"
    scenario_floor "$give" "$title"
    agent_start "host_min_unused_mib = $host_min"
    wait_for "two rounds" 30 rounds_done 2
}

# ---- the agent ----

# agent_start [key = value lines...]: a fresh agent for the current scenario, recording rounds.
# MEMSCHED_E2E_DEMAND_SIGNAL (unused|usable), when set, goes into every scenario's config;
# unset, the config has no demand_signal line and the agent's default holds. What the agent
# will use is read back from its --print-config: AGENT_SIGNAL (unused|usable), AGENT_MIN_KIB
# (vm_min_unused) and AGENT_PREDICTIVE (1 when its `predictive` policy is on, 0 when off or
# when the agent has no such switch) - the checks and the metrics judge the signal it used.
AGENT_SIGNAL=unused
AGENT_MIN_KIB=$((E2E_MIN_UNUSED_MIB * 1024))
AGENT_PREDICTIVE=0
agent_start() {
    local conf="$SCEN_DIR/agent.conf"
    {
        echo "# $SCEN"
        echo "uri = $URI"
        echo "state_dir = $SCEN_DIR/state"
        echo "log_level = info"
        echo "interval_ms = 1000"
        [ -n "${MEMSCHED_E2E_DEMAND_SIGNAL:-}" ] && echo "demand_signal = $MEMSCHED_E2E_DEMAND_SIGNAL"
        local kv
        for kv in "$@"; do echo "$kv"; done
    } >"$conf"
    local eff
    if eff=$("$AGENT" --config "$conf" --print-config 2>&1); then
        AGENT_SIGNAL=$(awk '$1 == "demand_signal" { print $3 }' <<<"$eff")
        AGENT_MIN_KIB=$(($(awk '$1 == "vm_min_unused_mib" { print $3 }' <<<"$eff") * 1024))
        AGENT_PREDICTIVE=0
        [ "$(awk '$1 == "predictive" { print $3 }' <<<"$eff")" = true ] && AGENT_PREDICTIVE=1
        [ -n "$AGENT_SIGNAL" ] || AGENT_SIGNAL=unused
    else
        fail "the agent refused its config: $(echo "$eff" | tail -n 3 | tr '\n' ' ')"
    fi
    mkdir -p "$SCEN_DIR/state"
    rm -f "$SCEN_DIR/rounds.csv"
    AGENT_T0=$(now_ms)
    AGENT_COST=""
    "$AGENT" --config "$conf" --record "$SCEN_DIR/rounds.csv" 2>>"$SCEN_DIR/agent.log" &
    AGENT_PID=$!
    sampler_start
    say "agent pid $AGENT_PID: $(grep -v '^#' "$conf" | grep -v '^uri\|^state_dir' | tr '\n' ' ')(signal $AGENT_SIGNAL, predictive $AGENT_PREDICTIVE)"
}

# agent_cost PID: "CPU% SECONDS RSS_MIB PSS_MIB ANON_MIB" - the agent's CPU time as a share of
# one core since it started, and its memory: VmRSS, PSS, and its own (anonymous) part; the
# shared libraries libvirt pulls in are most of VmRSS and not the agent's own cost.
agent_cost() {
    local -a f
    read -r -a f <"/proc/$1/stat" || return 1
    awk -v t="$((f[13] + f[14]))" -v s="${f[21]}" -v hz="$(getconf CLK_TCK)" \
        -v up="$(cut -d' ' -f1 /proc/uptime)" '
        /^Rss:/ { r = $2 } /^Pss:/ { p = $2 } /^Anonymous:/ { a = $2 }
        END { el = up - s / hz; if (el <= 0) el = 1
              printf "%.2f %.0f %.1f %.1f %.1f\n", 100 * t / hz / el, el, r / 1024, p / 1024, a / 1024 }' \
        "/proc/$1/smaps_rollup"
}

agent_stop() {
    sampler_stop
    [ -n "$AGENT_PID" ] || return 0
    local cpu el rss pss anon
    if read -r cpu el rss pss anon <<<"$(agent_cost "$AGENT_PID" 2>/dev/null)" && [ -n "$anon" ]; then
        AGENT_COST="agent ${cpu}% of a core over ${el} s, VmRSS ${rss} MiB (PSS ${pss}, anonymous ${anon})"
        say "$AGENT_COST"
    fi
    kill -TERM "$AGENT_PID" 2>/dev/null
    local _
    for _ in $(seq 1 100); do
        kill -0 "$AGENT_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$AGENT_PID" 2>/dev/null; then
        fail "the agent did not stop within 10 s of SIGTERM"
        kill -KILL "$AGENT_PID" 2>/dev/null
    fi
    local status=0
    wait "$AGENT_PID" 2>/dev/null || status=$?
    # SIGTERM must end it cleanly: a crash at shutdown is a failure, not a pass.
    [ "$status" -eq 0 ] || fail "the agent exited with status $status after SIGTERM"
    AGENT_PID=""
}

# Milliseconds since the agent started (the CSV's time base).
agent_ms() { echo $(($(now_ms) - AGENT_T0)); }

# event LABEL: noted in the scenario's events.txt (agent time) for the plot and the reader.
event() {
    echo "$(agent_ms) $*" >>"$SCEN_DIR/events.txt"
    say "event: $*"
}

# ---- libvirt's view, sampled ----

# sampler_start: every second, libvirt's balloon and QEMU RSS of each guest (domstats) and the
# host's available memory, into SCEN_DIR/domstats.csv (t_ms in agent time), until sampler_stop.
# The guests' RSS is what they take from the host: the floor check uses it, so that memory other
# work on the machine takes or frees is not counted against memsched.
SAMPLER_PID=""
sampler_start() {
    local out="$SCEN_DIR/domstats.csv"
    echo "t_ms,name,current_kib,rss_kib,host_available_kib" >"$out"
    (
        trap 'exit 0' TERM
        while :; do
            t=$(agent_ms)
            avail=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
            vsh domstats --balloon 2>/dev/null | awk -v t="$t" -v a="$avail" -F= '
                /^Domain:/ { if (n != "") print t "," n "," c "," r "," a; n = $0; sub(/^Domain: /, "", n); gsub(/\047/, "", n); c = r = "" }
                /balloon.current=/ { c = $2 } /balloon.rss=/ { r = $2 }
                END { if (n != "") print t "," n "," c "," r "," a }' >>"$out"
            sleep 1
        done
    ) &
    SAMPLER_PID=$!
}

sampler_stop() {
    [ -n "$SAMPLER_PID" ] || return 0
    kill -TERM "$SAMPLER_PID" 2>/dev/null
    wait "$SAMPLER_PID" 2>/dev/null
    SAMPLER_PID=""
}

# guest_margin_kib HOST_MIN_MIB: how far above its floor the host stayed, over the samples.
# Prints "LEAST SEEN GUESTS OTHERS" (KiB):
#   SEEN    the least host available - floor, as the agent sees it (other work included)
#   GUESTS  the least of: the spare at the first sample less what the guests' QEMU processes
#           grew since (other work left out)
#   LEAST   the least, per sample, of the better of the two: memory other work freed the agent
#           may give away, memory other work took is not held against it
#   OTHERS  the most the host's available memory fell beyond what the guests' RSS grew (other
#           work on the machine, or memory QEMU dropped that the host kernel has not freed yet,
#           as with guest RAM in transparent huge pages)
guest_margin_kib() {
    awk -F, -v floor=$(($1 * 1024)) 'NR == 1 { next }
        { rss[$1] += $4; avail[$1] = $5; if (!($1 in seen)) { seen[$1] = 1; ts[++n] = $1 } }
        END {
            if (n == 0) { print "0 0 0 0"; exit }
            spare0 = avail[ts[1]] - floor; rss0 = rss[ts[1]]; others = 0
            for (i = 1; i <= n; i++) {
                grew = rss[ts[i]] - rss0
                g = spare0 - grew; s = avail[ts[i]] - floor
                f = g > s ? g : s
                o = (avail[ts[1]] - avail[ts[i]]) - grew
                if (i == 1 || f < least) least = f
                if (i == 1 || g < guests) guests = g
                if (i == 1 || s < seen_least) seen_least = s
                if (o > others) others = o
            }
            print least, seen_least, guests, others
        }' "$SCEN_DIR/domstats.csv"
}

# ---- the recorded rounds ----

csv() { echo "$SCEN_DIR/rounds.csv"; }

# The agent's CSV is read by column name, never by position (csvcols.awk): the agent may add
# columns at the end of its header. rawk [-v K=V]... PROGRAM FILE...: awk -F, with csvcols.awk's
# C[NAME], HNF, col() and vm_name() in front of PROGRAM; a row with another field count than
# its header (one being written) is the program's to skip (NF != HNF).
CSVCOLS_AWK=$(<"$HERE/csvcols.awk")
rawk() {
    local -a opts=()
    while [ "${1:-}" = -v ]; do
        opts+=(-v "$2")
        shift 2
    done
    local prog=$1
    shift
    awk -F, "${opts[@]}" "$CSVCOLS_AWK"$'\n'"$prog" "$@"
}

# The last K complete rounds (4 VM rows each): reason of every VM, and whether any changed.
# rounds_tail K prints "N CHANGES" + per VM "name:reason,..." of the last round.
_rounds_tail() {
    rawk -v k="$1" -v n="${#E2E_GUESTS[@]}" '
        FNR == 1 || NF != HNF { next }
        { r = $C["round"]; rsn = $C["reason"]
          cnt[r]++; if (rsn == "grow" || rsn == "shrink") chg[r]++
          rs[r] = rs[r] " " vm_name() ":" rsn
          if (r + 0 > last) last = r + 0 }
        END { got = 0; changes = 0
              for (r = last; r > 0 && got < k; r--) if (cnt[r] == n) { got++; changes += chg[r]; if (!lr) lr = r }
              print got, changes, rs[lr] }' "$(csv)" 2>/dev/null
}

# quiet K: the last K complete rounds changed no target.
quiet() {
    local got changes rest
    read -r got changes rest <<<"$(_rounds_tail "$1")"
    [ "${got:-0}" -ge "$1" ] && [ "${changes:-1}" -eq 0 ]
}

# rounds_done N: at least N complete rounds recorded.
rounds_done() {
    local got changes rest
    read -r got changes rest <<<"$(_rounds_tail "$1")"
    [ "${got:-0}" -ge "$1" ]
}

# reason_streak G REASONS K: G's reason was one of REASONS (a|b) in each of the last K rounds.
reason_streak() {
    local want=$2 k=$3
    rawk -v vm="$(dom "$1")" -v want="^($want)\$" -v k="$k" '
        FNR == 1 || NF != HNF { next }
        vm_name() == vm { r[++n] = $C["reason"] }
        END { if (n < k) exit 1; for (i = n - k + 1; i <= n; i++) if (r[i] !~ want) exit 1; exit 0 }' \
        "$(csv)" 2>/dev/null
}

# has_stats G: the agent sees balloon stats for G (its last row has unused_kib).
has_stats() {
    rawk -v vm="$(dom "$1")" 'FNR == 1 || NF != HNF { next } vm_name() == vm { u = $C["unused_kib"] }
        END { exit u == "" }' "$(csv)" 2>/dev/null
}

# metrics G SINCE_MS [UNTIL_MS]: metrics.awk's key=value line for G ("" = all VMs).
metrics() {
    local vm=""
    [ -n "$1" ] && vm=$(dom "$1")
    awk -F, -v vm="$vm" -v since_ms="$2" -v until_ms="${3:-}" -v nvms="${#E2E_GUESTS[@]}" \
        -f "$HERE/csvcols.awk" -f "$HERE/metrics.awk" "$(csv)"
}

# mget KEY "METRICS LINE": one value.
mget() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k {print $2}'; }

mib() { echo $((${1:-0} / 1024)); }

# The invariants on every round of the scenario, and no refused plan.
check_rounds() {
    local out
    out=$(awk -F, -v floor_kib=$((E2E_FLOOR_MIB * 1024)) -v min_unused_kib=$((E2E_MIN_UNUSED_MIB * 1024)) \
        -v excess_kib=$((E2E_EXCESS_MIB * 1024)) -v step_kib=$((E2E_STEP_MIB * 1024)) \
        -v signal="$AGENT_SIGNAL" -v predictive="$AGENT_PREDICTIVE" \
        -f "$HERE/csvcols.awk" -f "$HERE/check_rounds.awk" "$(csv)" 2>&1)
    local rc=$?
    echo "$out" >"$SCEN_DIR/check.txt"
    if [ "$rc" -eq 0 ]; then
        ok "invariants on every round: ${out##*$'\n'}"
    else
        fail "invariants: $(echo "$out" | head -n 5 | tr '\n' ';')"
    fi
    if grep -q 'event=plan_refused' "$SCEN_DIR/agent.log"; then
        fail "the agent refused a plan: $(grep -m1 'event=plan_refused' "$SCEN_DIR/agent.log")"
    else
        ok "no plan refused"
    fi
    # No scenario squeezes a guest below what it holds, so every balloon reaches its target
    # (1-3 s under TCG): a balloon the tracker calls stuck here is a false alarm - real
    # libvirt's pace or events misread - and a false stuck takes a donor out of the plan.
    local n_stuck n_log
    n_stuck=$(rawk 'FNR > 1 && NF == HNF && $C["stuck"] + 0 == 1 { n++ } END { print n + 0 }' "$(csv)")
    n_log=$(grep -c 'event=stuck ' "$SCEN_DIR/agent.log")
    if [ "${n_stuck:-1}" -eq 0 ] && [ "$n_log" -eq 0 ]; then
        ok "no balloon called stuck (rounds and log)"
    else
        fail "balloons called stuck: $n_stuck rows, $n_log log lines; first: $(grep -m1 'event=stuck ' "$SCEN_DIR/agent.log")"
    fi
}

# The host's available memory as the agent counts it (the kernel's MemAvailable: shmem is not
# free; agent/meminfo.h), MiB.
host_available_mib() {
    awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo
}

# ---- the plot ----

plot_scenario() {
    local title=$1
    command -v gnuplot >/dev/null || { say "no gnuplot: no plot"; return 0; }
    bash "$HERE/plot.sh" "$SCEN_DIR" "$title" "$E2E_PREFIX" ||
        fail "the plot of $SCEN failed"
}

# ---- teardown ----

# QEMU processes of this run: pid files libvirt wrote, and processes whose command line names
# our guest directory (should libvirt have lost track of one).
_our_qemu_pids() {
    local f p
    [ -n "${LIBVIRTD_DIR:-}" ] || return 0
    for f in "$LIBVIRTD_DIR"/run/libvirt/qemu/run/"$E2E_PREFIX"*.pid; do
        [ -f "$f" ] && p=$(cat "$f" 2>/dev/null) && [ -n "$p" ] && echo "$p"
    done
    [ -n "${RUN:-}" ] || return 0
    for p in /proc/[0-9]*; do
        # grep reads all its input (no -q): under pipefail an early exit would fail tr.
        tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -F -- "$RUN/vmlinuz" >/dev/null && echo "${p#/proc/}"
    done
}

e2e_teardown() {
    local rc=$? g p dir=${LIBVIRTD_DIR:-}
    trap - EXIT INT TERM HUP
    set +e
    agent_stop 2>/dev/null
    if [ -n "$dir" ] && [ -d "$dir" ]; then
        if [ -n "${URI:-}" ]; then
            for g in "${E2E_GUESTS[@]}"; do
                timeout 20 virsh -q -c "$URI" destroy "$(dom "$g")" >/dev/null 2>&1
                timeout 20 virsh -q -c "$URI" undefine "$(dom "$g")" >/dev/null 2>&1
            done
        fi
        for p in $(_our_qemu_pids | sort -u); do
            kill -KILL "$p" 2>/dev/null && say "teardown: killed QEMU pid $p"
        done
        mkdir -p "$OUT/guests"
        [ -n "${RUN:-}" ] && cp "$RUN"/*.console "$RUN"/*.xml "$OUT/guests/" 2>/dev/null
        cp "$LIBVIRTD_DIR"/cache/libvirt/qemu/log/*.log "$OUT/guests/" 2>/dev/null
        cp "$LIBVIRTD_DIR/libvirtd.log" "$OUT/libvirtd.log" 2>/dev/null
        libvirtd_cleanup
    fi
    LIBVIRTD_DIR=$dir
    if [ -n "${RUN:-}" ] && [ -n "$(_our_qemu_pids 2>/dev/null)" ]; then
        echo "e2e: FAIL: QEMU processes left: $(_our_qemu_pids 2>/dev/null | tr '\n' ' ')"
        rc=1
    fi
    exit "$rc"
}

# Guests of an earlier run that was killed before its teardown (its owner is gone): ours to end.
reap_stale() {
    local d owner p
    for d in "${TMPDIR:-/tmp}"/memsched-libvirtd.*; do
        [ -f "$d/owner.pid" ] || continue
        owner=$(cat "$d/owner.pid" 2>/dev/null)
        [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null && continue
        for p in /proc/[0-9]*; do
            tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -F -- "$d/guests/vmlinuz" >/dev/null || continue
            kill -KILL "${p#/proc/}" 2>/dev/null && say "stale run $d: killed QEMU pid ${p#/proc/}"
        done
        if [ -f "$d/pid" ] && p=$(cat "$d/pid") && [ -n "$p" ] &&
            tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep libvirtd >/dev/null; then
            kill -KILL "$p" 2>/dev/null && say "stale run $d: killed libvirtd pid $p"
        fi
        rm -rf "$d"
    done
}

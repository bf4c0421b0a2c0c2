#!/usr/bin/env bash
# packages.sh - the Debian packages as an operator gets them: build them (release, with Debian's
# hardening flags), lint them, `apt-get install` them, run the installed programs on the shipped
# configs (keys made with memschedctl keygen, as the man pages say), a coordinator and an agent
# from the installed files talking over CURVE, `systemd-analyze verify` the installed units,
# then `apt-get purge` them and check that nothing is left behind.
#
# As root, on a Debian 12 machine after `bash deploy/install-deps.sh --test`. CI runs it from
# .ci/run after the demos, not as a ctest: while the packages are installed, any test that runs
# a daemon without -c would read the shipped /etc/memsched configs.
#   MEMSCHED_DEB_BUILD  the build directory (default build/deb)
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
build=$src/${MEMSCHED_DEB_BUILD:-build/deb}
packages=(memsched-agent memsched-coordinator memschedctl)
left_behind=(/etc/memsched /var/lib/memsched /var/lib/memsched-agent /run/memsched)
tmp=$(mktemp -d /tmp/memsched-packages.XXXXXX)
pids=()

step() { printf '\n--- packages: %s\n' "$*"; }
fail() {
    echo "packages.sh: FAIL: $*" >&2
    exit 1
}
installed() { dpkg-query -W -f='${Status}\n' "$@" 2>/dev/null | grep -q "install ok installed"; }

# On any exit: stop what we started, and leave the machine as we found it.
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    for p in "${packages[@]}"; do
        if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -qv "not-installed"; then
            echo "packages.sh: purging $p (cleanup)" >&2
            DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$p" >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "run as root: it installs and purges packages"
for p in "${packages[@]}"; do
    ! installed "$p" || fail "$p is installed already: purge it first (the checks need a clean slate)"
done
for path in "${left_behind[@]}"; do
    [ ! -e "$path" ] || fail "$path exists before the install: the leftover check would be void"
done
! getent passwd memsched >/dev/null || fail "user memsched exists before the install"

step "build (release preset, dpkg-buildflags) and cpack"
# Debian's hardening flags, all of them (bindnow and PIE too).
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cmake --preset release -B "$build" \
    -DCMAKE_C_FLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
    -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" \
    -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON >"$tmp/configure.log" ||
    { cat "$tmp/configure.log"; fail "configure"; }
cmake --build "$build" -j "$(nproc)" --target memsched-agent memsched-coordinator memschedctl \
    memsched_deploy_files memsched_web_files >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build"; }
# Debian's flags (fortify, -O3 from the preset) make gcc see more; not errors in a release build.
echo "compiler warnings under dpkg-buildflags: $(grep -c 'warning:' "$tmp/build.log" || true)"
grep 'warning:' "$tmp/build.log" || true
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB >"$tmp/cpack.log") || { cat "$tmp/cpack.log"; fail "cpack"; }
debs=()
for p in "${packages[@]}"; do
    deb=$(ls "$build/${p}_"*.deb)
    debs+=("$deb")
    printf '%-28s %7s bytes, installed %5s KiB; Depends: %s\n' "$p" "$(stat -c %s "$deb")" \
        "$(dpkg-deb -f "$deb" Installed-Size)" "$(dpkg-deb -f "$deb" Depends)"
done
# What each package must carry besides its program (lintian would only warn).
want_files() {
    local deb=$1 listing
    shift
    listing=$(dpkg-deb -c "$deb")
    for f in "$@"; do
        grep -q " \./$f\$" <<<"$listing" || fail "$(basename "$deb") lacks $f"
    done
}
want_files "${debs[0]}" etc/memsched/agent.conf lib/systemd/system/memsched-agent.service \
    usr/share/man/man8/memsched-agent.8.gz usr/share/man/man5/memsched-agent.conf.5.gz
want_files "${debs[1]}" etc/memsched/coordinator.conf \
    lib/systemd/system/memsched-coordinator.service usr/share/man/man8/memsched-coordinator.8.gz \
    usr/share/man/man5/memsched-coordinator.conf.5.gz usr/share/memsched/grafana/memsched.json \
    usr/share/memsched/web/index.html usr/share/memsched/web/host.html \
    usr/share/memsched/web/uPlot.iife.min.js usr/share/memsched/web/uPlot.LICENSE.txt
want_files "${debs[2]}" usr/share/man/man8/memschedctl.8.gz \
    usr/share/bash-completion/completions/memschedctl
for i in 0 1; do
    conf=/etc/memsched/${packages[i]#memsched-}.conf
    [ "$(dpkg-deb -I "${debs[i]}" conffiles)" = "$conf" ] || fail "$conf is not a conffile"
done

step "lintian (errors fail; warnings and infos listed)"
lintian --fail-on error -I "${debs[@]}" 2>&1 | grep -v "running with root privileges" ||
    fail "lintian found errors (above)"

step "apt-get install"
export DEBIAN_FRONTEND=noninteractive
# Every file and directory these packages could leave, before they exist (diffed after purge).
snapshot() {
    find /etc /usr /lib /var/lib /opt -xdev \( -path /var/lib/dpkg -o -path /var/lib/apt \
        -o -path /var/lib/libvirt -o -path /var/lib/systemd -o -path /var/lib/man-db \) -prune \
        -o -print 2>/dev/null | sort
}
snapshot >"$tmp/before"
apt-get install -y -q --no-install-recommends "${debs[@]}" >"$tmp/install.log" ||
    { cat "$tmp/install.log"; fail "apt-get install"; }
for p in "${packages[@]}"; do
    dpkg -L "$p" >>"$tmp/owned"
done

step "installed programs: --version, --check-config on the shipped configs"
version=$(dpkg-query -W -f='${Version}' memsched-agent)
for prog in /usr/sbin/memsched-agent /usr/sbin/memsched-coordinator /usr/bin/memschedctl; do
    out=$("$prog" --version)
    echo "$out"
    [ "$out" = "$(basename "$prog") ${version%-*}" ] || fail "$prog --version: want ${version%-*}"
done
# No -c: the daemons find the shipped configs themselves.
out=$(memsched-agent --check-config) || fail "memsched-agent --check-config: $out"
[ "$out" = "/etc/memsched/agent.conf: ok" ] || fail "agent --check-config read '$out'"
getent passwd memsched >/dev/null || fail "postinst made no memsched user"
[ "$(stat -c %U /var/lib/memsched)" = memsched ] || fail "/var/lib/memsched is not memsched's"
# The shipped coordinator config needs a key pair (documented: memsched-coordinator(8), KEYS).
if memsched-coordinator --check-config 2>"$tmp/err"; then
    fail "the coordinator's config passed without a key pair"
fi
grep -q "key_file: /etc/memsched/coordinator.secret" "$tmp/err" ||
    fail "coordinator --check-config without keys: $(cat "$tmp/err")"
echo "without keys, as documented: $(cat "$tmp/err")"
memschedctl keygen coordinator --dir /etc/memsched >/dev/null
chown memsched:memsched /etc/memsched/coordinator.secret
runuser -u memsched -- memsched-coordinator --check-config || fail "coordinator --check-config"
# An agent reporting to it: its own pair, its public key in allow_dir under its host id.
memschedctl keygen agent --dir /etc/memsched >/dev/null
cp /etc/memsched/agent.key "/etc/memsched/agents/$(hostname).key"

step "the installed coordinator and agent, over CURVE (keys as the man pages say)"
port=$((17400 + RANDOM % 1000)) web_port=$((18400 + RANDOM % 1000))
install -d -o memsched -g memsched -m 0750 /run/memsched # the unit's RuntimeDirectory=
runuser -u memsched -- memsched-coordinator "listen=tcp://127.0.0.1:$port" \
    "metrics_listen=$web_port" 2>"$tmp/coordinator.log" &
pids+=($!)
sed "s|^coordinator = .*|coordinator = tcp://127.0.0.1:$port|" /etc/memsched/agent.conf \
    >"$tmp/agent.conf"
memsched-agent --check-config -c "$tmp/agent.conf" >/dev/null || fail "agent config with keys"
memsched-agent -c "$tmp/agent.conf" -u "sim:$src/tests/scenarios/demo.json" -s "$tmp/agent-state" \
    --rounds 4 >"$tmp/agent.log" 2>&1 || { cat "$tmp/agent.log"; fail "the installed agent"; }
for _ in $(seq 50); do
    memschedctl --json hosts >"$tmp/hosts.json" 2>/dev/null &&
        jq -e --arg h "$(hostname)" 'any(.hosts[]; .host_id == $h)' "$tmp/hosts.json" >/dev/null &&
        break
    sleep 0.2
done
jq -e --arg h "$(hostname)" 'any(.hosts[]; .host_id == $h)' "$tmp/hosts.json" >/dev/null ||
    { cat "$tmp/coordinator.log"; fail "memschedctl hosts does not list this host"; }
memschedctl hosts
# The dashboard from the package's files (the default web_root) and its API, on loopback.
curl -sf "http://127.0.0.1:$web_port/" | grep -q '<title>memsched' ||
    { cat "$tmp/coordinator.log"; fail "the installed coordinator does not serve the dashboard"; }
curl -sf -o /dev/null "http://127.0.0.1:$web_port/uPlot.iife.min.js" || fail "no chart library served"
curl -sf "http://127.0.0.1:$web_port/api/hosts" | jq -e --arg h "$(hostname)" \
    'any(.hosts[]; .host_id == $h)' >/dev/null || fail "/api/hosts does not list this host"
kill "${pids[0]}"
wait "${pids[0]}" || true
pids=()

step "reinstall over a configured host (what an upgrade's maintainer scripts meet)"
uid=$(id -u memsched)
sum=$(cat /etc/memsched/*.secret /etc/memsched/agents/* | md5sum)
dpkg -i "${debs[@]}" >"$tmp/reinstall.log" 2>&1 || { cat "$tmp/reinstall.log"; fail "dpkg -i again"; }
[ "$(id -u memsched)" = "$uid" ] || fail "the memsched user changed on reinstall"
[ "$(cat /etc/memsched/*.secret /etc/memsched/agents/* | md5sum)" = "$sum" ] ||
    fail "keys or allowlist changed on reinstall"
[ "$(stat -c %U /etc/memsched/coordinator.secret)" = memsched ] || fail "secret's owner changed"
runuser -u memsched -- memsched-coordinator --check-config >/dev/null ||
    fail "coordinator --check-config after reinstall"
echo "user, keys, allowlist and configs kept"

step "bash completion"
bash -c 'source /usr/share/bash-completion/bash_completion
    source /usr/share/bash-completion/completions/memschedctl
    COMP_WORDS=(memschedctl pol); COMP_CWORD=1; COMP_LINE="memschedctl pol"; COMP_POINT=${#COMP_LINE}
    _memschedctl; [ "${COMPREPLY[*]}" = policy ] || exit 1
    COMP_WORDS=(memschedctl policy set vm_min); COMP_CWORD=3; COMP_LINE="${COMP_WORDS[*]}"
    COMP_POINT=${#COMP_LINE}; _memschedctl 2>/dev/null # compopt: no real completion here
    [ "${COMPREPLY[*]}" = vm_min_unused_mib= ]' ||
    fail "memschedctl completion"
echo "memschedctl pol<TAB> -> policy; policy set vm_min<TAB> -> vm_min_unused_mib="

step "systemd-analyze verify and security on the installed units"
units=(/lib/systemd/system/memsched-agent.service /lib/systemd/system/memsched-coordinator.service)
systemd-analyze verify "${units[@]}" || fail "systemd-analyze verify"
echo "verify: ok"
for u in "${units[@]}"; do
    systemd-analyze security --offline=true "$u" 2>/dev/null | tail -1 ||
        echo "security --offline: not available here"
done

step "apt-get purge"
apt-get purge -y -q "${packages[@]}" >"$tmp/purge.log" || { cat "$tmp/purge.log"; fail "purge"; }
for path in "${left_behind[@]}"; do
    [ ! -e "$path" ] || fail "$path is left after purge"
done
! getent passwd memsched >/dev/null || fail "user memsched is left after purge"
! getent group memsched >/dev/null || fail "group memsched is left after purge"
while read -r f; do
    [ -d "$f" ] || [ ! -e "$f" ] || fail "$f (the packages') is left after purge"
done <"$tmp/owned"
snapshot >"$tmp/after"
if ! diff "$tmp/before" "$tmp/after" >"$tmp/diff"; then
    cat "$tmp/diff"
    fail "the purge left the file system different from before the install (above)"
fi
echo "purged: no file, directory or user left"

#!/usr/bin/env bash
# ansible.sh - deploy/ansible's playbook against this machine (`-c local`), as coordinator and
# hypervisor at once, from the .debs tests/deploy/packages.sh built; then the files it made are
# checked, a second run must change nothing, and everything is purged again.
#
# Where systemd is not PID 1 (CI's machines: `ps -p 1`), the roles skip starting the units
# (ansible_service_mgr); what that leaves unchecked is said at the end. As root, after
# packages.sh, on a machine with deploy/install-deps.sh --test done (ansible-core).
#   MEMSCHED_DEB_BUILD  where the .debs are (default build/deb)
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
build=$src/${MEMSCHED_DEB_BUILD:-build/deb}
packages=(memsched-agent memsched-coordinator memschedctl)
left_behind=(/etc/memsched /var/lib/memsched /var/lib/memsched-agent /run/memsched)
tmp=$(mktemp -d /tmp/memsched-ansible.XXXXXX)

step() { printf '\n--- ansible: %s\n' "$*"; }
fail() {
    echo "ansible.sh: FAIL: $*" >&2
    exit 1
}
# The roles leave the .debs they copied in apt's cache, as apt would; gone with the packages.
purge() {
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${packages[@]}" >"$tmp/purge.log" 2>&1
    rm -f /var/cache/apt/archives/memsched-agent_*.deb \
        /var/cache/apt/archives/memsched-coordinator_*.deb /var/cache/apt/archives/memschedctl_*.deb
}
cleanup() {
    if dpkg-query -W -f='${Status}\n' "${packages[@]}" 2>/dev/null | grep -q "^install"; then
        echo "ansible.sh: purging the packages (cleanup)" >&2
        purge || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "run as root: the playbook installs packages"
command -v ansible-playbook >/dev/null || fail "no ansible-playbook: bash deploy/install-deps.sh --test"
version=$(dpkg-deb -f "$(ls "$build"/memsched-agent_*.deb 2>/dev/null | head -1)" Version 2>/dev/null) ||
    fail "no .debs in $build: run tests/deploy/packages.sh first"
for path in "${left_behind[@]}"; do
    [ ! -e "$path" ] || fail "$path exists before the playbook: the checks would be void"
done

host=$(hostname -s)
cat >"$tmp/inventory.ini" <<INI
[coordinators]
localhost

[hypervisors]
localhost

[all:vars]
ansible_connection=local
ansible_python_interpreter=/usr/bin/python3
memsched_deb_dir=$build
memsched_version=$version
memsched_key_store=$tmp/keys
memsched_coordinator_endpoint=tcp://127.0.0.1:7400
memsched_agent_labels=rack=ci
INI
echo "systemd as PID 1: $(ps -p 1 -o comm= | grep -qx systemd && echo yes || echo "no ($(ps -p 1 -o comm=))")"

step "ansible-playbook -c local (first run)"
# Pipelining: each module runs without a temporary file copied first (faster; no sudo here).
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_STDOUT_CALLBACK=default ANSIBLE_PIPELINING=1
ansible-playbook -i "$tmp/inventory.ini" -c local deploy/ansible/playbook.yml >"$tmp/run1.log" 2>&1 ||
    { cat "$tmp/run1.log"; fail "the playbook failed"; }
grep -A3 "PLAY RECAP" "$tmp/run1.log"

step "what it made"
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" | grep -q "install ok installed" || fail "$p is not installed"
done
[ "$(stat -c '%U %a' /etc/memsched/coordinator.secret)" = "memsched 600" ] ||
    fail "coordinator.secret: $(stat -c '%U %a' /etc/memsched/coordinator.secret), want memsched 600"
[ "$(stat -c '%U %a' /etc/memsched/agent.secret)" = "root 600" ] || fail "agent.secret mode"
cmp -s /etc/memsched/coordinator.key "$tmp/keys/coordinator.key" ||
    fail "the controller holds another coordinator key than the host"
cmp -s /etc/memsched/agent.key "/etc/memsched/agents/$host.key" ||
    fail "the agent's public key is not in allow_dir as $host.key"
[ ! -e "$tmp/keys/agents/$host.secret" ] && ! ls "$tmp/keys" | grep -q secret ||
    fail "a secret reached the controller"
for want in "coordinator = tcp://127.0.0.1:7400" "host_id = $host" "labels = rack=ci"; do
    grep -qx "$want" /etc/memsched/agent.conf || fail "agent.conf lacks '$want'"
done
memsched-agent --check-config >/dev/null || fail "memsched-agent --check-config"
runuser -u memsched -- memsched-coordinator --check-config >/dev/null ||
    fail "memsched-coordinator --check-config (as memsched)"
echo "packages, keys (secrets 0600, public keys carried), configs and allowlist: ok"

step "ansible-playbook again: nothing to change"
ansible-playbook -i "$tmp/inventory.ini" -c local deploy/ansible/playbook.yml >"$tmp/run2.log" 2>&1 ||
    { cat "$tmp/run2.log"; fail "the second run failed"; }
grep -A3 "PLAY RECAP" "$tmp/run2.log"
grep -q "localhost *: ok=[0-9]* *changed=0 " "$tmp/run2.log" ||
    { cat "$tmp/run2.log"; fail "the second run changed something"; }

step "purge"
purge || { cat "$tmp/purge.log"; fail "purge"; }
for path in "${left_behind[@]}"; do
    [ ! -e "$path" ] || fail "$path is left after purge"
done
if ! ps -p 1 -o comm= | grep -qx systemd; then
    echo "not checked here (systemd is not PID 1): the units' start, enable and the handlers'" \
        "reload/restart; tests/deploy/packages.sh verifies the unit files"
fi

#!/usr/bin/env bash
# check_config.sh AGENT COORDINATOR CTL SCENARIO_DIR - `--check-config` checks what a config points
# to, on both daemons: a missing key file, a missing sim scenario, a secret key readable by group
# or others, an allowlist with a bad key, a database that cannot be created. Each fails (exit 1)
# with a message naming the key and the file; a config whose files are all there says ok. Nothing
# is started, bound or created by a check.
set -euo pipefail
agent=$1 coordinator=$2 ctl=$3 scenarios=$4
work=$(mktemp -d /tmp/memsched-check-config-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/keys" "$work/allow" "$work/state"
for name in coordinator host1; do "$ctl" keygen "$name" --dir "$work/keys" >/dev/null; done
cp "$work/keys/host1.key" "$work/allow/"

# expect_fail WANT_TEXT COMMAND...: exit 1, and stderr names WANT_TEXT.
expect_fail() {
    local want=$1 out rc
    shift
    set +e
    out=$("$@" 2>&1)
    rc=$?
    set -e
    [ "$rc" -eq 1 ] || fail "$*: want exit 1, got $rc ($out)"
    grep -qF -- "$want" <<<"$out" || fail "$*: want a message naming '$want', got: $out"
}

# ---- the agent ----
agent_conf() { # agent_conf FILE [key = value lines...]
    local file=$1
    shift
    {
        echo "uri = sim:$scenarios/one_hog.json?speed=20"
        echo "state_dir = $work/state"
        echo "coordinator = tcp://127.0.0.1:7999"
        echo "coordinator_key = $work/keys/coordinator.key"
        echo "key_file = $work/keys/host1.secret"
        for line in "$@"; do echo "$line"; done
    } >"$file"
}
agent_conf "$work/agent.conf"
"$agent" --config "$work/agent.conf" --check-config | grep -q ok || fail "agent: a good config"

agent_conf "$work/a1.conf" "coordinator_key = $work/keys/missing.key"
expect_fail "coordinator_key: $work/keys/missing.key: No such file" \
    "$agent" --config "$work/a1.conf" --check-config

agent_conf "$work/a2.conf" "key_file = $work/keys/missing.secret"
expect_fail "key_file: $work/keys/missing.secret: No such file" \
    "$agent" --config "$work/a2.conf" --check-config

agent_conf "$work/a3.conf" "uri = sim:$work/missing.json?speed=20"
expect_fail "uri: $work/missing.json: No such file" "$agent" --config "$work/a3.conf" --check-config

cp "$work/keys/host1.secret" "$work/keys/open.secret"
chmod 640 "$work/keys/open.secret"
agent_conf "$work/a4.conf" "key_file = $work/keys/open.secret"
expect_fail "$work/keys/open.secret: holds a secret key but is readable by group or others" \
    "$agent" --config "$work/a4.conf" --check-config

# A key file that is not a key, and a public key where the key pair belongs.
echo "public = not-a-key" >"$work/keys/bad.key"
agent_conf "$work/a5.conf" "coordinator_key = $work/keys/bad.key"
expect_fail "$work/keys/bad.key:1: public: not a 40-character Z85 CURVE key" \
    "$agent" --config "$work/a5.conf" --check-config
agent_conf "$work/a6.conf" "key_file = $work/keys/host1.key"
expect_fail "key_file: $work/keys/host1.key: missing secret key" \
    "$agent" --config "$work/a6.conf" --check-config

agent_conf "$work/a7.conf" "state_dir = $work/no/such/state"
expect_fail "state_dir: $work/no/such/state" "$agent" --config "$work/a7.conf" --check-config

# insecure needs no keys, but a local endpoint.
agent_conf "$work/a8.conf" "insecure = true" "key_file = $work/keys/missing.secret"
"$agent" --config "$work/a8.conf" --check-config | grep -q ok || fail "agent: insecure on loopback"
agent_conf "$work/a9.conf" "insecure = true" "coordinator = tcp://10.1.2.3:7400"
expect_fail "coordinator: tcp://10.1.2.3:7400: insecure=true is only allowed on loopback" \
    "$agent" --config "$work/a9.conf" --check-config

# No coordinator: its keys are not needed.
agent_conf "$work/a10.conf" "coordinator = " "key_file = $work/keys/missing.secret"
"$agent" --config "$work/a10.conf" --check-config | grep -q ok || fail "agent: no coordinator"

# ---- the coordinator ----
coord_check() {
    "$coordinator" "listen=tcp://127.0.0.1:7999" "control=ipc://$work/run/control.sock" \
        "key_file=$work/keys/coordinator.secret" "allow_dir=$work/allow" "db=$work/fleet.db" \
        "$@" --check-config
}
coord_check | grep -q "configuration ok" || fail "coordinator: a good config"
[ ! -e "$work/fleet.db" ] && [ ! -e "$work/run" ] || fail "coordinator: the check created files"

expect_fail "key_file: $work/keys/missing.secret: No such file" \
    coord_check "key_file=$work/keys/missing.secret"
expect_fail "$work/keys/open.secret: holds a secret key but is readable by group or others" \
    coord_check "key_file=$work/keys/open.secret"
expect_fail "allow_dir: $work/missing-allow: No such file" coord_check "allow_dir=$work/missing-allow"
cp "$work/keys/bad.key" "$work/allow/rogue.key"
expect_fail "allow_dir: $work/allow/rogue.key:1: public" coord_check
rm "$work/allow/rogue.key"
expect_fail "db: $work/no/such/dir/fleet.db cannot be created" \
    coord_check "db=$work/no/such/dir/fleet.db"
expect_fail "control: ipc://$work/no/such/control.sock" \
    coord_check "control=ipc://$work/no/such/control.sock"
# A tcp:// control endpoint reads the operators' allowlist.
expect_fail "admin_allow_dir: $work/missing-admins: No such file" \
    coord_check "control=tcp://127.0.0.1:7998" "admin_allow_dir=$work/missing-admins"
# insecure agents need neither the key pair nor the allowlist.
coord_check insecure=true "key_file=$work/keys/missing.secret" "allow_dir=$work/missing-allow" |
    grep -q "configuration ok" || fail "coordinator: insecure on loopback"
echo "check_config: all checks passed"

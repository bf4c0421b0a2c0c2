# lib.sh - what the netns scripts share (sourced after tests/lib/daemons.sh, or alone by the
# soak): the prerequisites, namespaces made and always deleted, a hub namespace with a bridge,
# and a veth pair from a namespace to that bridge. Names carry the caller's tag, so runs never
# collide; addresses exist only inside the namespaces.

# Root and ip(8): a local run without them skips (77), CI fails.
netns_prereq() {
    local why=""
    [ "$(id -u)" -eq 0 ] || why="network namespaces need root"
    [ -n "$why" ] || command -v ip >/dev/null || why="no ip(8) (iproute2)"
    [ -z "$why" ] && return 0
    [ "${CI:-}" = "true" ] && { echo "FAIL: $why (CI runs as root with iproute2)"; exit 1; }
    echo "SKIP: $why"
    exit 77
}

made_ns=()
add_ns() { ip netns add "$1" && made_ns+=("$1"); }
# Every namespace made, deleted (their veths go with them); call it from the EXIT trap.
netns_delete_all() {
    local ns
    for ns in "${made_ns[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
}

# netns_hub NS: the hub namespace, with the bridge every namespace is plugged into.
netns_hub() {
    ns_hub=$1
    add_ns "$ns_hub"
    ip -n "$ns_hub" link add br0 type bridge
    ip -n "$ns_hub" link set br0 up
}

# plug NS NAME ADDR: a veth from NS (v0, ADDR/24) to the hub's bridge (NAME on the hub's side).
plug() {
    local ns=$1 name=$2 addr=$3
    ip link add "t$name" type veth peer name "h$name"
    ip link set "t$name" netns "$ns" name v0
    ip link set "h$name" netns "$ns_hub"
    ip -n "$ns_hub" link set "h$name" master br0 up
    ip -n "$ns" addr add "$addr/24" dev v0
    ip -n "$ns" link set v0 up
    ip -n "$ns" link set lo up
}

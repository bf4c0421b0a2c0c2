# eventually.sh - eventually S CMD...: run CMD every 0.2 s until it succeeds, for at most S seconds
# (source it). Alone, for scripts with their own clean-up (the soak); daemons.sh sources it.

eventually() {
    local seconds=$1
    shift
    for _ in $(seq $((seconds * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}

#!/bin/sh
# gen-config.sh PROGRAM OUT - the config file a package ships: PROGRAM's own --print-config
# (every key, its help and default) under a header, so the file cannot drift from the program.
# -c /dev/null: the built-in defaults, whatever /etc/memsched holds on the build machine.
set -eu
program=$1
out=$2
name=$(basename "$program")
{
    printf "# %s configuration: %s.conf(5).\n" "$name" "$name"
    printf '# Generated at build time from `%s --print-config`: every key is set to its\n' "$name"
    printf '# default. Check a change with `%s --check-config` before a reload.\n' "$name"
    printf '# The keys it names (key_file, ...) are made with `memschedctl keygen`: see %s(8), KEYS.\n' "$name"
    "$program" -c /dev/null --print-config | sed '1{/^# .*(effective values)$/d}'
} > "$out.tmp"
mv "$out.tmp" "$out"

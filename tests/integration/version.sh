#!/usr/bin/env bash
# version.sh VERSION PROGRAM... - every program answers --version with "NAME VERSION" (the
# project's version from CMake) on stdout and exit 0, without reading any config.
set -euo pipefail
want=$1
shift
for prog in "$@"; do
    name=$(basename "$prog")
    out=$("$prog" --version) || { echo "FAIL: $name --version exits non-zero" >&2; exit 1; }
    [ "$out" = "$name $want" ] || { echo "FAIL: $name --version: want '$name $want', got '$out'" >&2; exit 1; }
done
echo "version: all checks passed"

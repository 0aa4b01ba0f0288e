#!/usr/bin/env bash
# check_units.sh BIN_DIR UNIT... - the systemd units in examples/systemd/
# are valid: systemd-analyze verify finds nothing wrong with them once
# ExecStart points at the binaries just built (the units name the
# installed paths). Exit 77 (skipped) where systemd-analyze is missing.
set -euo pipefail
bin=$1; shift
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
status=0
for unit in "$@"; do
    name=$(basename "$unit")
    # a template is checked as an instance of it
    [[ $name == *@.service ]] && name=${name/@./@test.}
    sed "s#/usr/local/bin/walcast-node#$bin/node/walcast-node#; s#/usr/local/bin/walcast-broker#$bin/broker/walcast-broker#" \
        "$unit" >"$work/$name"
    grep -q '^Type=notify$' "$work/$name" || { echo "$name: not Type=notify"; status=1; }
    grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$work/$name" || { echo "$name: no SIGHUP reload"; status=1; }
    out=$(systemd-analyze verify --man=false "$work/$name" 2>&1 || true)
    if [ -n "$out" ]; then echo "$name: $out"; status=1; else echo "$name: ok"; fi
done
exit $status

#!/usr/bin/env bash
# build.sh - set up, build, and run walcast's demo or test suite.
#
#   ./build.sh demo    install what is missing, build, run the walk-through
#   ./build.sh test    install what is missing, build (plain and ASan+UBSan),
#                      run every test in both builds
#   ./build.sh build   install what is missing and build (plain) only
#
# Needs Debian (apt) and root (or sudo) only when packages are missing.
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$(pwd)
JOBS=$(nproc 2>/dev/null || echo 2)
PACKAGES="cmake make gcc pkg-config libzmq3-dev libczmq-dev libmsgpack-dev libcmocka-dev libmicrohttpd-dev"

usage() {
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

install_missing() {
    local missing=""
    for pkg in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $pkg"
    done
    [ -z "$missing" ] && return 0
    echo "build.sh: installing:$missing"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # shellcheck disable=SC2086
    $sudo apt-get install -y -qq --no-install-recommends $missing
}

build() {  # build DIR [cmake args...]
    local dir=$1; shift
    cmake -S "$ROOT" -B "$ROOT/$dir" "$@" >/dev/null
    cmake --build "$ROOT/$dir" -j "$JOBS"
}

run_tests() {  # run_tests DIR
    echo "build.sh: running the tests in $1"
    ctest --test-dir "$ROOT/$1" -j "$JOBS" --output-on-failure
}

case "${1:-}" in
    demo)
        install_missing
        build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
        "$ROOT/build/examples/walkthrough"
        ;;
    test)
        install_missing
        build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
        build build-asan -DCMAKE_BUILD_TYPE=Debug -DWALCAST_SANITIZE=ON
        run_tests build
        run_tests build-asan
        ;;
    build)
        install_missing
        build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
        ;;
    -h|--help|help)
        usage
        ;;
    *)
        usage >&2
        exit 2
        ;;
esac

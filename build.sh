#!/usr/bin/env bash
# build.sh - set up, build, and run walcast's demo or test suite.
#
#   ./build.sh demo    install what is missing, build, run the walk-through
#   ./build.sh test    install what is missing, build (plain and ASan+UBSan),
#                      run every test in both builds, then fuzz each decoder
#                      for a few seconds (clang, libFuzzer: build-fuzz)
#   ./build.sh build   install what is missing and build (plain) only
#   ./build.sh fuzz [SECONDS]
#                      build the fuzz targets and run each for SECONDS
#                      (default 300), one after the other (fuzz/README.md)
#
# Needs Debian (apt) and root (or sudo) only when packages are missing.
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$(pwd)
JOBS=$(nproc 2>/dev/null || echo 2)
PACKAGES="cmake make gcc pkg-config libzmq3-dev libczmq-dev libmsgpack-dev libcmocka-dev
          libmicrohttpd-dev"
# Only for the fuzz targets (clang) and the status page's browser test
FUZZ_PACKAGES="clang libclang-rt-dev"
TEST_PACKAGES="$FUZZ_PACKAGES chromium"

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

install_missing() {
    local missing=""
    for pkg in $PACKAGES "$@"; do
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

# The fuzz targets: a project of their own (fuzz/), built with clang; the
# gcc builds above are not touched.
build_fuzz() {
    CC=clang cmake -S "$ROOT/fuzz" -B "$ROOT/build-fuzz" >/dev/null
    cmake --build "$ROOT/build-fuzz" -j "$JOBS"
}

# Run each target for $1 seconds on its seeds and its work corpus (new
# inputs go to build-fuzz/work, crashes to build-fuzz/artifacts).
run_fuzz() {  # run_fuzz SECONDS
    local status=0
    for target in codec wal snapshot; do
        echo "build.sh: fuzzing $target for $1 s"
        mkdir -p "$ROOT/build-fuzz/work/$target" "$ROOT/build-fuzz/artifacts"
        "$ROOT/build-fuzz/fuzz_$target" -max_total_time="$1" -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$ROOT/build-fuzz/artifacts/$target-" \
            "$ROOT/build-fuzz/work/$target" "$ROOT/fuzz/corpus/$target" || status=1
    done
    [ "$status" -eq 0 ] || echo "build.sh: a target failed; its input is in build-fuzz/artifacts" >&2
    return "$status"
}

case "${1:-}" in
    demo)
        install_missing
        build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
        "$ROOT/build/examples/walkthrough"
        ;;
    test)
        # shellcheck disable=SC2086
        install_missing $TEST_PACKAGES
        build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
        build build-asan -DCMAKE_BUILD_TYPE=Debug -DWALCAST_SANITIZE=ON
        run_tests build
        run_tests build-asan
        build_fuzz
        run_tests build-fuzz
        ;;
    fuzz)
        seconds=${2:-300}
        case "$seconds" in
            ''|*[!0-9]*) echo "build.sh: fuzz takes a number of seconds, not '$seconds'" >&2
                         exit 2 ;;
        esac
        # shellcheck disable=SC2086
        install_missing $FUZZ_PACKAGES
        build_fuzz
        run_fuzz "$seconds"
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

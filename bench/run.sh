#!/usr/bin/env bash
#  run.sh - walcast's throughput and replication-lag benchmark (bench/README.md).
#
#  Starts a primary and two replicas on loopback in a temp dir, times
#  `walcast load` of N "key:%08d <100-byte value>" lines, then polls
#  `walcast digest` on the three nodes every ~20 ms until they agree, and
#  reports how long after the last acknowledgement they did. The plain
#  ZeroMQ baseline (walcast-zmq-baseline) runs in the same run, and walcast's
#  writes/s are reported as a ratio against its requests/s: on a noisy
#  machine the ratio means more than either figure. Then the same with
#  --fsync batch and --fsync always on fewer writes, for comparison.
#
#  It builds nothing: give it a build dir (default: build/ in the repo).
#  Everything it starts is stopped on exit, also on failure or Ctrl-C.
set -euo pipefail
export LC_ALL=C

usage () {
    cat <<'EOF'
usage: bench/run.sh [-n N] [-f N] [-p PORT] [-t SECONDS] [-k] [BUILD_DIR]

  BUILD_DIR   a configured and built tree (default: build/ in the repo root)
  -n N        writes for the --fsync never run and the zmq baseline
              (default 1000000)
  -f N        writes for the --fsync batch and --fsync always runs (default N/10)
  -p PORT     first base port (default 27100); runs use PORT, PORT+10, PORT+20,
              then +30.. and +60.. for the next clusters (127.0.0.1 only)
  -t SECONDS  give up when the replicas have not converged this long after
              the last acknowledgement (default 60)
  -k          keep the temp dir (input, WALs, node logs)
  -h          this help
EOF
}

N=1000000
NF=""
BASE=27100
CONVERGE_TIMEOUT=60
KEEP=0
POLL_US=20000           # digest poll period
while getopts ":n:f:p:t:kh" opt; do
    case $opt in
        n) N=$OPTARG ;;
        f) NF=$OPTARG ;;
        p) BASE=$OPTARG ;;
        t) CONVERGE_TIMEOUT=$OPTARG ;;
        k) KEEP=1 ;;
        h) usage; exit 0 ;;
        :) echo "run.sh: -$OPTARG needs a value" >&2; usage >&2; exit 2 ;;
        *) echo "run.sh: unknown option -$OPTARG" >&2; usage >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -gt 1 ]; then
    usage >&2
    exit 2
fi
for v in N BASE CONVERGE_TIMEOUT; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        echo "run.sh: $v must be a positive number, got '${!v}'" >&2
        exit 2
    fi
done
[ -n "$NF" ] || NF=$(( N / 10 > 0 ? N / 10 : 1 ))
if ! [[ $NF =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: -f must be a positive number, got '$NF'" >&2
    exit 2
fi
if [ $((BASE + 82)) -gt 65535 ]; then
    echo "run.sh: -p $BASE: ports up to $((BASE + 82)) are needed" >&2
    exit 2
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$REPO/build}
NODE=$BUILD/node/walcast-node
CLI=$BUILD/client/walcast
BASELINE=$BUILD/bench/walcast-zmq-baseline
for exe in "$NODE" "$CLI" "$BASELINE"; do
    if [ ! -x "$exe" ]; then
        echo "run.sh: $exe not found: build first, e.g." >&2
        echo "  cmake -S $REPO -B $BUILD -DCMAKE_BUILD_TYPE=RelWithDebInfo && cmake --build $BUILD -j2" >&2
        exit 2
    fi
done

CLK_TCK=$(getconf CLK_TCK)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/walcast-bench.XXXXXX")
PIDS=()                 # every node this script started, still running
LOAD_PID=""             # a walcast load that is running
FAILED=1                # cleared when the whole run succeeded

#  Stop the nodes given by pid: SIGTERM, then SIGKILL after 5 s.
stop_pids () {
    local pid deadline
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    deadline=$(( ${EPOCHREALTIME/./} + 5000000 ))
    for pid in "$@"; do
        while kill -0 "$pid" 2>/dev/null && [ "${EPOCHREALTIME/./}" -lt $deadline ]; do
            sleep 0.02
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: node $pid did not stop in 5 s after SIGTERM: killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
}

cleanup () {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$LOAD_PID" ]; then
        kill -TERM "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    if [ ${#PIDS[@]} -gt 0 ]; then
        stop_pids "${PIDS[@]}"
    fi
    if [ $KEEP = 1 ]; then
        echo "run.sh: kept $WORK" >&2
    elif [ $FAILED = 1 ]; then
        #  Keep the logs to look at, drop the bulk.
        rm -rf "$WORK"/input*.txt "$WORK"/*/p "$WORK"/*/r1 "$WORK"/*/r2
        echo "run.sh: failed; node and load logs are in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

die () {
    echo "run.sh: $*" >&2
    exit 1
}

#  Print the last lines of every log of a run, to explain a failure.
show_logs () {
    local f
    for f in "$WORK/$1"/*.log "$WORK/$1"/load.err; do
        [ -f "$f" ] || continue
        echo "---- $f (last 15 lines)" >&2
        tail -n 15 "$f" >&2
    done
}

#  Microseconds on the monotonic-enough wall clock, without a fork.
now_us () {
    NOW=${EPOCHREALTIME/./}
}

#  "SEQ HASH" of the node at port, or "unavailable".
digest () {
    "$CLI" --node "127.0.0.1:$1" --timeout 1000 digest 2>/dev/null || echo unavailable
}

#  Start one node in the background: start_node RUN ID PORT MODE [PRIMARY_PORT]
start_node () {
    local run=$1 id=$2 port=$3 mode=$4 primary=${5:-}
    local args=(--id "$id" --data "$WORK/$run/$id" --port "$port" --fsync "$mode")
    [ -z "$primary" ] || args+=(--replica-of "127.0.0.1:$primary")
    "$NODE" "${args[@]}" >"$WORK/$run/$id.log" 2>&1 &
    PIDS+=($!)
    STARTED+=($!)
}

#  Wait until the node at port answers DIGEST (10 s at most).
wait_ready () {
    local run=$1 id=$2 port=$3 pid=$4 deadline
    now_us
    deadline=$(( NOW + 10000000 ))
    while true; do
        if ! kill -0 "$pid" 2>/dev/null; then
            show_logs "$run"
            die "$run: node $id exited during start-up (log above)"
        fi
        if "$CLI" --node "127.0.0.1:$port" --timeout 200 digest >/dev/null 2>&1; then
            return 0
        fi
        now_us
        if [ "$NOW" -gt $deadline ]; then
            show_logs "$run"
            die "$run: node $id does not answer on 127.0.0.1:$port after 10 s"
        fi
        sleep 0.02
    done
}

#  One write, and wait until both replicas have it (10 s at most): the
#  links are up before the clock starts. warm_up RUN P0 P1 P2
warm_up () {
    local run=$1 d0 d1 d2 deadline
    if ! "$CLI" --node "127.0.0.1:$2" put bench:warm-up 1 >/dev/null 2>"$WORK/$run/warm-up.err"; then
        show_logs "$run"
        die "$run: the warm-up write failed: $(cat "$WORK/$run/warm-up.err")"
    fi
    d0=$(digest "$2")
    now_us
    deadline=$(( NOW + 10000000 ))
    while true; do
        d1=$(digest "$3")
        d2=$(digest "$4")
        if [ "$d1" = "$d0" ] && [ "$d2" = "$d0" ]; then
            return 0
        fi
        now_us
        if [ "$NOW" -gt $deadline ]; then
            show_logs "$run"
            die "$run: the replicas do not have the warm-up write after 10 s" \
                "(p '$d0', r1 '$d1', r2 '$d2')"
        fi
        sleep 0.01
    done
}

#  CPU seconds (user + system) a running process has used so far.
cpu_of_pid () {
    local stat rest f
    stat=$(<"/proc/$1/stat") || { echo 0; return; }
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    awk -v u="${f[11]}" -v s="${f[12]}" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (u + s) / hz }'
}

#  CPU seconds (user + system) of this shell's reaped children so far.
#  `times` must run in this shell, not in a $(...) subshell.
children_cpu () {
    times >"$WORK/times"
    awk 'END {
        sum = 0
        for (i = 1; i <= NF; i++) {
            split($i, ms, "m"); sub("s", "", ms[2]); sum += ms[1] * 60 + ms[2]
        }
        printf "%.3f", sum
    }' "$WORK/times"
}

#  Lines with WARN or ERROR in a run's node logs, for the report.
log_problems () {
    grep -h -E ' (WARN|WARNING|ERROR|FATAL)[: ]' "$WORK/$1"/*.log 2>/dev/null || true
}

#  One cluster run: run_cluster NAME MODE COUNT BASE_PORT
#  Sets R_SECS R_WPS R_CONV_MS R_CONV_CELL R_CONV_NOTE R_AT_ACK R_PROBLEMS.
run_cluster () {
    local run=$1 mode=$2 count=$3 port=$4
    local p0=$port p1=$((port + 10)) p2=$((port + 20))
    local input=$WORK/input.txt
    mkdir -p "$WORK/$run"
    if [ "$count" -lt "$INPUT_LINES" ]; then
        input=$WORK/input-$count.txt
        [ -f "$input" ] || head -n "$count" "$WORK/input.txt" >"$input"
    fi

    #  The primary first: a replica that connects before it listens
    #  retries only after ZeroMQ's reconnect interval (100 ms), which
    #  would show up as convergence time.
    STARTED=()
    start_node "$run" p  "$p0" "$mode"
    wait_ready "$run" p  "$p0" "${STARTED[0]}"
    start_node "$run" r1 "$p1" "$mode" "$p0"
    start_node "$run" r2 "$p2" "$mode" "$p0"
    wait_ready "$run" r1 "$p1" "${STARTED[1]}"
    wait_ready "$run" r2 "$p2" "${STARTED[2]}"
    warm_up "$run" "$p0" "$p1" "$p2"

    echo "[$run] --fsync $mode: loading $count writes into 127.0.0.1:$p0 (replicas $p1, $p2)" >&2
    local t0 t_ack load_rc=0
    local cpu0
    children_cpu >"$WORK/cpu0"
    cpu0=$(<"$WORK/cpu0")
    now_us; t0=$NOW
    #  In the background, so that a signal to this script is handled now.
    "$CLI" --node "127.0.0.1:$p0" load <"$input" \
        >"$WORK/$run/load.out" 2>"$WORK/$run/load.err" &
    LOAD_PID=$!
    wait $LOAD_PID || load_rc=$?
    LOAD_PID=""
    now_us; t_ack=$NOW
    children_cpu >"$WORK/cpu1"
    R_CPU_LOAD=$(awk -v a="$cpu0" -v b="$(<"$WORK/cpu1")" 'BEGIN { printf "%.2f", b - a }')
    if [ $load_rc -ne 0 ]; then
        show_logs "$run"
        die "$run: walcast load exited with $load_rc (logs above)"
    fi
    local acked last_seq
    read -r acked last_seq <"$WORK/$run/load.out" || true
    if [ "${acked:-}" != "$count" ]; then
        show_logs "$run"
        die "$run: walcast load acknowledged '${acked:-}' of $count writes"
    fi

    #  The primary acknowledged every write, so its digest is final; poll
    #  the two replicas (in parallel, to keep the poll short) until both
    #  show it. Convergence happened after the previous poll started and
    #  before this one ended: report the end, and the previous poll.
    local d0 d1 d2 t_round prev_ms=-1 first=1 elapsed j0 j1 j2
    R_AT_ACK=""
    while true; do
        now_us; t_round=$NOW
        if [ $first = 1 ]; then
            digest "$p0" >"$WORK/$run/digest-p" & j0=$!
        fi
        digest "$p1" >"$WORK/$run/digest-r1" & j1=$!
        digest "$p2" >"$WORK/$run/digest-r2" & j2=$!
        wait $j1 $j2
        read -r d1 <"$WORK/$run/digest-r1" || d1=unavailable
        read -r d2 <"$WORK/$run/digest-r2" || d2=unavailable
        if [ $first = 1 ]; then
            wait $j0
            read -r d0 <"$WORK/$run/digest-p" || d0=unavailable
            if [ "${d0%% *}" != "$last_seq" ]; then
                show_logs "$run"
                die "$run: the primary's digest is '$d0' after it acknowledged seq $last_seq"
            fi
        fi
        now_us
        if [ $first = 1 ]; then
            R_AT_ACK="first poll, $(( (NOW - t_ack) / 1000 )) ms after the last ack:"
            R_AT_ACK+=" r1 at seq ${d1%% *}, r2 at seq ${d2%% *} of $last_seq"
        fi
        if [ "$d0" = "$d1" ] && [ "$d0" = "$d2" ]; then
            break
        fi
        first=0
        prev_ms=$(( (t_round - t_ack) / 1000 ))
        local k ids=(p r1 r2)
        for k in 0 1 2; do
            if ! kill -0 "${STARTED[$k]}" 2>/dev/null; then
                show_logs "$run"
                die "$run: node ${ids[$k]} exited before the replicas converged (logs above)"
            fi
        done
        if [ $(( NOW - t_ack )) -gt $(( CONVERGE_TIMEOUT * 1000000 )) ]; then
            echo "run.sh: $run: digests ${CONVERGE_TIMEOUT} s after the last ack:" \
                 "p='$d0' r1='$d1' r2='$d2'" >&2
            show_logs "$run"
            die "$run: replicas did not converge within ${CONVERGE_TIMEOUT} s of the last acknowledgement"
        fi
        elapsed=$(( NOW - t_round ))
        if [ $elapsed -lt $POLL_US ]; then
            sleep "$(printf '0.%06d' $(( POLL_US - elapsed )))"
        fi
    done
    R_SECS=$(awk -v us=$(( t_ack - t0 )) 'BEGIN { printf "%.3f", us / 1e6 }')
    R_WPS=$(awk -v n="$count" -v us=$(( t_ack - t0 )) 'BEGIN { printf "%.0f", n * 1e6 / us }')
    R_CONV_MS=$(( (NOW - t_ack) / 1000 ))
    if [ $first = 1 ]; then
        R_CONV_NOTE="in step at the first poll: at most $R_CONV_MS ms"
        R_CONV_CELL="<=$R_CONV_MS"
    else
        R_CONV_NOTE="the poll that started at $prev_ms ms still differed"
        R_CONV_CELL=$R_CONV_MS
    fi
    R_PROBLEMS=$(log_problems "$run")
    #  Where the CPU went, start-up to convergence: on 2 cores, "cores
    #  busy" near 2 means the run was CPU-bound.
    local c0 c1 c2
    c0=$(cpu_of_pid "${STARTED[0]}")
    c1=$(cpu_of_pid "${STARTED[1]}")
    c2=$(cpu_of_pid "${STARTED[2]}")
    R_CPU="p $c0, r1 $c1, r2 $c2, load $R_CPU_LOAD"
    R_CPU_CORES=$(awk -v a="$c0" -v b="$c1" -v c="$c2" -v d="$R_CPU_LOAD" \
        -v us=$(( NOW - t0 )) 'BEGIN { printf "%.2f", (a + b + c + d) * 1e6 / us }')
    R_LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
    echo "[$run] $count writes acknowledged in $R_SECS s ($R_WPS/s); $R_AT_ACK" >&2
    echo "[$run] replicas converged $R_CONV_MS ms after the last acknowledgement" \
         "($R_CONV_NOTE; digest $d0)" >&2
    echo "[$run] CPU s: $R_CPU (= $R_CPU_CORES cores busy over the run;" \
         "load average now $R_LOADAVG)" >&2
    if [ -n "$R_PROBLEMS" ]; then
        echo "[$run] node logs have warnings or errors:" >&2
        printf '%s\n' "$R_PROBLEMS" | head -n 10 | sed 's/^/    /' >&2
    fi
    stop_pids "${STARTED[@]}"
    local pid keep=()
    for pid in "${PIDS[@]}"; do
        [[ " ${STARTED[*]} " == *" $pid "* ]] || keep+=("$pid")
    done
    PIDS=("${keep[@]+"${keep[@]}"}")
    [ $KEEP = 1 ] || rm -rf "$WORK/$run/p" "$WORK/$run/r1" "$WORK/$run/r2"
}

#  The plain ZeroMQ baseline: sets B_RPS (requests/s) and B_PUB (received/s).
run_baseline () {
    local out
    out=$("$BASELINE" -n "$N" --pub) || die "walcast-zmq-baseline failed: $out"
    printf '%s\n' "$out" | while IFS= read -r line; do echo "[$1] $line"; done >&2
    B_RPS=$(echo "$out" | sed -n 's/^zmq-baseline: .*(\([0-9]*\)\/s)$/\1/p')
    B_PUB=$(echo "$out" | sed -n 's/^zmq-baseline pub: .*(\([0-9]*\)\/s)$/\1/p')
    B_PUB_LINE=$(echo "$out" | sed -n 's/^zmq-baseline pub: //p')
    if [ -z "$B_RPS" ] || [ -z "$B_PUB" ]; then
        die "cannot parse the baseline's output: $out"
    fi
}

ratio () {
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'
}

#  Input: N (or NF, if larger) lines of "key:%08d <100-byte value>".
INPUT_LINES=$(( N > NF ? N : NF ))
LOADAVG_START=$(cut -d' ' -f1 /proc/loadavg)
echo "run.sh: $(nproc) cores, build $BUILD, temp dir $WORK" >&2
echo "run.sh: generating $INPUT_LINES input lines" >&2
awk -v n="$INPUT_LINES" 'BEGIN {
    pad = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    pad = pad pad
    for (i = 0; i < n; i++)
        printf "key:%08d v%08d-%s\n", i, i, substr(pad, 1, 90)
}' >"$WORK/input.txt"

#  The baseline right before and right after the main run; the ratio is
#  against their mean, so a machine that got slower in between shows up
#  as two different baselines rather than as a wrong ratio.
declare -A PROBLEMS      # run -> its WARN/ERROR log lines
run_baseline baseline-1
B1_RPS=$B_RPS; B1_PUB=$B_PUB; B1_PUB_LINE=$B_PUB_LINE
run_cluster never never "$N" "$BASE"
NEVER_SECS=$R_SECS; NEVER_WPS=$R_WPS; NEVER_CONV=$R_CONV_MS; NEVER_CELL=$R_CONV_CELL
NEVER_NOTE=$R_CONV_NOTE; NEVER_AT_ACK=$R_AT_ACK; PROBLEMS[never]=$R_PROBLEMS
NEVER_CPU=$R_CPU; NEVER_CORES=$R_CPU_CORES
run_baseline baseline-2
B2_RPS=$B_RPS; B2_PUB=$B_PUB; B2_PUB_LINE=$B_PUB_LINE
BASE_RPS=$(( (B1_RPS + B2_RPS) / 2 ))
BASE_PUB=$(( (B1_PUB + B2_PUB) / 2 ))

run_cluster batch batch "$NF" $((BASE + 30))
BATCH_SECS=$R_SECS; BATCH_WPS=$R_WPS; BATCH_CELL=$R_CONV_CELL; BATCH_AT_ACK=$R_AT_ACK
PROBLEMS[batch]=$R_PROBLEMS
run_cluster always always "$NF" $((BASE + 60))
ALWAYS_SECS=$R_SECS; ALWAYS_WPS=$R_WPS; ALWAYS_CELL=$R_CONV_CELL; ALWAYS_AT_ACK=$R_AT_ACK
PROBLEMS[always]=$R_PROBLEMS

#  Replication throughput: writes on both replicas per second, from the
#  first write to convergence.
NEVER_REPL=$(awk -v n="$N" -v s="$NEVER_SECS" -v c="$NEVER_CONV" \
    'BEGIN { printf "%.0f", n / (s + c / 1000) }')

row () {
    printf '%-24s %8s %8s %9s %8s %10s\n' "$@"
}
echo
echo "walcast bench, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, loopback, 1 primary + 2 replicas"
row "run" "writes" "seconds" "per s" "ratio" "conv. ms"
row "zmq baseline, before" "$N" "" "$B1_RPS" "" ""
row "zmq baseline, after" "$N" "" "$B2_RPS" "" ""
row "walcast --fsync never" "$N" "$NEVER_SECS" "$NEVER_WPS" "$(ratio "$NEVER_WPS" "$BASE_RPS")" "$NEVER_CELL"
row "walcast --fsync batch" "$NF" "$BATCH_SECS" "$BATCH_WPS" "$(ratio "$BATCH_WPS" "$BASE_RPS")" "$BATCH_CELL"
row "walcast --fsync always" "$NF" "$ALWAYS_SECS" "$ALWAYS_WPS" "$(ratio "$ALWAYS_WPS" "$BASE_RPS")" "$ALWAYS_CELL"
echo
echo "ratio walcast writes/s ÷ zmq baseline requests/s: $(ratio "$NEVER_WPS" "$BASE_RPS")" \
     "($NEVER_WPS / $BASE_RPS, the mean of the two baselines)"
echo "replicas converged $NEVER_CONV ms after the last acknowledgement" \
     "(--fsync never; $NEVER_NOTE; $NEVER_AT_ACK)"
echo "replicated writes/s, first write to convergence: $NEVER_REPL;" \
     "÷ zmq pub->sub received/s ($BASE_PUB): $(ratio "$NEVER_REPL" "$BASE_PUB")"
echo "CPU seconds of the --fsync never run (start-up to convergence): $NEVER_CPU;" \
     "$NEVER_CORES of $(nproc) cores busy on average"
echo "1-minute load average: $LOADAVG_START at the start, $(cut -d' ' -f1 /proc/loadavg) at the end" \
     "(well above 0 at the start: something else was busy, or a run just before)"
echo "zmq pub->sub: before: $B1_PUB_LINE; after: $B2_PUB_LINE"
echo "fsync (writes/s ÷ never's): batch $(ratio "$BATCH_WPS" "$NEVER_WPS")," \
     "always $(ratio "$ALWAYS_WPS" "$NEVER_WPS")"
echo "  batch: $BATCH_AT_ACK"
echo "  always: $ALWAYS_AT_ACK"
for run in never batch always; do
    if [ -n "${PROBLEMS[$run]}" ]; then
        echo "the $run run's node logs have $(printf '%s\n' "${PROBLEMS[$run]}" | wc -l)" \
             "WARN/ERROR lines (shown above; -k keeps the logs)"
    fi
done
FAILED=0

#!/usr/bin/env bash
# The same redis-server driven by redis-benchmark and by kvbench, in one run: same number of
# connections (-c), pipelining (-P 1 and -P 16), key space (-r) and value size (-d), SET and
# GET. Prints each tool's throughput, the ratio kvbench / redis-benchmark, and the client's
# CPU seconds (user + system) per million operations. kvbench records full HDR histograms
# (and writes its results directory) while doing it; redis-benchmark keeps its own coarser
# latency histogram.
#
# Usage: scripts/loadgen-vs-redis-benchmark.sh
# Environment: CONNECTIONS (50), KEYSPACE (100000), VALUE_SIZE (1024), PIPELINES ("1 16"),
#   OPS_P1 (operations per test without pipelining, 200000), OPS_PIPELINED (1000000),
#   KVBENCH_THREADS (1: both clients then get one thread, redis-benchmark's default),
#   REPEAT (3: each test runs this many times per tool, alternating, and the best run of
#   each tool is printed, so a busy machine's pauses hit both tools alike),
#   PORT (a free port), KEEP (1 keeps the work directory).
# Needs redis-server and redis-benchmark (Debian: redis-server, redis-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS=${CONNECTIONS:-50}
KEYSPACE=${KEYSPACE:-100000}
VALUE_SIZE=${VALUE_SIZE:-1024}
PIPELINES=${PIPELINES:-"1 16"}
OPS_P1=${OPS_P1:-200000}
OPS_PIPELINED=${OPS_PIPELINED:-1000000}
KVBENCH_THREADS=${KVBENCH_THREADS:-1}
REPEAT=${REPEAT:-3}
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}

for tool in redis-server redis-benchmark; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-server redis-tools)" >&2; exit 1; }
done
if (( CONNECTIONS % KVBENCH_THREADS != 0 )); then
    echo "CONNECTIONS ($CONNECTIONS) must be a multiple of KVBENCH_THREADS ($KVBENCH_THREADS)" >&2
    exit 1
fi

echo "== building kvbench (release)"
cargo build --release -p loadgen --bin kvbench >&2
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
KVBENCH="$target_dir/release/kvbench"

work=$(mktemp -d)
redis_pid=""
cleanup() {
    [[ -n "$redis_pid" ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    [[ "${KEEP:-0}" == 1 ]] && echo "work directory kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
    redis-cli -p "$PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$PORT" ping >/dev/null

# Runs a command, its output to $1; prints "user+system seconds" of it and its children.
timed() {
    local output=$1
    shift
    local TIMEFORMAT='%U %S'
    { time "$@" >"$output" 2>&1 ; } 2>"$output.time"
    awk '{ printf "%.3f", $1 + $2 }' "$output.time"
}

redis_benchmark() { # test pipeline ops -> "ops/s cpu_seconds"
    local test=$1 pipeline=$2 ops=$3 out="$work/rb-$1-$2"
    local cpu
    cpu=$(timed "$out" redis-benchmark -h 127.0.0.1 -p "$PORT" -c "$CONNECTIONS" \
        -P "$pipeline" -r "$KEYSPACE" -d "$VALUE_SIZE" -n "$ops" -t "$test" --csv)
    local rps
    rps=$(awk -F'"' 'toupper($2) == toupper("'"$test"'") { print $4 }' "$out")
    [[ -n "$rps" ]] || { echo "redis-benchmark failed:" >&2; cat "$out" >&2; exit 1; }
    echo "$rps $cpu"
}

kvbench_phase() { # phase test pipeline ops -> "ops/s cpu_seconds"
    local phase=$1 test=$2 pipeline=$3 ops=$4 out="$work/kv-$1-$2-$3"
    local mix
    case "$test" in
        set) mix=(-p readproportion=0 -p updateproportion=1) ;;
        get) mix=(-p readproportion=1 -p updateproportion=0) ;;
    esac
    local cpu
    cpu=$(timed "$out" "$KVBENCH" "$phase" -P workloads/workloada \
        -p recordcount="$KEYSPACE" -p operationcount="$ops" -p fieldcount=1 \
        -p fieldlength="$VALUE_SIZE" -p requestdistribution=uniform "${mix[@]}" \
        --hosts "127.0.0.1:$PORT" --target-kind redis --threads "$KVBENCH_THREADS" \
        --connections $((CONNECTIONS / KVBENCH_THREADS)) --pipeline "$pipeline" \
        --results "$work/results" --run-name "$phase-$test-p$pipeline")
    local rps
    rps=$(awk -F', ' '$1 == "[OVERALL]" && $2 == "Throughput(ops/sec)" { print $3 }' "$out")
    [[ -n "$rps" ]] && ! grep -q -- "-FAILED\|PARTIAL" "$out" || {
        echo "kvbench failed or had errors:" >&2; cat "$out" >&2; exit 1; }
    echo "$rps $cpu"
}

echo "== loading $KEYSPACE keys of $VALUE_SIZE bytes with kvbench (so GETs find values)"
kvbench_phase load load 16 "$KEYSPACE" >/dev/null

echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores; redis-server $(redis-server --version | awk '{print $3}')"
echo "   -c $CONNECTIONS -r $KEYSPACE -d $VALUE_SIZE; kvbench --threads $KVBENCH_THREADS" \
    "--connections $((CONNECTIONS / KVBENCH_THREADS)), HDR histograms on; best of $REPEAT runs each"
echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %3s %10s | %16s %10s | %16s %10s | %6s\n' \
    test P ops "redis-benchmark" "cpu s/Mop" "kvbench" "cpu s/Mop" ratio
for pipeline in $PIPELINES; do
    ops=$OPS_PIPELINED
    (( pipeline == 1 )) && ops=$OPS_P1
    for test in set get; do
        rb_rps=0 rb_cpu=0 kv_rps=0 kv_cpu=0
        for _ in $(seq "$REPEAT"); do
            read -r rps cpu < <(redis_benchmark "$test" "$pipeline" "$ops")
            if awk -v a="$rps" -v b="$rb_rps" 'BEGIN { exit !(a > b) }'; then rb_rps=$rps rb_cpu=$cpu; fi
            read -r rps cpu < <(kvbench_phase run "$test" "$pipeline" "$ops")
            if awk -v a="$rps" -v b="$kv_rps" 'BEGIN { exit !(a > b) }'; then kv_rps=$rps kv_cpu=$cpu; fi
        done
        awk -v t="$test" -v p="$pipeline" -v n="$ops" -v rr="$rb_rps" -v rc="$rb_cpu" \
            -v kr="$kv_rps" -v kc="$kv_cpu" 'BEGIN {
            printf "%-4s %3d %10d | %16.0f %10.2f | %16.0f %10.2f | %5.2fx\n",
                toupper(t), p, n, rr, rc / n * 1e6, kr, kc / n * 1e6, kr / rr }'
    done
done

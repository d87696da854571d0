#!/usr/bin/env bash
# Side-by-side comparison of kvnode builds or settings, with redis-server as the reference,
# in one run: each target serves its own data directory, and the redis-benchmark tests go
# to the targets in turn (round after round), so machine load hits them alike. Prints,
# per test and target, the server CPU microseconds per request (CPU seconds per million
# requests, the steadier figure on a shared machine), context switches per request,
# requests/s, p99 ms, and redis-benchmark's own CPU microseconds per request and how busy
# that kept it (CPU time over wall time: near 100% the client, one thread, is what limits
# the test, whatever the server).
#
#   scripts/kvnode-side-by-side.sh "OLD/kvnode" "target/release/kvnode"
#   scripts/kvnode-side-by-side.sh "target/release/kvnode --connection-threads 0" \
#       "target/release/kvnode --connection-threads 1"
#
# Each argument is a kvnode command line (a binary and flags; `--config` is added).
# Settings (environment): REQUESTS=200000 PIPELINES="1 16" TESTS="set get" ROUNDS=1
# CLIENTS=50 VALUE_SIZE=1024 KEYSPACE=100000 BLOCK_CACHE_MB=256 MEMTABLE_MB=256 (as in
# scripts/node-vs-redis.sh), ROW_CACHE_MB (unset: the binary's default; set it only when
# every target knows `row_cache_size_bytes`), SKIP_REDIS=1 leaves redis-server out,
# EXTRA_TOML adds lines to each node's [engine] section, EXTRA_TOML_1, EXTRA_TOML_2, ... to
# the first, second, ... node's only (e.g. EXTRA_TOML_2="row_cache_size_bytes = 0").
# PROFILE="get 16" records every target with perf (call graphs) during that test and
# pipeline in the first round, and prints afterwards, per target, its heaviest functions
# (self time) and the share of its samples spent waking the client (`sock_def_readable`,
# charged to the server's `sendto` on loopback). PROFILE_FRAMES=12 functions each.
set -euo pipefail

REQUESTS=${REQUESTS:-200000}
PIPELINES=${PIPELINES:-"1 16"}
TESTS=${TESTS:-"set get"}
ROUNDS=${ROUNDS:-1}
CLIENTS=${CLIENTS:-50}
VALUE_SIZE=${VALUE_SIZE:-1024}
KEYSPACE=${KEYSPACE:-100000}
BLOCK_CACHE_MB=${BLOCK_CACHE_MB:-256}
MEMTABLE_MB=${MEMTABLE_MB:-256}
REDIS_PORT=${REDIS_PORT:-29481}
NODE_BASE_PORT=${NODE_BASE_PORT:-29681}

if [ $# -eq 0 ]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
for tool in redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install redis-tools)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/kvnode-sbs.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

names=() ports=() servers=()
if [ "${SKIP_REDIS:-0}" != 1 ]; then
    command -v redis-server >/dev/null || { echo "redis-server is needed (or SKIP_REDIS=1)" >&2; exit 1; }
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$work" --appendonly yes \
        --appendfsync everysec --save "" >"$work/redis.log" 2>&1 &
    pids+=($!)
    names+=(redis) ports+=("$REDIS_PORT") servers+=($!)
fi
index=0
for command_line in "$@"; do
    port=$((NODE_BASE_PORT + 2 * index))
    extra_toml=EXTRA_TOML_$((index + 1))
    cat >"$work/node$index.toml" <<EOF
node_id = "solo"
datacenter = "dc1"
client_address = "127.0.0.1:$port"
peer_address = "127.0.0.1:$((port + 1))"
data_dir = "$work/node$index"
[engine]
block_cache_size_bytes = $((BLOCK_CACHE_MB << 20))
memtable_size_bytes = $((MEMTABLE_MB << 20))
${ROW_CACHE_MB:+row_cache_size_bytes = $((ROW_CACHE_MB << 20))}
${EXTRA_TOML:-}
${!extra_toml:-}
[engine.wal.sync]
policy = "periodic"
interval_ms = 1000
EOF
    # shellcheck disable=SC2086 # the command line is split into binary and flags on purpose
    $command_line --config "$work/node$index.toml" >"$work/node$index.log" 2>&1 &
    pids+=($!)
    names+=("#$((index + 1)) $command_line") ports+=("$port") servers+=($!)
    index=$((index + 1))
done
for i in "${!ports[@]}"; do
    for _ in $(seq 1 300); do
        redis-cli -p "${ports[$i]}" PING 2>/dev/null | grep -q PONG && continue 2
        sleep 0.1
    done
    echo "${names[$i]} did not start:" >&2
    tail -n 5 "$work"/*.log >&2
    exit 1
done

clock_ticks=$(getconf CLK_TCK)
# User + system CPU ticks of a process (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# Voluntary + involuntary context switches of every thread of a process.
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { s += $2 } END { print s + 0 }'; }

TIMEFORMAT='%U %S'
printf '%-5s %-4s %9s %9s %12s %9s %9s %8s  %s\n' test P "cpu us" "ctxsw" "requests/s" "p99 ms" \
    "client us" "busy" target
for round in $(seq 1 "$ROUNDS"); do
    for pipeline in $PIPELINES; do
        for test in $TESTS; do
            for i in "${!ports[@]}"; do
                pid=${servers[$i]}
                recorder=""
                if [ "$round" = 1 ] && [ "${PROFILE:-}" = "$test $pipeline" ]; then
                    perf record -F 999 -g -o "$work/profile$i.data" -p "$pid" >/dev/null 2>&1 &
                    recorder=$!
                    sleep 0.3
                fi
                cpu_before=$(cpu_ticks "$pid") switches_before=$(switches "$pid")
                # The client's own CPU (user + system), from bash's `time`.
                { time redis-benchmark -p "${ports[$i]}" -t "$test" -n "$REQUESTS" \
                    -c "$CLIENTS" -d "$VALUE_SIZE" -r "$KEYSPACE" -P "$pipeline" --csv \
                    >"$work/bench.csv" 2>/dev/null; } 2>"$work/bench.time"
                line=$(tail -n 1 "$work/bench.csv")
                client=$(awk '{ print $1 + $2 }' "$work/bench.time")
                cpu_after=$(cpu_ticks "$pid") switches_after=$(switches "$pid")
                if [ -n "$recorder" ]; then
                    kill -INT "$recorder"
                    wait "$recorder" || true
                fi
                awk -v d=$((cpu_after - cpu_before)) -v c=$((switches_after - switches_before)) \
                    -v t="$clock_ticks" -v n="$REQUESTS" -v test="$test" -v p="$pipeline" \
                    -v line="$line" -v name="${names[$i]}" -v client="$client" 'BEGIN {
                        split(line, f, "\",\""); gsub(/"/, "", f[2]); gsub(/"/, "", f[7]);
                        printf "%-5s %-4s %9.2f %9.2f %12s %9s %9.2f %7.0f%%  %s\n", test, p,
                            d / t * 1e6 / n, c / n, f[2], f[7], client * 1e6 / n,
                            client * f[2] / n * 100, name }'
            done
        done
    done
done

[ -n "${PROFILE:-}" ] || exit 0
for i in "${!ports[@]}"; do
    [ -s "$work/profile$i.data" ] || { echo "no profile of ${names[$i]} (is perf installed?)"; continue; }
    # (Pipelines cut short by head or exit end their perf report early: not an error.)
    waking=$(perf report -i "$work/profile$i.data" --children --sort sym --stdio -g none \
        2>/dev/null | awk '$NF == "sock_def_readable" { print $1; exit }' || true)
    echo
    echo "$PROFILE, ${names[$i]}: waking the client ${waking:-0%} of samples; heaviest functions (self):"
    perf report -i "$work/profile$i.data" --no-children --sort sym --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -n "${PROFILE_FRAMES:-12}" || true
done

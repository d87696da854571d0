#!/usr/bin/env bash
# node-vs-redis.sh: drive redis-server, one kvnode (N=1) and a 3-node kvnode cluster
# (N=3, W=2, R=2) with the same redis-benchmark flags in one run, and print requests per
# second, p50 and p99 for each, with the ratios the issue sets targets on:
#   one node >= 1.0x Redis's throughput with p99 no higher;
#   the 3-node quorum cluster >= 0.5x the single node.
#
# Usage: scripts/node-vs-redis.sh
#   Environment overrides: REQUESTS=1000000 CLIENTS=50 VALUE_SIZE=1024 KEYSPACE=100000
#   PIPELINES="1 16" TESTS=set,get BLOCK_CACHE_MB=256 MEMTABLE_MB=256 ROW_CACHE_MB=160
#   SKIP_CLUSTER=0 ROUNDS=1
#   WORKDIR=dir (kept; default a temp dir, removed).
#   SKIP_CLUSTER=1 leaves the 3-node cluster out (redis and one kvnode only: quicker, and
#   less load on a shared machine when only the single-node target is being worked on).
#   ROUNDS=3 repeats every test three times and judges by each ratio's median: a single
#   round's ratios move by tens of percent from run to run on a shared machine.
#
# The column cpu s/Mop is the CPU seconds the server spent per million requests (for the
# cluster, its three nodes together), read from /proc before and after each test: on a
# machine shared with other work it is the steadier figure of the two. The last column
# splits the cluster's among its nodes (n1/n2/n3; redis-benchmark talks to n1, which
# coordinates every request and holds a replica).
#
# Durability is matched: redis-server runs with appendonly yes and appendfsync everysec;
# the kvnodes sync their commit log at least every 1000 ms (engine wal.sync periodic), the
# same promise. Memory is matched too: Redis holds the whole data set in memory (KEYSPACE
# values of VALUE_SIZE bytes, about 100 MB by default), so the kvnodes get a block cache that
# can hold it (BLOCK_CACHE_MB, default 256; the engine's own default is 32 MiB, which turns
# most GETs into block reads and zstd decompression) and a memtable that can hold it
# (MEMTABLE_MB, default 256; the engine's default 64 MiB flushes and compacts every ~90k
# SETs of this data set). The commit log stays bounded by wal.max_unflushed_bytes (default
# 4 x the memtable: about one flush per million 1 KiB SETs) and synced every second, so
# durability is unchanged. That flush comes during the SETs, so most GETs then miss the
# memtable; the row cache (ROW_CACHE_MB, default 160; the engine's default is 32 MiB) can
# hold every row of the data set as Redis does (each row is charged its ~1 KiB stored value,
# key and about 160 bytes: about 125 MB for 100k keys, plus headroom for uneven shards), and
# the flush fills it, so those GETs are served from memory without a table read. Everything
# listens on 127.0.0.1 only, and every process this script starts is stopped on exit.
set -euo pipefail

REQUESTS=${REQUESTS:-1000000}
CLIENTS=${CLIENTS:-50}
VALUE_SIZE=${VALUE_SIZE:-1024}
KEYSPACE=${KEYSPACE:-100000}
PIPELINES=${PIPELINES:-"1 16"}
ROUNDS=${ROUNDS:-1}
TESTS=${TESTS:-set,get}
REDIS_PORT=${REDIS_PORT:-16379}
NODE_PORT=${NODE_PORT:-17379}
CLUSTER_BASE_PORT=${CLUSTER_BASE_PORT:-18379}
BLOCK_CACHE_MB=${BLOCK_CACHE_MB:-256}
MEMTABLE_MB=${MEMTABLE_MB:-256}
ROW_CACHE_MB=${ROW_CACHE_MB:-160}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "installing redis-server and redis-tools with apt-get" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server redis-tools >&2
fi

echo "building kvnode (release)" >&2
(cd "$repo" && cargo build --release -p cluster --bin kvnode >&2)
kvnode="${CARGO_TARGET_DIR:-$repo/target}/release/kvnode"

# shellcheck source=lib/workdir.sh
. "$repo/scripts/lib/workdir.sh"
workdir_setup node-vs-redis

# Waits until something answers PING on the port, or gives up after 30 s.
wait_ready() {
    local port=$1
    for _ in $(seq 1 300); do
        if redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null | grep -q PONG; then return 0; fi
        sleep 0.1
    done
    return 1
}

engine_section() {
    cat <<EOF
[engine]
block_cache_size_bytes = $((BLOCK_CACHE_MB << 20))
memtable_size_bytes = $((MEMTABLE_MB << 20))
row_cache_size_bytes = $((ROW_CACHE_MB << 20))
[engine.wal.sync]
policy = "periodic"
interval_ms = 1000
EOF
}

# --- redis-server
mkdir -p "$work/redis"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$work/redis" --appendonly yes \
    --appendfsync everysec --save "" --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)

# --- one kvnode, N=1
cat >"$work/node.toml" <<EOF
node_id = "solo"
datacenter = "dc1"
client_address = "127.0.0.1:$NODE_PORT"
peer_address = "127.0.0.1:$((NODE_PORT + 1))"
data_dir = "$work/solo"
$(engine_section)
EOF
"$kvnode" --config "$work/node.toml" >"$work/solo.log" 2>&1 &
pids+=($!)

# --- three kvnodes, N=3 W=2 R=2
cluster_ok=1
[ "${SKIP_CLUSTER:-0}" = 1 ] && cluster_ok=0
members=""
for i in 1 2 3; do
    members+="
[[members]]
id = \"n$i\"
datacenter = \"dc1\"
client_address = \"127.0.0.$i:$CLUSTER_BASE_PORT\"
peer_address = \"127.0.0.$i:$((CLUSTER_BASE_PORT + 1))\"
"
done
for i in 1 2 3; do
    [ "$cluster_ok" = 1 ] || break
    cat >"$work/n$i.toml" <<EOF
node_id = "n$i"
datacenter = "dc1"
client_address = "127.0.0.$i:$CLUSTER_BASE_PORT"
peer_address = "127.0.0.$i:$((CLUSTER_BASE_PORT + 1))"
data_dir = "$work/n$i"
replication = 3
default_consistency = "QUORUM"
$members
$(engine_section)
EOF
    "$kvnode" --config "$work/n$i.toml" >"$work/n$i.log" 2>&1 &
    pids+=($!)
done

wait_ready "$REDIS_PORT" || { echo "redis-server did not start:"; tail "$work/redis.log"; exit 1; }
wait_ready "$NODE_PORT" || { echo "kvnode did not start:"; tail "$work/solo.log"; exit 1; }
for i in 1 2 3; do
    [ "${SKIP_CLUSTER:-0}" = 1 ] && break
    if ! redis-cli -h "127.0.0.$i" -p "$CLUSTER_BASE_PORT" PING 2>/dev/null | grep -q PONG; then
        sleep 2
        redis-cli -h "127.0.0.$i" -p "$CLUSTER_BASE_PORT" PING 2>/dev/null | grep -q PONG || cluster_ok=0
    fi
done
if [ "${SKIP_CLUSTER:-0}" = 1 ]; then
    echo "SKIP_CLUSTER=1: the 3-node rows are left out." >&2
elif [ "$cluster_ok" = 0 ]; then
    echo "the 3-node cluster did not start; its rows are left out. Its logs:" >&2
    tail -n 3 "$work"/n?.log >&2
elif redis-cli -h 127.0.0.1 -p "$CLUSTER_BASE_PORT" CLUSTER.TOPOLOGY 2>&1 | grep -q "ERR"; then
    # A node that does not report a topology is serving alone: measuring it would present a
    # single node as a replicated cluster.
    echo "kvnode does not coordinate a cluster yet (CLUSTER.TOPOLOGY unavailable); the" \
        "3-node rows are left out." >&2
    cluster_ok=0
fi

# CPU time (user + system, in clock ticks) the given processes have used so far.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat, counted after the command name's ")".
        total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$total"
}
clock_ticks=$(getconf CLK_TCK)

# Runs one redis-benchmark test against host:port with pipeline P and prints "rps p50 p99
# cpu per-node": cpu is the CPU seconds the server processes (the PIDs after the test) spent
# per million requests, per-node the same for each process ("n1/n2/n3" CPU us per request
# for the cluster, "-" for one process). Unlike requests/s, CPU per request moves less when
# other work shares the machine.
bench() {
    local host=$1 port=$2 pipeline=$3 test=$4 pid
    shift 4
    local -a before=() after=()
    for pid in "$@"; do before+=("$(cpu_ticks "$pid")"); done
    redis-benchmark -h "$host" -p "$port" -t "$test" -n "$REQUESTS" -c "$CLIENTS" \
        -d "$VALUE_SIZE" -r "$KEYSPACE" -P "$pipeline" --csv 2>/dev/null |
        awk -F'","' 'NR > 1 { gsub(/"/, "", $NF); print $2, $5, $7 }' |
        while read -r r p50 p99value; do
            for pid in "$@"; do after+=("$(cpu_ticks "$pid")"); done
            echo "$r $p50 $p99value $(printf '%s\n' "${before[@]}" | paste -d' ' - \
                <(printf '%s\n' "${after[@]}") | awk -v t="$clock_ticks" -v n="$REQUESTS" '
                { d = $2 - $1; total += d; each = each (NR > 1 ? "/" : "") \
                    sprintf("%.1f", d / t * 1e6 / n) }
                END { printf "%.1f %s", total / t * 1e6 / n, (NR > 1 ? each : "-") }')"
        done
}

# The median of the numbers given.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2];
        else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

targets=("redis 127.0.0.1 $REDIS_PORT ${pids[0]}" "kvnode 127.0.0.1 $NODE_PORT ${pids[1]}")
[ "$cluster_ok" = 1 ] &&
    targets+=("cluster 127.0.0.1 $CLUSTER_BASE_PORT ${pids[2]} ${pids[3]} ${pids[4]}")

# Each test runs against every target back to back (the first target rotating from round to
# round), so the figures a ratio compares were taken within a minute or two of each other:
# a shared machine's speed drifts by tens of percent over the length of a whole run. With
# ROUNDS > 1 everything is repeated and the verdict uses each ratio's median over the rounds.
printf '%-5s %-8s %-4s %-10s %12s %9s %9s %10s  %s\n' round test P target "requests/s" \
    "p50 ms" "p99 ms" "cpu s/Mop" "per node"
declare -A rps p99 cpu
for round in $(seq 1 "$ROUNDS"); do
    for pipeline in $PIPELINES; do
        for test in ${TESTS//,/ }; do
            test=${test^^}
            for index in "${!targets[@]}"; do
                target=${targets[$(((index + round - 1) % ${#targets[@]}))]}
                read -r name host port servers <<<"$target"
                # shellcheck disable=SC2086 # one PID per word
                read -r r p50 p99value cpuvalue per_node < <(bench "$host" "$port" "$pipeline" \
                    "${test,,}" $servers) || continue
                printf '%-5s %-8s %-4s %-10s %12s %9s %9s %10s  %s\n' "$round" "$test" \
                    "$pipeline" "$name" "$r" "$p50" "$p99value" "$cpuvalue" "$per_node"
                rps["$test/$pipeline/$name/$round"]=$r
                p99["$test/$pipeline/$name/$round"]=$p99value
                cpu["$test/$pipeline/$name/$round"]=$cpuvalue
            done
        done
    done
done

# Per round: kvnode/redis and cluster/kvnode throughput, kvnode's p99 less Redis's, CPU per
# request ratios; then the median of each over the rounds.
echo
if [ "$ROUNDS" -gt 1 ]; then
    echo "medians over $ROUNDS rounds of each round's ratio (p99: kvnode's minus Redis's)"
fi
echo "ratios (targets: kvnode >= 1.0x Redis with p99 no higher; cluster >= 0.5x kvnode)"
for pipeline in $PIPELINES; do
    for test in ${TESTS//,/ }; do
        test=${test^^}
        node_ratios=() cluster_ratios=() p99_gaps=() node_p99s=() redis_p99s=()
        node_cpu=() cluster_cpu=()
        for round in $(seq 1 "$ROUNDS"); do
            redis=${rps["$test/$pipeline/redis/$round"]:-}
            node=${rps["$test/$pipeline/kvnode/$round"]:-}
            cluster=${rps["$test/$pipeline/cluster/$round"]:-}
            [ -n "$redis" ] && [ -n "$node" ] || continue
            rp=${p99["$test/$pipeline/redis/$round"]}
            np=${p99["$test/$pipeline/kvnode/$round"]}
            node_ratios+=("$(awk -v n="$node" -v r="$redis" 'BEGIN { printf "%.4f", n / r }')")
            p99_gaps+=("$(awk -v n="$np" -v r="$rp" 'BEGIN { printf "%.3f", n - r }')")
            node_p99s+=("$np")
            redis_p99s+=("$rp")
            rc=${cpu["$test/$pipeline/redis/$round"]}
            nc=${cpu["$test/$pipeline/kvnode/$round"]}
            awk -v r="$rc" 'BEGIN { exit !(r > 0) }' &&
                node_cpu+=("$(awk -v n="$nc" -v r="$rc" 'BEGIN { printf "%.4f", n / r }')")
            if [ -n "$cluster" ]; then
                cluster_ratios+=("$(awk -v c="$cluster" -v n="$node" \
                    'BEGIN { printf "%.4f", c / n }')")
                cc=${cpu["$test/$pipeline/cluster/$round"]}
                awk -v n="$nc" 'BEGIN { exit !(n > 0) }' &&
                    cluster_cpu+=("$(awk -v c="$cc" -v n="$nc" 'BEGIN { printf "%.4f", c / n }')")
            fi
        done
        [ "${#node_ratios[@]}" -gt 0 ] || continue
        line=$(awk -v ratio="$(median "${node_ratios[@]}")" -v gap="$(median "${p99_gaps[@]}")" \
            -v np="$(median "${node_p99s[@]}")" -v rp="$(median "${redis_p99s[@]}")" 'BEGIN {
            printf "kvnode/redis %.2fx %s, p99 %s vs %s %s", ratio,
                (ratio >= 1 ? "PASS" : "FAIL"), np, rp, (gap <= 0 ? "PASS" : "FAIL") }')
        if [ "${#cluster_ratios[@]}" -gt 0 ]; then
            line+=$(awk -v ratio="$(median "${cluster_ratios[@]}")" 'BEGIN {
                printf "; cluster/kvnode %.2fx %s", ratio, (ratio >= 0.5 ? "PASS" : "FAIL") }')
        else
            line+="; cluster: not run"
        fi
        if [ "${#node_cpu[@]}" -gt 0 ]; then
            line+=$(awk -v n="$(median "${node_cpu[@]}")" \
                'BEGIN { printf "; cpu/req kvnode %.2fx redis", n }')
            [ "${#cluster_cpu[@]}" -gt 0 ] && line+=$(awk -v c="$(median "${cluster_cpu[@]}")" \
                'BEGIN { printf ", cluster %.2fx kvnode", c }')
        fi
        printf '%-4s P=%-3s %s\n' "$test" "$pipeline" "$line"
    done
done

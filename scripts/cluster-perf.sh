#!/usr/bin/env bash
# cluster-perf.sh: where a 3-node kvnode cluster (N=3, W=2, R=2, the settings of
# node-vs-redis.sh) spends its CPU under redis-benchmark, and whether a change moved it.
#
# Usage:
#   scripts/cluster-perf.sh profile [KVNODE]
#       One cluster; fills it with SETs, then records each node with perf (DWARF call graphs)
#       during one redis-benchmark test and prints CPU us per request per node and n1's
#       heaviest cluster/engine frames with their inclusive share (n1 coordinates every
#       request: redis-benchmark talks to it). perf.data files are kept in WORKDIR.
#   scripts/cluster-perf.sh syscalls [KVNODE]
#       One cluster, filled alike; counts each node's system calls of a few kinds
#       (sched_yield, futex, sendto, recvfrom, pwrite64, epoll_wait), its context switches
#       and its page faults with `perf stat` during one redis-benchmark test, and prints
#       them per request. Spinning on a contended lock shows as sched_yield; threads waking
#       each other as futex and context switches; memory returned to the OS and faulted
#       back in as page faults.
#   scripts/cluster-perf.sh allocs [KVNODE]
#       One cluster, filled alike; counts each node's heap allocations and frees per request
#       (uprobes on `__rust_alloc` and `mi_free`, with `perf probe`: root, and KVNODE must
#       be the kvnode binary itself, not a wrapper) during ALLOC_REQUESTS (default 20000)
#       requests. A uprobe costs microseconds per call, so the requests/s it prints say
#       nothing; the counts are exact. Every allocation is a cache miss on a cold free
#       block more often than not (`_mi_page_malloc_zero`, 8-13% of n1's samples).
#   scripts/cluster-perf.sh ab KVNODE_A KVNODE_B
#       Two clusters up together (A on 127.0.0.1-3, B on the same addresses, other ports),
#       filled alike; RUNS alternating redis-benchmark runs against each; prints every run
#       and the medians of requests/s and of CPU us per request (all three nodes). Run it
#       twice with A and B swapped: on a shared machine the same binary against itself has
#       differed by about 12% in median CPU, so smaller differences are not shown this way.
#
# Environment: TEST=get (or set) P=16 REQUESTS=200000 RUNS=6 CLIENTS=50 VALUE_SIZE=1024
#   KEYSPACE=100000 BASE_PORT=32160 WORKDIR=dir (kept; default a temp dir, removed).
#   FILL=300000: SETs (-P 16) each cluster takes before any measured run. Each SET logs about
#   VALUE_SIZE bytes, and a node flushes its memtable when its commit log reaches 1 GiB, so
#   FILL=1200000 measures the state after a flush (node-vs-redis.sh's 1M-request tests reach
#   it), where a write's read of the old version can miss the memtable.
#   KVNODE defaults to target/release/kvnode, built with `cargo build --release -p cluster
#   --bin kvnode` (`cargo build --release` at the workspace root does not build it).
# Everything listens on 127.0.0.1-3 only; every process started here is stopped on exit.
set -euo pipefail

TEST=${TEST:-get}
P=${P:-16}
REQUESTS=${REQUESTS:-200000}
RUNS=${RUNS:-6}
CLIENTS=${CLIENTS:-50}
VALUE_SIZE=${VALUE_SIZE:-1024}
KEYSPACE=${KEYSPACE:-100000}
BASE_PORT=${BASE_PORT:-32160}
FILL=${FILL:-300000}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-}
case "$mode" in
profile | syscalls | allocs) [ $# -le 2 ] || { echo "usage: $0 $mode [KVNODE]" >&2; exit 2; } ;;
ab) [ $# -eq 3 ] || { echo "usage: $0 ab KVNODE_A KVNODE_B" >&2; exit 2; } ;;
*) echo "usage: $0 profile [KVNODE] | $0 syscalls [KVNODE] | $0 allocs [KVNODE] | $0 ab KVNODE_A KVNODE_B" >&2; exit 2 ;;
esac
for tool in redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install redis-tools)" >&2; exit 1; }
done
[ "$mode" != ab ] && { command -v perf >/dev/null || { echo "perf is needed" >&2; exit 1; }; }

default_kvnode() {
    (cd "$repo" && cargo build --release -p cluster --bin kvnode >&2)
    echo "${CARGO_TARGET_DIR:-$repo/target}/release/kvnode"
}

# shellcheck source=lib/workdir.sh
. "$repo/scripts/lib/workdir.sh"
workdir_setup cluster-perf

# start_cluster NAME KVNODE PORT: three nodes n1-n3 on 127.0.0.1-3:PORT (peers PORT+1),
# filled with SETs; their PIDs go to pids (stopped on exit) and to started. Not run in a
# subshell, so that both arrays reach the caller.
started=()
start_cluster() {
    local name=$1 kvnode=$2 port=$3 i members=""
    started=()
    for i in 1 2 3; do
        members+="
[[members]]
id = \"n$i\"
datacenter = \"dc1\"
client_address = \"127.0.0.$i:$port\"
peer_address = \"127.0.0.$i:$((port + 1))\"
"
    done
    for i in 1 2 3; do
        cat >"$work/$name-n$i.toml" <<EOF
node_id = "n$i"
datacenter = "dc1"
client_address = "127.0.0.$i:$port"
peer_address = "127.0.0.$i:$((port + 1))"
data_dir = "$work/$name-n$i"
replication = 3
default_consistency = "QUORUM"
$members
[engine]
block_cache_size_bytes = $((256 << 20))
memtable_size_bytes = $((256 << 20))
row_cache_size_bytes = $((160 << 20))
[engine.wal.sync]
policy = "periodic"
interval_ms = 1000
EOF
        "$kvnode" --config "$work/$name-n$i.toml" >"$work/$name-n$i.log" 2>&1 &
        pids+=($!)
        started+=($!)
    done
    for _ in $(seq 1 300); do
        if redis-cli -h 127.0.0.1 -p "$port" PING 2>/dev/null | grep -q PONG; then
            redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$FILL" -c "$CLIENTS" \
                -d "$VALUE_SIZE" -r "$KEYSPACE" -P 16 -q >/dev/null 2>&1
            return 0
        fi
        sleep 0.1
    done
    echo "cluster $name did not start; its logs are in $work" >&2
    return 1
}

ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
clock_ticks=$(getconf CLK_TCK)

# run_test PORT PIDS...: one redis-benchmark test; prints "requests/s cpu-total n1/n2/n3".
run_test() {
    local port=$1 pid rps
    shift
    local -a before=() after=()
    for pid in "$@"; do before+=("$(ticks "$pid")"); done
    rps=$(redis-benchmark -h 127.0.0.1 -p "$port" -t "$TEST" -n "$REQUESTS" -c "$CLIENTS" \
        -d "$VALUE_SIZE" -r "$KEYSPACE" -P "$P" --csv 2>/dev/null | awk -F'","' 'NR > 1 { print $2 }')
    for pid in "$@"; do after+=("$(ticks "$pid")"); done
    echo "$rps $(paste -d' ' <(printf '%s\n' "${before[@]}") <(printf '%s\n' "${after[@]}") |
        awk -v t="$clock_ticks" -v n="$REQUESTS" '{ d = $2 - $1; total += d;
            each = each (NR > 1 ? "/" : "") sprintf("%.1f", d / t * 1e6 / n) }
            END { printf "%.1f %s", total / t * 1e6 / n, each }')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# count_events EVENTS: counts EVENTS (perf stat) on each node of `nodes` during one
# redis-benchmark test, into $work/n1-3.stat; sets rps, cpu and each as run_test prints them.
count_events() {
    local i counter
    local -a counters=()
    for i in 0 1 2; do
        perf stat -x, -e "$1" -o "$work/n$((i + 1)).stat" -p "${nodes[$i]}" >/dev/null 2>&1 &
        counters+=($!)
    done
    sleep 0.5
    read -r rps cpu each < <(run_test "$BASE_PORT" "${nodes[@]}")
    for counter in "${counters[@]}"; do kill -INT "$counter"; done
    for counter in "${counters[@]}"; do wait "$counter" || true; done
}

# print_counts PREFIX DIGITS: each node's counts per request, PREFIX cut from event names.
print_counts() {
    local i
    echo "per request:"
    for i in 1 2 3; do
        awk -F, -v n="$REQUESTS" -v node="n$i" -v prefix="$1" -v digits="$2" '$1 ~ /^[0-9]/ {
            name = $3; if (index(name, prefix) == 1) name = substr(name, length(prefix) + 1)
            line = line sprintf(" %s %." digits "f", name, $1 / n) }
            END { print node ":" line }' "$work/n$i.stat"
    done
}

if [ "$mode" = syscalls ]; then
    kvnode=${2:-$(default_kvnode)}
    start_cluster one "$kvnode" "$BASE_PORT"
    nodes=("${started[@]}")
    events=sched_yield,futex,sendto,recvfrom,pwrite64,epoll_wait
    tracepoints=$(echo "$events" | sed 's/\([a-z_0-9]*\)/syscalls:sys_enter_\1/g')
    count_events "$tracepoints,context-switches,page-faults"
    echo "$TEST -P $P, $REQUESTS requests: $rps requests/s; CPU us per request $cpu (n1/n2/n3 $each)"
    print_counts syscalls:sys_enter_ 3
    exit 0
fi

if [ "$mode" = allocs ]; then
    kvnode=${2:-$(default_kvnode)}
    ALLOC_REQUESTS=${ALLOC_REQUESTS:-20000}
    start_cluster one "$kvnode" "$BASE_PORT"
    nodes=("${started[@]}")
    # Probes of our own group, removed on exit (after the workdir's cleanup stops the nodes).
    perf probe -q -d 'cluster_perf:*' 2>/dev/null || true
    perf probe -q -x "$kvnode" --add 'cluster_perf:alloc=__rust_alloc' ||
        { echo "perf probe could not add a uprobe on $kvnode's __rust_alloc" >&2; exit 1; }
    perf probe -q -x "$kvnode" --add 'cluster_perf:free=mi_free' ||
        { perf probe -q -d 'cluster_perf:*' || true; echo "no uprobe on mi_free" >&2; exit 1; }
    trap 'workdir_cleanup; perf probe -q -d "cluster_perf:*" 2>/dev/null || true' EXIT
    REQUESTS=$ALLOC_REQUESTS
    count_events cluster_perf:alloc,cluster_perf:free
    echo "$TEST -P $P, $REQUESTS requests (under uprobes: $rps requests/s)"
    print_counts cluster_perf: 2
    exit 0
fi

if [ "$mode" = profile ]; then
    kvnode=${2:-$(default_kvnode)}
    start_cluster one "$kvnode" "$BASE_PORT"
    nodes=("${started[@]}")
    recorders=()
    for i in 0 1 2; do
        perf record -F 999 --call-graph dwarf,16384 -o "$work/n$((i + 1)).perf.data" \
            -p "${nodes[$i]}" >/dev/null 2>&1 &
        recorders+=($!)
    done
    sleep 0.5
    read -r rps cpu each < <(run_test "$BASE_PORT" "${nodes[@]}")
    for recorder in "${recorders[@]}"; do kill -INT "$recorder"; done
    for recorder in "${recorders[@]}"; do wait "$recorder" || true; done
    echo "$TEST -P $P, $REQUESTS requests: $rps requests/s; CPU us per request $cpu (n1/n2/n3 $each)"
    echo "n1's heaviest cluster/engine frames (inclusive share of n1's samples):"
    perf report -i "$work/n1.perf.data" --children --sort sym --stdio 2>/dev/null |
        grep -E '^ +[0-9.]+%' | grep -E 'cluster::|engine::' | head -n "${FRAMES:-40}"
    [ -n "${WORKDIR:-}" ] && echo "perf.data files: $work/n{1,2,3}.perf.data"
    exit 0
fi

start_cluster a "$2" "$BASE_PORT"
a_nodes=("${started[@]}")
start_cluster b "$3" "$((BASE_PORT + 10))"
b_nodes=("${started[@]}")
printf '%-4s %-3s %12s %10s  %s\n' run side "requests/s" "cpu us/req" "n1/n2/n3"
: >"$work/runs"
for run in $(seq 1 "$RUNS"); do
    for side in A B; do
        if [ "$side" = A ]; then
            read -r rps cpu each < <(run_test "$BASE_PORT" "${a_nodes[@]}")
        else
            read -r rps cpu each < <(run_test "$((BASE_PORT + 10))" "${b_nodes[@]}")
        fi
        printf '%-4s %-3s %12s %10s  %s\n' "$run" "$side" "$rps" "$cpu" "$each"
        echo "$side $rps $cpu" >>"$work/runs"
    done
done
for side in A B; do
    printf '%s median: %s requests/s, %s CPU us per request\n' "$side" \
        "$(awk -v s="$side" '$1 == s { print $2 }' "$work/runs" | median)" \
        "$(awk -v s="$side" '$1 == s { print $3 }' "$work/runs" | median)"
done

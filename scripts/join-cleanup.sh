#!/usr/bin/env bash
# join-cleanup.sh: what a join moves and what CLUSTER.CLEANUP gives back, at scale.
#
# Three kvnodes (N=3, QUORUM, the engine settings of node-vs-redis.sh) on 127.0.0.1-3 are
# filled with FILL SETs of VALUE_SIZE bytes over KEYSPACE keys (redis-benchmark -P 16);
# each runs CLUSTER.CLEANUP COMPACT (nothing to drop yet: the sizes to compare with); a
# fourth node on 127.0.0.4 joins (CLUSTER.JOIN, its reply printed); then each old node
# runs CLUSTER.CLEANUP COMPACT in turn, each while redis-benchmark reads (GET -P 1,
# REQUESTS requests) through it, after a read run of the same length without a cleanup.
# Prints each node's data directory size (du) after the fill, after the join and after its
# cleanup (see sizes below), each cleanup's reply, and the reads per second without and
# during it.
#
# Usage: scripts/join-cleanup.sh [KVNODE]
# Environment: FILL=1000000 KEYSPACE=1000000 VALUE_SIZE=1024 REQUESTS=200000 CLIENTS=50
#   BASE_PORT=32260 SYNC=periodic (the nodes' commit-log sync: periodic every 1000 ms,
#   always, or none) WORKDIR=dir (kept; default a temp dir, removed). Needs about
#   8 x KEYSPACE x VALUE_SIZE bytes of free disk (commit logs included).
# Everything listens on 127.0.0.1-4 only; every process started here is stopped on exit.
set -euo pipefail

FILL=${FILL:-1000000}
KEYSPACE=${KEYSPACE:-1000000}
VALUE_SIZE=${VALUE_SIZE:-1024}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
BASE_PORT=${BASE_PORT:-32260}
SYNC=${SYNC:-periodic}
case "$SYNC" in
periodic) sync_lines='policy = "periodic"
interval_ms = 1000' ;;
always | none) sync_lines="policy = \"$SYNC\"" ;;
*) echo "SYNC must be periodic, always or none" >&2; exit 2 ;;
esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for tool in redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install redis-tools)" >&2; exit 1; }
done
if [ $# -ge 1 ]; then
    kvnode=$1
else
    (cd "$repo" && cargo build --release -p cluster --bin kvnode >&2)
    kvnode=${CARGO_TARGET_DIR:-$repo/target}/release/kvnode
fi

# shellcheck source=lib/workdir.sh
. "$repo/scripts/lib/workdir.sh"
workdir_setup join-cleanup

port=$BASE_PORT
member() {
    printf '\n[[members]]\nid = "n%s"\ndatacenter = "dc1"\nclient_address = "127.0.0.%s:%s"\npeer_address = "127.0.0.%s:%s"\n' \
        "$1" "$1" "$port" "$1" "$((port + 1))"
}
# config I MEMBERS JOINING: node nI's configuration file.
config() {
    cat >"$work/n$1.toml" <<EOF
node_id = "n$1"
datacenter = "dc1"
client_address = "127.0.0.$1:$port"
peer_address = "127.0.0.$1:$((port + 1))"
data_dir = "$work/n$1"
replication = 3
default_consistency = "QUORUM"
request_timeout_ms = 2000
joining = $3
$2
[engine]
block_cache_size_bytes = $((256 << 20))
memtable_size_bytes = $((256 << 20))
row_cache_size_bytes = $((160 << 20))
[engine.wal.sync]
$sync_lines
EOF
}
start() {
    "$kvnode" --config "$work/n$1.toml" >"$work/n$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 600); do
        redis-cli -h "127.0.0.$1" -p "$port" PING 2>/dev/null | grep -q PONG && return 0
        sleep 0.1
    done
    echo "n$1 did not start; its log is $work/n$1.log" >&2
    exit 1
}
# sizes WHEN: per node, the engine's table and memtable bytes (INFO) and the data
# directory's size on disk without its commit log and of the log (du). The log's segments
# are recycled rather than deleted (wal.recycle_segments), so the log does not shrink when a
# flush releases it; a cleanup gives back table space. redis-benchmark's values are one
# repeated byte, so the tables are far smaller than the memtable (zstd blocks).
sizes() {
    local i
    echo "$1 (MiB: tables, memtable; on disk without the log, the log):"
    for i in 1 2 3 4; do
        [ -d "$work/n$i" ] || continue
        redis-cli -h "127.0.0.$i" -p "$port" INFO engine | tr -d '\r' | awk -F: -v node="n$i" \
            -v data="$(du -sm --exclude=wal "$work/n$i" | cut -f1)" \
            -v logsize="$(du -sm "$work/n$i/wal" | cut -f1)" '
            { v[$1] = $2 }
            END { printf "  %s %.1f, %.1f; %s, %s\n", node, v["table_bytes"] / 1048576,
                v["memtable_bytes"] / 1048576, data, logsize }'
    done
}
reads() {
    redis-benchmark -h "127.0.0.$1" -p "$port" -t get -n "$REQUESTS" -c "$CLIENTS" \
        -d "$VALUE_SIZE" -r "$KEYSPACE" -P 1 --csv 2>/dev/null | awk -F'","' 'NR > 1 { print $2 }'
}

three="$(member 1)$(member 2)$(member 3)"
for i in 1 2 3; do config "$i" "$three" false; done
config 4 "$three$(member 4)" true
for i in 1 2 3; do start "$i"; done
started=$(date +%s.%N)
redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$FILL" -c "$CLIENTS" -d "$VALUE_SIZE" \
    -r "$KEYSPACE" -P 16 -q >/dev/null 2>&1
echo "filled: $FILL SETs of $VALUE_SIZE bytes over $KEYSPACE keys in $(echo "$(date +%s.%N) - $started" | bc) s"
sizes "after the fill"
# Every key is on every node of three: the cleanup drops nothing, its COMPACT puts each
# node's data in one merged table, the state the cleanups after the join end in.
for i in 1 2 3; do
    echo "CLUSTER.CLEANUP COMPACT on n$i before the join:"
    redis-cli -h "127.0.0.$i" -p "$port" CLUSTER.CLEANUP COMPACT | sed 's/^/  /'
done
sizes "before the join, compacted"
start 4
echo "CLUSTER.JOIN n4:"
redis-cli -h 127.0.0.1 -p "$port" CLUSTER.JOIN n4 dc1 "127.0.0.4:$port" "127.0.0.4:$((port + 1))" |
    sed 's/^/  /'
sizes "after the join"
for i in 1 2 3; do
    quiet=$(reads "$i")
    reads "$i" >"$work/reads-n$i" &
    reader=$!
    echo "CLUSTER.CLEANUP COMPACT on n$i:"
    redis-cli -h "127.0.0.$i" -p "$port" CLUSTER.CLEANUP COMPACT | sed 's/^/  /'
    wait "$reader"
    echo "  GET -P 1 through n$i: $quiet requests/s before, $(cat "$work/reads-n$i") during the cleanup (the read run may outlast it)"
    sizes "after n$i's cleanup"
done

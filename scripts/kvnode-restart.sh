#!/usr/bin/env bash
# kvnode-restart.sh: how long a kvnode killed with SIGKILL takes to serve again, and how
# much memory replaying its commit log takes, for one or more builds on the same data.
#
# The first target is started on an empty data directory, takes FILL SETs from
# redis-benchmark (-P 16) and one last SET of a canary key, and is killed with SIGKILL
# (nothing flushed on the way out). Its data directory is kept as the golden copy. Then,
# ROUNDS times, every target in turn starts on a fresh copy of it; the script measures the
# time from the start until the node answers PING (the log replay happens before it
# listens), reads its peak resident memory then (VmHWM: it counts the pages of the log's
# segments mapped during replay too) and its anonymous resident memory (RssAnon: heap, not
# file pages; freed heap the allocator has not returned yet counts), checks the canary's
# value, and prints the node's own recovery line.
#
#   scripts/kvnode-restart.sh OLD/kvnode target/release/kvnode
#
# Each argument is a kvnode command line (a binary and flags; `--config` is added).
# Settings (environment): FILL=900000 VALUE_SIZE=1024 KEYSPACE=100000 CLIENTS=50
# MEMTABLE_MB=256 ROUNDS=2 PORT=34160 WORKDIR=dir (kept; default a temp dir, removed).
# A node flushes its memtable when its log reaches 4 x MEMTABLE_MB, so with the defaults
# FILL=900000 (about 0.95 GB of log) is all replayed at restart.
# Listens on 127.0.0.1 only; every process started here is stopped on exit.
set -euo pipefail

FILL=${FILL:-900000}
VALUE_SIZE=${VALUE_SIZE:-1024}
KEYSPACE=${KEYSPACE:-100000}
CLIENTS=${CLIENTS:-50}
MEMTABLE_MB=${MEMTABLE_MB:-256}
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-34160}

[ $# -ge 1 ] || { echo "usage: $0 KVNODE [KVNODE...]" >&2; exit 2; }
for tool in redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install redis-tools)" >&2; exit 1; }
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/workdir.sh
. "$repo/scripts/lib/workdir.sh"
workdir_setup kvnode-restart

cat >"$work/node.toml" <<EOF
node_id = "n1"
datacenter = "dc1"
client_address = "127.0.0.1:$PORT"
peer_address = "127.0.0.1:$((PORT + 1))"
data_dir = "$work/data"
replication = 1
[[members]]
id = "n1"
datacenter = "dc1"
client_address = "127.0.0.1:$PORT"
peer_address = "127.0.0.1:$((PORT + 1))"
[engine]
memtable_size_bytes = $((MEMTABLE_MB << 20))
[engine.wal.sync]
policy = "periodic"
interval_ms = 1000
EOF

# start TARGET LOG: starts one kvnode (its PID in $node and in pids) and waits until it
# answers PING; sets $waited to the seconds that took. Gives up after 120 s.
start() {
    local started
    started=$(date +%s.%N)
    # shellcheck disable=SC2086 # a target is a command line: binary and flags
    $1 --config "$work/node.toml" >"$2" 2>&1 &
    node=$!
    pids+=("$node")
    for _ in $(seq 1 6000); do
        if redis-cli -h 127.0.0.1 -p "$PORT" PING 2>/dev/null | grep -q PONG; then
            waited=$(echo "$(date +%s.%N) - $started" | bc)
            return 0
        fi
        kill -0 "$node" 2>/dev/null || { echo "$1 exited; its log: $2" >&2; cat "$2" >&2; exit 1; }
        sleep 0.02
    done
    echo "$1 did not answer PING within 120 s; its log: $2" >&2
    exit 1
}

stop() {
    kill "-$1" "$node" 2>/dev/null || true
    wait "$node" 2>/dev/null || true
}

canary=$(head -c 48 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
start "$1" "$work/fill.log"
redis-benchmark -h 127.0.0.1 -p "$PORT" -t set -n "$FILL" -c "$CLIENTS" -d "$VALUE_SIZE" \
    -r "$KEYSPACE" -P 16 -q >/dev/null 2>&1
[ "$(redis-cli -h 127.0.0.1 -p "$PORT" SET restart:canary "$canary")" = OK ] ||
    { echo "the canary SET was not acknowledged" >&2; exit 1; }
stop KILL
mv "$work/data" "$work/golden"
log_bytes=$(du -sb "$work/golden/wal" | cut -f1)
echo "golden copy: $FILL SETs of $VALUE_SIZE bytes over $KEYSPACE keys, then SIGKILL;" \
    "$((log_bytes >> 20)) MiB of commit log"

printf '%-5s %-40s %8s %13s %9s  %s\n' round target seconds "peak RSS MiB" "anon MiB" recovery
: >"$work/results"
for round in $(seq 1 "$ROUNDS"); do
    index=0
    for target in "$@"; do
        index=$((index + 1))
        rm -rf "$work/data"
        cp -r "$work/golden" "$work/data"
        sync
        start "$target" "$work/restart-$round-$index.log"
        peak=$(awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$node/status")
        anon=$(awk '/^RssAnon:/ { printf "%d", $2 / 1024 }' "/proc/$node/status")
        value=$(redis-cli -h 127.0.0.1 -p "$PORT" GET restart:canary)
        stop TERM
        [ "$value" = "$canary" ] ||
            { echo "$target lost the canary: got '$value'" >&2; exit 1; }
        line=$(grep -m1 'commit log replayed' "$work/restart-$round-$index.log" |
            sed 's/.*commit log replayed \([0-9]*\) records.*/\1 records replayed/' || true)
        printf '%-5s %-40s %8.2f %13s %9s  %s\n' "$round" "${target:0:40}" "$waited" "$peak" \
            "$anon" "$line"
        echo "$index $waited $peak $anon" >>"$work/results"
    done
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
index=0
for target in "$@"; do
    index=$((index + 1))
    printf 'median %-40s %6.2f s to PING, %s MiB peak RSS, %s MiB anonymous\n' "${target:0:40}" \
        "$(awk -v i="$index" '$1 == i { print $2 }' "$work/results" | median)" \
        "$(awk -v i="$index" '$1 == i { print $3 }' "$work/results" | median)" \
        "$(awk -v i="$index" '$1 == i { print $4 }' "$work/results" | median)"
done

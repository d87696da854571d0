#!/usr/bin/env bash
# kvnode-restart.sh: how long a kvnode killed with SIGKILL takes to serve again, and how
# much memory its restart takes, for one or more builds on the same data.
#
# NODES=1 (the default): one node (N=1). It is started on an empty data directory, takes
# FILL SETs from redis-benchmark (-P 16) and one last SET of a canary key, and is killed
# with SIGKILL (nothing flushed on the way out). Its data directory is kept as the golden
# copy. Then, ROUNDS times, every target in turn starts on a fresh copy of it.
#
# NODES=3: a 3-node cluster (N=3, QUORUM) on 127.0.0.1-3, filled alike through n1; then n2
# is killed with SIGKILL and n1 and n3 stopped, and the three directories are the golden
# copy. Each round and target: n1 and n3 start on fresh copies and serve, then n2 starts
# on its copy while they run, which is what is timed. n2 builds its anti-entropy trees
# from everything it stores as it starts; the script also reports when its log says they
# are built, polling it every 0.1 s until TREES_WAIT seconds (default 120).
#
# For the node timed, the script measures the time from its start until it answers PING
# (the log replay happens before it listens), reads its peak resident memory then
# (VmHWM: it counts the pages of the log's segments mapped during replay too) and its
# anonymous resident memory (RssAnon: heap, not file pages; freed heap the allocator has
# not returned yet counts), checks the canary's value through it, and prints its own
# recovery line.
#
#   scripts/kvnode-restart.sh OLD/kvnode target/release/kvnode
#   NODES=3 KEYSPACE=10000000 FILL=3000000 scripts/kvnode-restart.sh OLD NEW
#
# Each argument is a kvnode command line (a binary and flags; `--config` is added); with
# NODES=3 all three nodes of a round run it.
# Settings (environment): NODES=1 FILL=900000 VALUE_SIZE=1024 KEYSPACE=100000 CLIENTS=50
# MEMTABLE_MB=256 ROUNDS=2 PORT=34160 TREES_WAIT=120 WORKDIR=dir (kept; default a temp
# dir, removed). A node flushes its memtable when its log reaches 4 x MEMTABLE_MB, so with
# the defaults FILL=900000 (about 0.95 GB of log) is all replayed at restart.
# Listens on 127.0.0.1-3 only; every process started here is stopped on exit.
set -euo pipefail

NODES=${NODES:-1}
FILL=${FILL:-900000}
VALUE_SIZE=${VALUE_SIZE:-1024}
KEYSPACE=${KEYSPACE:-100000}
CLIENTS=${CLIENTS:-50}
MEMTABLE_MB=${MEMTABLE_MB:-256}
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-34160}
TREES_WAIT=${TREES_WAIT:-120}

[ $# -ge 1 ] || { echo "usage: $0 KVNODE [KVNODE...]" >&2; exit 2; }
case "$NODES" in 1 | 3) ;; *) echo "NODES must be 1 or 3" >&2; exit 2 ;; esac
for tool in redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install redis-tools)" >&2; exit 1; }
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/workdir.sh
. "$repo/scripts/lib/workdir.sh"
workdir_setup kvnode-restart

members=""
for i in $(seq 1 "$NODES"); do
    members+="
[[members]]
id = \"n$i\"
datacenter = \"dc1\"
client_address = \"127.0.0.$i:$PORT\"
peer_address = \"127.0.0.$i:$((PORT + 1))\"
"
done
for i in $(seq 1 "$NODES"); do
    cat >"$work/n$i.toml" <<EOF
node_id = "n$i"
datacenter = "dc1"
client_address = "127.0.0.$i:$PORT"
peer_address = "127.0.0.$i:$((PORT + 1))"
data_dir = "$work/data-n$i"
replication = $NODES
default_consistency = "QUORUM"
$members
[engine]
memtable_size_bytes = $((MEMTABLE_MB << 20))
[engine.wal.sync]
policy = "periodic"
interval_ms = 1000
EOF
done

# start TARGET I LOG: starts node nI (its PID in node[I] and in pids) and waits until it
# answers PING; sets $waited to the seconds that took. Gives up after 120 s.
declare -A node
start() {
    local started pid
    started=$(date +%s.%N)
    # shellcheck disable=SC2086 # a target is a command line: binary and flags
    $1 --config "$work/n$2.toml" >"$3" 2>&1 &
    pid=$!
    node[$2]=$pid
    pids+=("$pid")
    for _ in $(seq 1 6000); do
        if redis-cli -h "127.0.0.$2" -p "$PORT" PING 2>/dev/null | grep -q PONG; then
            waited=$(echo "$(date +%s.%N) - $started" | bc)
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { echo "$1 exited; its log: $3" >&2; cat "$3" >&2; exit 1; }
        sleep 0.02
    done
    echo "$1 did not answer PING within 120 s; its log: $3" >&2
    exit 1
}

# stop SIGNAL I: stops node nI with SIGNAL and waits for it.
stop() {
    kill "-$1" "${node[$2]}" 2>/dev/null || true
    wait "${node[$2]}" 2>/dev/null || true
}

timed=$((NODES == 3 ? 2 : 1))
canary=$(head -c 48 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
for i in $(seq 1 "$NODES"); do start "$1" "$i" "$work/fill-n$i.log"; done
redis-benchmark -h 127.0.0.1 -p "$PORT" -t set -n "$FILL" -c "$CLIENTS" -d "$VALUE_SIZE" \
    -r "$KEYSPACE" -P 16 -q >/dev/null 2>&1
[ "$(redis-cli -h 127.0.0.1 -p "$PORT" SET restart:canary "$canary")" = OK ] ||
    { echo "the canary SET was not acknowledged" >&2; exit 1; }
stop KILL "$timed"
for i in $(seq 1 "$NODES"); do
    [ "$i" = "$timed" ] || stop TERM "$i"
    mv "$work/data-n$i" "$work/golden-n$i"
done
log_bytes=$(du -sb "$work/golden-n$timed/wal" | cut -f1)
echo "golden copy: $FILL SETs of $VALUE_SIZE bytes over $KEYSPACE keys on $NODES node(s)," \
    "then SIGKILL of n$timed; its commit log $((log_bytes >> 20)) MiB"

printf '%-5s %-32s %8s %13s %9s  %s\n' round target seconds "peak RSS MiB" "anon MiB" recovery
: >"$work/results"
for round in $(seq 1 "$ROUNDS"); do
    index=0
    for target in "$@"; do
        index=$((index + 1))
        for i in $(seq 1 "$NODES"); do
            rm -rf "$work/data-n$i"
            cp -r "$work/golden-n$i" "$work/data-n$i"
        done
        sync
        for i in $(seq 1 "$NODES"); do
            [ "$i" = "$timed" ] || start "$target" "$i" "$work/restart-$round-$index-n$i.log"
        done
        log=$work/restart-$round-$index-n$timed.log
        started=$(date +%s.%N)
        start "$target" "$timed" "$log"
        pid=${node[$timed]}
        peak=$(awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$pid/status")
        anon=$(awk '/^RssAnon:/ { printf "%d", $2 / 1024 }' "/proc/$pid/status")
        value=$(redis-cli -h "127.0.0.$timed" -p "$PORT" GET restart:canary)
        trees=-
        if [ "$NODES" = 3 ]; then
            for _ in $(seq 1 $((TREES_WAIT * 10))); do
                grep -q 'anti-entropy trees built' "$log" && break
                sleep 0.1
            done
            grep -q 'anti-entropy trees built' "$log" &&
                trees=$(printf '%.2f' "$(echo "$(date +%s.%N) - $started" | bc)")
        fi
        for i in $(seq 1 "$NODES"); do stop TERM "$i"; done
        [ "$value" = "$canary" ] ||
            { echo "$target lost the canary: got '$value'" >&2; exit 1; }
        line=$(grep -m1 'commit log replayed' "$log" |
            sed 's/.*commit log replayed \([0-9]*\) records.*/\1 records replayed/' || true)
        if [ "$NODES" = 3 ]; then
            line+="; trees built $(grep -m1 'anti-entropy trees built' "$log" |
                sed 's/.* depth [0-9]*, \([0-9]*\) keys in \(.*\)/(\1 keys, scan \2)/' || true)"
            line+=" ~${trees} s after the start"
        fi
        printf '%-5s %-32s %8.2f %13s %9s  %s\n' "$round" "${target:0:32}" "$waited" "$peak" \
            "$anon" "$line"
        echo "$index $waited $peak $anon $trees" >>"$work/results"
    done
done

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
index=0
for target in "$@"; do
    index=$((index + 1))
    printf 'median %-32s %6.2f s to PING, %s MiB peak RSS, %s MiB anonymous' "${target:0:32}" \
        "$(awk -v i="$index" '$1 == i { print $2 }' "$work/results" | median)" \
        "$(awk -v i="$index" '$1 == i { print $3 }' "$work/results" | median)" \
        "$(awk -v i="$index" '$1 == i { print $4 }' "$work/results" | median)"
    if [ "$NODES" = 3 ]; then
        printf ', trees built %s s after the start' \
            "$(awk -v i="$index" '$1 == i && $5 != "-" { print $5 }' "$work/results" | median)"
    fi
    echo
done

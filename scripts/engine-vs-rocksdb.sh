#!/usr/bin/env bash
# engine-vs-rocksdb.sh: run RocksDB's db_bench and `kvbench engine` with the same flags,
# one after the other, each on its own fresh database, and print a side-by-side table.
#
# Usage: scripts/engine-vs-rocksdb.sh [extra db_bench flags...]
#   Extra flags go to both tools (kvbench refuses flags it does not know, so a comparison
#   never silently differs). Defaults, overridable through the environment:
#     BENCHMARKS=fillrandom,readrandom,readmissing  NUM=500000  KEY_SIZE=16
#     VALUE_SIZE=1024  COMPRESSION=zstd  BLOOM_BITS=10  SYNC=0  SEED=1
#   SEED is the same for both tools so they write and read the same keys in the same
#   order (db_bench's own default, 0, picks a seed from the clock).
#   WORKDIR=dir keeps the databases and logs there (default: a temp dir, removed).
#   STRICT=1 exits with status 1 when a target benchmark fails its target.
#
# What is measured: each tool's own report line (db_bench format, parsed identically for
# both), peak RSS from /usr/bin/time -v, and the database size from du -sb after the run.
# Both tools keep db_bench's defaults for everything not passed (write buffer 64 MiB,
# block cache 8 MiB, WAL on, no sync); fill benchmarks time the puts only, no final flush.
set -euo pipefail

BENCHMARKS=${BENCHMARKS:-fillrandom,readrandom,readmissing}
NUM=${NUM:-500000}
KEY_SIZE=${KEY_SIZE:-16}
VALUE_SIZE=${VALUE_SIZE:-1024}
COMPRESSION=${COMPRESSION:-zstd}
BLOOM_BITS=${BLOOM_BITS:-10}
SYNC=${SYNC:-0}
SEED=${SEED:-1}
TARGET_RATIO=1.2
TARGET_BENCHMARKS="fillrandom readrandom readmissing"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    echo "installing $* with apt-get" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >&2
}

command -v db_bench >/dev/null 2>&1 || apt_install rocksdb-tools
[ -x /usr/bin/time ] || apt_install time

echo "building kvbench (release)" >&2
(cd "$repo" && cargo build --release -p loadgen --bin kvbench >&2)
kvbench="${CARGO_TARGET_DIR:-$repo/target}/release/kvbench"
[ -x "$kvbench" ] || { echo "kvbench not found at $kvbench" >&2; exit 1; }

if [ -n "${WORKDIR:-}" ]; then
    work=$WORKDIR
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/engine-vs-rocksdb.XXXXXX")
    trap 'rm -rf "$work"' EXIT
fi
rm -rf "$work/rocksdb" "$work/ours"

flags=(
    "--benchmarks=$BENCHMARKS" "--num=$NUM" "--key_size=$KEY_SIZE"
    "--value_size=$VALUE_SIZE" "--compression_type=$COMPRESSION"
    "--bloom_bits=$BLOOM_BITS" "--sync=$SYNC" "--seed=$SEED" "$@"
)

# run_tool LABEL COMMAND...: runs under /usr/bin/time -v, output in $work/LABEL.{out,err,time}.
run_tool() {
    local label=$1
    shift
    if ! /usr/bin/time -v -o "$work/$label.time" "$@" --db="$work/$label" \
        >"$work/$label.out" 2>"$work/$label.err"; then
        echo "$label failed; last lines of its output:" >&2
        tail -n 20 "$work/$label.out" "$work/$label.err" >&2
        exit 1
    fi
}

echo "flags: ${flags[*]}" >&2
echo "running RocksDB db_bench" >&2
run_tool rocksdb db_bench "${flags[@]}"
echo "running kvbench engine" >&2
run_tool ours "$kvbench" engine "${flags[@]}"

# "name : X micros/op N ops/sec ..." -> "name N"; identical for both tools.
ops_per_sec() {
    awk '$2 == ":" && $4 == "micros/op" && $6 == "ops/sec" { print $1, $5 }' "$1"
}
peak_rss_kib() {
    awk -F': ' '/Maximum resident set size/ { print $2 }' "$1"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

rocksdb_version=$(sed -n 's/^RocksDB: *version *//p' "$work/rocksdb.err" | head -n1)
rocksdb_disk=$(du -sb "$work/rocksdb" | cut -f1)
ours_disk=$(du -sb "$work/ours" | cut -f1)
rocksdb_rss=$(peak_rss_kib "$work/rocksdb.time")
ours_rss=$(peak_rss_kib "$work/ours.time")

echo
echo "RocksDB db_bench ${rocksdb_version:-(version unknown)} vs kvbench engine"
echo "flags: ${flags[*]}"
grep -h '^WARNING' "$work/rocksdb.out" | sed 's/^/db_bench: /' || true
grep -h '^WARNING' "$work/ours.out" | sed 's/^/kvbench:  /' || true
echo
printf '%-14s %16s %16s %12s  %s\n' benchmark "RocksDB ops/s" "ours ops/s" "ours/RocksDB" "target"
status=0
declare -A ours_ops=()
while read -r name ops; do ours_ops[$name]=$ops; done < <(ops_per_sec "$work/ours.out")
while read -r name rocksdb_ops; do
    ours=${ours_ops[$name]:-}
    if [ -z "$ours" ]; then
        printf '%-14s %16s %16s %12s  %s\n' "$name" "$rocksdb_ops" "-" "-" "missing"
        status=1
        continue
    fi
    ratio=$(awk -v a="$ours" -v b="$rocksdb_ops" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    verdict=""
    if [[ " $TARGET_BENCHMARKS " == *" $name "* ]]; then
        if awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { exit !(r >= t) }'; then
            verdict="PASS"
        else
            verdict="FAIL"
            status=1
        fi
    fi
    printf '%-14s %16s %16s %11sx  %s\n' "$name" "$rocksdb_ops" "$ours" "$ratio" "$verdict"
done < <(ops_per_sec "$work/rocksdb.out")
# Same seed, same key draws: the "(F of N found)" counts must agree; they differ only if
# the engine loses or invents keys, or the key streams diverged.
found() {
    sed -n 's/^\([a-z0-9_]*\) *:.*(\([0-9]* of [0-9]*\) found)$/\1 \2/p' "$1"
}
if [ "$(found "$work/rocksdb.out")" = "$(found "$work/ours.out")" ]; then
    echo "keys found: same counts in both tools ($(found "$work/ours.out" | tr '\n' ';' | sed 's/;$//; s/;/; /g'))"
else
    echo "keys found DIFFER (check the engine or the key generator):"
    paste <(found "$work/rocksdb.out" | sed 's/^/RocksDB: /') <(found "$work/ours.out" | sed 's/^/ours: /')
    status=1
fi
echo
printf '%-14s %16s %16s\n' "" "RocksDB" "ours"
printf '%-14s %16s %16s\n' "disk (du -sb)" "$(mib "$rocksdb_disk")" "$(mib "$ours_disk")"
printf '%-14s %16s %16s\n' "peak RSS" "$(mib $((rocksdb_rss * 1024)))" "$(mib $((ours_rss * 1024)))"
echo
echo "target: >= ${TARGET_RATIO}x on ${TARGET_BENCHMARKS// /, }"
if [ -n "${WORKDIR:-}" ]; then echo "logs and databases kept in $work"; fi
if [ "${STRICT:-0}" = 1 ]; then exit "$status"; fi

#!/usr/bin/env bash
# wal-recycle.sh: what recycling commit-log segments (engine wal.recycle_segments) saves,
# measured at the engine alone: `kvbench engine` fillrandom with db_bench's flags, run with
# --recycle_log_file_num=0 (retired segments deleted, every segment a new file) and with
# --recycle_log_file_num=$RECYCLE, alternately, ROUNDS times each, each run on a fresh
# database in WORKDIR. Prints every run's writes/s and CPU microseconds per write (user and
# system time of the whole process from /usr/bin/time, so flushes and compactions count)
# and the medians per setting.
#
# A fill of NUM writes of VALUE_SIZE bytes with a WRITE_BUFFER_SIZE memtable rotates the log
# at every memtable freeze (about NUM * VALUE_SIZE / WRITE_BUFFER_SIZE times), so all but the
# first segments or so can be recycled ones.
#
# First, the effect recycling relies on, without the engine: `dd` of DD_MB MiB in 16 KiB
# writes into a new file, then over the same file again (its pages now cached), ROUNDS
# times, printing the system time of each.
#
# Environment: NUM=1000000 VALUE_SIZE=1024 WRITE_BUFFER_SIZE=67108864 ROUNDS=3 RECYCLE=1
#   DD_MB=400
#   KVBENCH (default: target/release/kvbench, built here) WORKDIR (kept; default a temp dir,
#   removed on exit).
set -euo pipefail

NUM=${NUM:-1000000}
VALUE_SIZE=${VALUE_SIZE:-1024}
WRITE_BUFFER_SIZE=${WRITE_BUFFER_SIZE:-67108864}
ROUNDS=${ROUNDS:-3}
RECYCLE=${RECYCLE:-1}
DD_MB=${DD_MB:-400}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -x /usr/bin/time ] || { echo "/usr/bin/time is needed (apt-get install time)" >&2; exit 1; }
if [ -z "${KVBENCH:-}" ]; then
    (cd "$repo" && cargo build --release -p loadgen --bin kvbench >&2)
    KVBENCH=${CARGO_TARGET_DIR:-$repo/target}/release/kvbench
fi

# shellcheck source=lib/workdir.sh
. "$repo/scripts/lib/workdir.sh"
workdir_setup wal-recycle

blocks=$((DD_MB * 64))
printf '%-5s %20s %20s\n' round "dd new file sys s" "dd overwrite sys s"
for round in $(seq 1 "$ROUNDS"); do
    rm -f "$work/dd"
    new=$( { /usr/bin/time -f '%S' dd if=/dev/zero of="$work/dd" bs=16k count="$blocks" status=none; } 2>&1)
    over=$( { /usr/bin/time -f '%S' dd if=/dev/zero of="$work/dd" bs=16k count="$blocks" conv=notrunc status=none; } 2>&1)
    printf '%-5s %20s %20s\n' "$round" "$new" "$over"
done
rm -f "$work/dd"
echo

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

printf '%-5s %-8s %12s %12s\n' round recycle "writes/s" "cpu us/write"
: >"$work/runs"
for round in $(seq 1 "$ROUNDS"); do
    for recycle in 0 "$RECYCLE"; do
        db="$work/db-$round-$recycle"
        rm -rf "$db"
        /usr/bin/time -f '%U %S' -o "$work/time" "$KVBENCH" engine --benchmarks=fillrandom \
            --num="$NUM" --value_size="$VALUE_SIZE" --write_buffer_size="$WRITE_BUFFER_SIZE" \
            --recycle_log_file_num="$recycle" --db="$db" >"$work/out" 2>&1 ||
            { cat "$work/out" >&2; exit 1; }
        rate=$(awk '$1 == "fillrandom" { for (i = 1; i <= NF; i++) if ($i == "ops/sec") print $(i - 1) }' "$work/out")
        cpu=$(awk -v n="$NUM" '{ printf "%.2f", ($1 + $2) * 1e6 / n }' "$work/time")
        printf '%-5s %-8s %12s %12s\n' "$round" "$recycle" "$rate" "$cpu"
        echo "$recycle $rate $cpu" >>"$work/runs"
        rm -rf "$db"
    done
done
for recycle in 0 "$RECYCLE"; do
    printf 'recycle_log_file_num=%s median: %s writes/s, %s CPU us per write\n' "$recycle" \
        "$(awk -v r="$recycle" '$1 == r { print $2 }' "$work/runs" | median)" \
        "$(awk -v r="$recycle" '$1 == r { print $3 }' "$work/runs" | median)"
done

#!/usr/bin/env bash
# CI regression check: a short fixed sweep on the embedded cluster, compared with the
# committed results/baseline.csv by `kvbench compare`. Exit 0: no regression beyond the
# tolerances; 1: a regression (the diff says which); 2: unusable input.
#
#   scripts/ci-bench.sh                      # run the sweep, compare with results/baseline.csv
#   UPDATE_BASELINE=1 scripts/ci-bench.sh    # run it and make it the new baseline
#
# The cells: workload A at QUORUM and at R=W=1, workload B at QUORUM, each on a 2 x 2 node
# embedded cluster ({dc1 = 2, dc2 = 1}, 5 ms between datacenters), open loop at a fixed
# 1000 ops/s for 10,000 operations after a 2 s warm-up. Open loop at a rate well under what
# the cluster sustains makes throughput a check that the rate was kept, and the latency
# figures are not a function of how fast this run's machine happened to be.
#
# Tolerances (TOLERANCES below, passed to `kvbench compare --tolerance`): see the
# "CI regression checks" section of README.md for the runs they were chosen from.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
OPS=${OPS:-10000}
TOLERANCES=${TOLERANCES:-"throughput=0.10 mean=1.0 p50=1.0 p90=1.5 p99=2.5 p999=off error_rate=0.5"}

cargo build --release --locked -p loadgen >&2
BIN=${CARGO_TARGET_DIR:-target}/release/kvbench
OUT=$(mktemp -d /tmp/ci-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

cluster_config() { # consistency
    printf 'datacenters = 2\nnodes_per_datacenter = 2\nreplication = { dc1 = 2, dc2 = 1 }\n'
    printf 'inter_dc_delay = "5"\nconsistency = %s\n' "$1"
}

run_cell() { # name workload consistency
    local name=$1 workload=$2 consistency=$3
    cluster_config "$consistency" > "$OUT/$name.toml"
    echo "== $name: $workload, consistency $consistency, $RATE ops/s open loop, $OPS operations" >&2
    "$BIN" run -P "workloads/$workload" -p recordcount=2000 -p "operationcount=$OPS" \
        --threads 1 --connections 8 --target "$RATE" --warmup 2 \
        --local-config "$OUT/$name.toml" --results "$OUT" --run-name "$name" \
        > "$OUT/$name.out" 2> "$OUT/$name.err" || {
        echo "ci-bench: cell $name failed:" >&2
        tail -20 "$OUT/$name.out" "$OUT/$name.err" >&2
        exit 2
    }
    grep -E '^(READ|UPDATE|Intended-READ|Intended-UPDATE) ' "$OUT/$name.out" >&2 || true
}

run_cell a-quorum workloada '"QUORUM"'
run_cell a-one workloada '{ COUNTS = { read = 1, write = 1 } }'
run_cell b-quorum workloadb '"QUORUM"'

# One table: every cell's summary rows with a `cell` column, so compare matches by it.
candidate="$OUT/candidate.csv"
first=1
for name in a-quorum a-one b-quorum; do
    summary="$OUT/$name/summary.csv"
    if [[ $first == 1 ]]; then
        head -1 "$summary" | sed 's/$/,cell/' > "$candidate"
        first=0
    fi
    tail -n +2 "$summary" | sed "s/\$/,$name/" >> "$candidate"
done

if [[ -n "${UPDATE_BASELINE:-}" ]]; then
    mkdir -p results
    cp "$candidate" results/baseline.csv
    echo "ci-bench: results/baseline.csv updated" >&2
    exit 0
fi

args=()
for tolerance in $TOLERANCES; do args+=(--tolerance "$tolerance"); done
"$BIN" compare "${args[@]}" results/baseline.csv "$candidate"

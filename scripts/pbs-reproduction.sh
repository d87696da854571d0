#!/usr/bin/env bash
# pbs-reproduction.sh: the PBS paper's WARS validation (Bailis et al., "Probabilistically
# Bounded Staleness for Practical Partial Quorums", VLDB 2012, section 5.2) on an embedded
# emulated cluster, measured with the staleness probe and compared with `kvbench predict`.
#
# Setup (workloads/probe-pbs): N=3 replicas on 5 in-process nodes in one datacenter; every
# link delays write requests by exp(mean 20 ms) and write acks, read requests and read
# responses by exp(mean 10 ms) (the link emulator's per-kind delays); R=W=1; read repair off;
# a read goes to all N replicas and the first R replies count. Each probe writes a fresh key
# through a node that holds no replica of it (the paper sent everything through such a
# node) and reads it back through another such node 0, 1, 2, 5, ... 150 ms after the ack.
#
# It prints P(fresh | t) per delay with counts, the WARS prediction for the same delays (the
# paper's model, and the model of this store's write path, where the minting replica has the
# version before the others), and the RMSE of each. probe.csv goes to results/pbs-reproduction/.
#
# Usage: scripts/pbs-reproduction.sh [-p name=value ...]   e.g. -p probe.count=3000
#   PROFILE=dev to skip the optimised build (timers and the emulator get less precise).
# The in-process cluster shares this machine's cores: on a busy machine queueing adds delay
# the model does not know about, and reads start late (the mean_t_ms column shows by how much).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
cargo build -q --profile "$PROFILE" -p loadgen --bin kvbench
case "$PROFILE" in
    dev) directory=debug ;;
    *) directory=$PROFILE ;;
esac
target=${CARGO_TARGET_DIR:-target}
# Nodes log each peer connection they open or close; other messages still show.
"$target/$directory/kvbench" probe -P workloads/probe-pbs --out results/pbs-reproduction "$@" \
    2> >(grep -v '^peer transport .*\(connection closed\|cannot connect\|connected again\)' >&2)

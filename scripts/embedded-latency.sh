#!/usr/bin/env bash
# embedded-latency.sh: QUORUM write and read latency on the default embedded cluster
# (2 datacenters x 3 nodes in one process, N=3 as {dc1=2, dc2=1}, 30+preset:linkedin-ssd ms
# one way between datacenters) for each routing policy. It shows where a quorum needs the
# WAN: coordinators in dc2 wait for a dc1 replica (about one inter-DC round trip, ~60 ms),
# coordinators in dc1 have two local replicas (a few ms).
#
# Usage: scripts/embedded-latency.sh [OPERATIONS]   (default 200 per policy and operation)
#   PROFILE=release builds optimised (slower to build; the delays dominate either way).
set -euo pipefail
cd "$(dirname "$0")/.."
OPERATIONS=${1:-200}
PROFILE=${PROFILE:-dev}
# The nodes log each closed peer connection on stop; other messages still show.
cargo run -q --profile "$PROFILE" -p loadgen --example embedded_latency -- "$OPERATIONS" \
    2> >(grep -v '^peer transport .*connection closed' >&2)

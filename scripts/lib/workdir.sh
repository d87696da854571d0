# Sourced by the benchmark scripts: a work directory and the processes started in it.
#   workdir_setup NAME   sets $work (WORKDIR if given, kept; else a new temp dir named
#                        NAME.XXXXXX, removed on exit) and an empty $pids; on exit every
#                        pid in $pids is killed and waited for.
workdir_setup() {
    if [ -n "${WORKDIR:-}" ]; then
        work=$WORKDIR
        mkdir -p "$work"
    else
        work=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    fi
    pids=()
    trap workdir_cleanup EXIT
}

workdir_cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -n "${WORKDIR:-}" ] || rm -rf "$work"
}

#!/usr/bin/env bash
# bolt.sh — a pgfleet binary laid out by BOLT (LLVM's post-link optimizer) from a profile of the
# proxy under pgbench load.
#
# Usage: bench/bolt.sh
#
# pgfleet's per-transaction path runs through tokio and many small functions spread over a large
# binary; on a machine whose cores also run PostgreSQL and the clients, most of its CPU time goes to
# instruction-cache misses. BOLT moves the code that actually runs next to each other (hot blocks
# first, cold paths split off, functions ordered by calls), so fewer cache lines are fetched per
# transaction. The code is the same; only its layout changes.
#
# Steps: a release build linked with --emit-relocs (its own target directory), an instrumented copy
# (`llvm-bolt -instrument`), a training run of that copy against a scratch PostgreSQL cluster
# (pgbench -S and -N, simple and prepared protocol, 16 to 256 clients, about 40 s), then
# `llvm-bolt` with the profile, and a short smoke run of the result (pgbench -N and prepared -S,
# no failures, a clean exit). Prints the path of the result: target/bolt/pgfleet. The other scripts
# measure it with BENCH_BOLT=1 (or PGFLEET_BIN=target/bolt/pgfleet).
#
# Environment knobs (defaults in brackets):
#   BOLT_TARGET_DIR  cargo target directory of the relocatable build   [target/bolt-build]
#   BENCH_KEEP=1     keep the scratch directory (profile, logs)
#   PG_BIN           PostgreSQL binaries                               [/usr/lib/postgresql/15/bin]
#
# Requirements: llvm-bolt (Debian: apt-get install -y bolt-16), cargo, PostgreSQL 15 server binaries,
# pgbench + psql, python3 (free ports). As root, PostgreSQL runs as the `postgres` user.
set -euo pipefail

# shellcheck source=bench/args.sh
source "$(dirname "${BASH_SOURCE[0]}")/args.sh" "$@"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_common_tools
BOLT=$(command -v llvm-bolt || compgen -c llvm-bolt- | grep -E '^llvm-bolt-[0-9]+$' | sort -V | tail -n1 || true)
[[ -n $BOLT ]] && BOLT=$(command -v "$BOLT") ||
    die "llvm-bolt not found: install it with: apt-get install -y bolt-16"
# The real binary, not a versioned symlink: llvm-bolt finds its instrumentation runtime in ../lib.
BOLT=$(readlink -f "$BOLT")
BOLT_TARGET_DIR=${BOLT_TARGET_DIR:-$ROOT/target/bolt-build}
OUT_DIR=$ROOT/target/bolt

make_workdir pgfleet-bolt
stop_everything_on_exit

log "building pgfleet with relocations (target dir $BOLT_TARGET_DIR)"
RUSTFLAGS="-C link-arg=-Wl,--emit-relocs" cargo build --release -p pgfleet-cli \
    --target-dir "$BOLT_TARGET_DIR" >&2
INPUT=$BOLT_TARGET_DIR/release/pgfleet

log "instrumenting"
"$BOLT" "$INPUT" -instrument -o "$WORK/pgfleet.inst" \
    -instrumentation-file="$WORK/profile.fdata" -instrumentation-file-append-pid=false \
    >"$WORK/instrument.log" 2>&1 || { tail -n 20 "$WORK/instrument.log" >&2; die "llvm-bolt -instrument failed"; }

# Scratch cluster for the training run.
PG_PORT=$(free_port)
start_bench_cluster "$PG_PORT" 10

PROXY_PORT=$(free_port)
write_bench_config "$WORK/pgfleet.toml" "$PROXY_PORT" "$PG_PORT" 20
start_proxy() { # binary log -> PROXY_PID, once it accepts connections
    RUST_LOG=warn "$1" serve --config "$WORK/pgfleet.toml" >"$2" 2>&1 &
    PROXY_PID=$!
    PIDS+=("$PROXY_PID")
    for _ in $(seq 300); do
        psql -h 127.0.0.1 -p "$PROXY_PORT" -U bench -d bench -XAtc 'select 1' >/dev/null 2>&1 && return 0
        kill -0 "$PROXY_PID" 2>/dev/null || die "$1 exited (see $2)"
        sleep 0.1
    done
    die "$1 did not accept connections within 30 s (see $2)"
}
log "training run of the instrumented binary"
start_proxy "$WORK/pgfleet.inst" "$WORK/pgfleet.log"
train() { # mode workload clients seconds
    log "  pgbench -M $1 $2 -c $3 -T $4"
    pgbench -n -M "$1" "$2" -c "$3" -j 2 -T "$4" -h 127.0.0.1 -p "$PROXY_PORT" -U bench bench \
        >>"$WORK/train.log" 2>&1 || die "training pgbench failed (see $WORK/train.log)"
}
train simple -S 256 12
train simple -S 64 8
train simple -S 16 4
train simple -N 32 5
train prepared -S 64 6
train prepared -N 16 5
# A graceful exit writes the profile.
kill -TERM "$PROXY_PID"
wait "$PROXY_PID" || true
[[ -s $WORK/profile.fdata ]] || die "no profile written by the instrumented binary"

log "optimizing the layout"
mkdir -p "$OUT_DIR"
"$BOLT" "$INPUT" -o "$OUT_DIR/pgfleet.new" -data="$WORK/profile.fdata" \
    -reorder-blocks=ext-tsp -reorder-functions=hfsort+ -split-functions -split-all-cold \
    -split-eh -icf=1 -use-gnu-stack -dyno-stats >"$WORK/optimize.log" 2>&1 ||
    { tail -n 20 "$WORK/optimize.log" >&2; die "llvm-bolt failed"; }
grep -E "taken branches|executed instructions" "$WORK/optimize.log" | head -n 4 >&2 || true

# A smoke run of the result on the same cluster: it must serve both protocols without a failure.
log "checking the optimized binary"
start_proxy "$OUT_DIR/pgfleet.new" "$WORK/pgfleet-bolt.log"
train simple -N 16 3
train prepared -S 16 3
kill -TERM "$PROXY_PID"
wait "$PROXY_PID" || die "the optimized pgfleet did not exit cleanly"
mv "$OUT_DIR/pgfleet.new" "$OUT_DIR/pgfleet"
echo "$OUT_DIR/pgfleet"

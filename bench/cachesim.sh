#!/usr/bin/env bash
# cachesim.sh — how much memory a proxy touches per transaction: pgfleet and PgBouncer under
# valgrind's cache simulation (callgrind --cache-sim=yes) while pgbench -S runs through them.
#
# Usage: bench/cachesim.sh [--quick]
#
# Why: on this machine the proxy shares two cores, and their caches, with PostgreSQL and pgbench.
# What a proxy touches per transaction evicts their data too: a pgfleet build made to write 64 more
# cache lines of its own per transaction lost a quarter of its TPS at 256 clients, and PostgreSQL's
# CPU per transaction rose by a third (docs/benchmarks.md, session 15). So besides instructions,
# the number to watch is the cache lines per transaction that do not stay in a cache of a given
# size: with 256 sessions each running about every 10 ms, that is the session state a proxy touches
# per transaction.
#
# For each proxy and each simulated last-level cache size, one run: the proxy under callgrind,
# pgbench -S (simple protocol) with CACHESIM_CLIENTS clients for CACHESIM_WARM seconds, then the
# counters zeroed and dumped CACHESIM_WINDOW seconds later. Transactions in the window come from
# the server (pg_stat_database.xact_commit). Printed per transaction: instructions, misses of the
# simulated 32 KiB L1 caches (instruction, data read, data write), and lines that missed the
# simulated last-level cache. The proxy alone is simulated: PostgreSQL and pgbench do not share
# these caches here, so the figures compare proxies; they do not model the machine.
#
# PgBouncer runs with auth_type = trust here (it derives a SCRAM key per login, which under valgrind
# takes longer than pgbench waits); the logins happen before the window either way.
#
# Environment knobs (defaults in brackets):
#   CACHESIM_CLIENTS  pgbench clients                            [256]
#   CACHESIM_LL       last-level cache sizes in bytes to simulate [262144 1048576; --quick: 262144]
#   CACHESIM_WARM     seconds of load before the window          [20; --quick: 10]
#   CACHESIM_WINDOW   seconds counted                            [15; --quick: 5]
#   CACHESIM_TARGETS  proxies to measure                         [pgbouncer pgfleet]
#   PGFLEET_BIN, BENCH_BOLT=1   which pgfleet binary (as in bench/pgbench-compare.sh)
#   BENCH_KEEP=1      keep the scratch directory (callgrind files, logs)
#
# Requirements: valgrind (apt-get install -y valgrind), pgbouncer, cargo, PostgreSQL 15 server
# binaries, pgbench + psql, python3. As root, PostgreSQL and PgBouncer run as `postgres`. About
# one minute per run (four runs by default).
set -euo pipefail

# shellcheck source=bench/args.sh
source "$(dirname "${BASH_SOURCE[0]}")/args.sh" "$@"
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=${CACHESIM_CLIENTS:-256}
LL_SIZES=${CACHESIM_LL:-$(q "262144 1048576" 262144)}
WARM=${CACHESIM_WARM:-$(q 20 10)}
WINDOW=${CACHESIM_WINDOW:-$(q 15 5)}
TARGETS=${CACHESIM_TARGETS:-pgbouncer pgfleet}

require_common_tools
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    die "valgrind not found: apt-get install -y valgrind"
if [[ " $TARGETS " == *" pgbouncer "* ]]; then
    command -v pgbouncer >/dev/null || die "pgbouncer not found: apt-get install -y pgbouncer"
fi
if [[ " $TARGETS " == *" pgfleet "* ]]; then
    pgfleet_binary
fi

make_workdir pgfleet-cachesim
stop_everything_on_exit

PG_PORT=$(free_port)
start_bench_cluster "$PG_PORT" 10

PROXY_PORT=$(free_port)
write_bench_config "$WORK/pgfleet.toml" "$PROXY_PORT" "$PG_PORT" 20
# Trust: PgBouncer's SCRAM logins under valgrind would outlast pgbench's connection wait.
write_pgbouncer_config "$WORK/pgbouncer.ini" "$PROXY_PORT" "$PG_PORT" 20 trust

xacts() {
    psql -h "$WORK" -p "$PG_PORT" -U postgres -d bench -XAtc \
        "SELECT xact_commit FROM pg_stat_database WHERE datname = 'bench'"
}

# One run: prints "instructions I1 D1r D1w LL" per transaction.
measure() { # target ll_bytes
    local target=$1 ll=$2 out=$WORK/cg-$1-$2 as=() cmd vg x0 x1 bp
    if [[ $target == pgbouncer ]]; then
        as=("${RUN_AS[@]}")
        cmd=(pgbouncer "$WORK/pgbouncer.ini")
    else
        cmd=("$PGFLEET_BIN" serve --config "$WORK/pgfleet.toml")
    fi
    "${as[@]}" valgrind --tool=callgrind --cache-sim=yes --LL="$ll,16,64" \
        --callgrind-out-file="$out" "${cmd[@]}" >"$WORK/valgrind-$target-$ll.log" 2>&1 &
    vg=$!
    # (measure runs in a command substitution: it stops what it started itself.)
    for _ in $(seq 100); do
        pg_isready -q -h 127.0.0.1 -p "$PROXY_PORT" -U bench -d bench && break
        sleep 0.2
    done
    # valgrind's own PID (under runuser, $! is runuser's): callgrind_control takes it.
    local vp
    vp=$(pgrep -f -- "--callgrind-out-file=$out " | tail -n1)
    if [[ -z $vp ]]; then
        kill "$vg" 2>/dev/null || true
        die "$target did not start under valgrind (see $WORK/valgrind-$target-$ll.log)"
    fi
    pgbench -n -S -M simple -c "$CLIENTS" -j 2 -T $((WARM + WINDOW + 30)) \
        -h 127.0.0.1 -p "$PROXY_PORT" -U bench bench >"$WORK/pgbench-$target-$ll.log" 2>&1 &
    bp=$!
    sleep "$WARM"
    "${as[@]}" callgrind_control -z "$vp" >/dev/null 2>&1
    x0=$(xacts)
    sleep "$WINDOW"
    "${as[@]}" callgrind_control -d "$vp" >/dev/null 2>&1
    x1=$(xacts)
    kill "$bp" 2>/dev/null || true
    wait "$bp" 2>/dev/null || true
    kill "$vg" 2>/dev/null || true
    wait "$vg" 2>/dev/null || true
    # The dump taken by callgrind_control -d is the first numbered part.
    awk -v n=$((x1 - x0)) '/^summary:/ {
        if (n <= 0) { print "no transactions in the window" > "/dev/stderr"; exit 1 }
        printf "%.0f %.1f %.1f %.1f %.1f\n", $2 / n, $5 / n, $6 / n, $7 / n, ($8 + $9 + $10) / n
    }' "$out.1"
}

echo "# Cache simulation: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- command: \`bench/cachesim.sh\` (CACHESIM_CLIENTS=$CLIENTS CACHESIM_LL=\"$LL_SIZES\" CACHESIM_WARM=$WARM CACHESIM_WINDOW=$WINDOW)"
echo "- machine: $(machine_summary)"
if [[ -n ${PGFLEET_BIN:-} ]]; then echo "- pgfleet $PGFLEET_REV ($BUILD_NOTE)"; fi
echo "- pgbench -S -M simple -c $CLIENTS -j 2, pool 20 server connections; per transaction in a ${WINDOW}-second steady-state window; L1 caches 32 KiB"
echo
echo "| proxy | last-level cache | instructions | L1i misses | L1d read misses | L1d write misses | lines missing the last-level cache |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for ll in $LL_SIZES; do
    for target in $TARGETS; do
        log "$target, last-level cache $ll bytes"
        row=$(measure "$target" "$ll") || die "$target: no figures (logs in $WORK)"
        read -r ir i1 d1r d1w llm <<<"$row"
        echo "| $target | $((ll / 1024)) KiB | $ir | $i1 | $d1r | $d1w | $llm |"
    done
done

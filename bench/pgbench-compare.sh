#!/usr/bin/env bash
# pgbench-compare.sh — pgbench against PostgreSQL directly, through PgBouncer and through pgfleet.
#
# Usage: bench/pgbench-compare.sh [--quick]
#
# Builds pgfleet (release), starts a scratch PostgreSQL 15 cluster, PgBouncer and pgfleet on free
# loopback ports, runs pgbench for every (target, protocol mode, workload, client count), prints a
# table with TPS, mean latency and the pgfleet/pgbouncer and pgfleet/direct TPS ratios, writes it as
# markdown to bench/results/<date>-<UTC hhmm>.md, and measures pgfleet's memory with 1,000 idle authenticated
# client connections. Everything it starts is stopped and removed on exit (trap).
#
# Environment knobs (defaults in brackets):
#   BENCH_SECONDS   seconds per pgbench run            [10; 5 with --quick]
#   BENCH_CLIENTS   client counts                      ["16 64 256"; "16 64" with --quick]
#   BENCH_WORKLOADS pgbench workloads                  ["-S -N"]  (-S select-only, -N TPC-B-like without branch updates)
#   BENCH_MODES     pgbench protocol modes             ["simple prepared"]
#   BENCH_POOL      server connections per pool        [20]  (PgBouncer default_pool_size, pgfleet pool_size)
#   BENCH_SCALE     pgbench -i scale factor            [10]
#   BENCH_IDLE_CLIENTS  idle connections for the memory test [1000]
#   BENCH_ROUNDS    repeat the whole matrix this many times and report medians [3; 1 with --quick]
#   BENCH_KEEP=1    keep the scratch directory (logs, configs) instead of deleting it
#   PGFLEET_BIN     use this pgfleet binary instead of a release build
#   BENCH_BOLT=1    measure the BOLT-optimized build of bench/bolt.sh instead (needs llvm-bolt)
#   PG_BIN          PostgreSQL binaries                [/usr/lib/postgresql/15/bin]
#   RUST_LOG        pgfleet log filter                 [warn]  (per-connection info logs would cost TPS)
#
# Requirements: cargo, PostgreSQL 15 server binaries, pgbench + psql, pgbouncer, python3 (free ports),
# ss (iproute2). PostgreSQL and PgBouncer refuse to run as root; as root they run as the `postgres` user.
set -euo pipefail

# shellcheck source=bench/args.sh
source "$(dirname "${BASH_SOURCE[0]}")/args.sh" "$@"

if [[ $QUICK == 1 ]]; then
    SECONDS_PER_RUN=${BENCH_SECONDS:-5}
    CLIENTS=${BENCH_CLIENTS:-"16 64"}
    ROUNDS=${BENCH_ROUNDS:-1}
else
    SECONDS_PER_RUN=${BENCH_SECONDS:-10}
    CLIENTS=${BENCH_CLIENTS:-"16 64 256"}
    ROUNDS=${BENCH_ROUNDS:-3}
fi
WORKLOADS=${BENCH_WORKLOADS:-"-S -N"}
MODES=${BENCH_MODES:-"simple prepared"}
POOL=${BENCH_POOL:-20}
SCALE=${BENCH_SCALE:-10}
IDLE_CLIENTS=${BENCH_IDLE_CLIENTS:-1000}

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------
require_common_tools
command -v pgbouncer >/dev/null || die "pgbouncer not found: install it with: apt-get install -y pgbouncer"
command -v ss >/dev/null || die "ss not found (apt-get install -y iproute2)"

# ---------------------------------------------------------------------------------------------
# Scratch directory and cleanup
# ---------------------------------------------------------------------------------------------
if [[ -d /dev/shm && -w /dev/shm ]]; then
    BASE=/dev/shm
    STORAGE_NOTE="scratch cluster on /dev/shm (tmpfs, RAM-backed)"
else
    BASE=${TMPDIR:-/tmp}
    STORAGE_NOTE="scratch cluster on $BASE (no writable /dev/shm)"
fi
WORK=$(mktemp -d "$BASE/pgfleet-bench.XXXXXX")
chmod 755 "$WORK"
[[ ${#RUN_AS[@]} -gt 0 ]] && chown postgres: "$WORK"
PGDATA_DIR=$WORK/pgdata
PGFLEET_PID=""
IDLE_PID=""
PG_STARTED=0

cleanup() {
    local rc=$?
    set +e
    if [[ -n $IDLE_PID ]] && kill -0 "$IDLE_PID" 2>/dev/null; then
        kill "$IDLE_PID" 2>/dev/null; wait "$IDLE_PID" 2>/dev/null
    fi
    if [[ -n $PGFLEET_PID ]] && kill -0 "$PGFLEET_PID" 2>/dev/null; then
        kill -TERM "$PGFLEET_PID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$PGFLEET_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PGFLEET_PID" 2>/dev/null
        wait "$PGFLEET_PID" 2>/dev/null
    fi
    if [[ -f $WORK/pgbouncer.pid ]]; then
        local bpid
        bpid=$(cat "$WORK/pgbouncer.pid" 2>/dev/null)
        if [[ -n $bpid ]] && kill -0 "$bpid" 2>/dev/null; then
            kill -INT "$bpid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$bpid" 2>/dev/null
        fi
    fi
    if [[ $PG_STARTED == 1 ]]; then
        "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 ||
            "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1
    fi
    if [[ $rc != 0 ]]; then
        for f in pgfleet.log pgbouncer.log pgdata/log; do
            if [[ -s $WORK/$f ]]; then
                echo "---- last lines of $f ----" >&2
                tail -n 20 "$WORK/$f" >&2
            fi
        done
    fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        echo "scratch directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------
# 1. Build pgfleet
# ---------------------------------------------------------------------------------------------
pgfleet_binary

# ---------------------------------------------------------------------------------------------
# 2. Scratch PostgreSQL cluster
# ---------------------------------------------------------------------------------------------
PG_PORT=$(free_port)
log "initdb in $PGDATA_DIR ($STORAGE_NOTE)"
bench_initdb "$PGDATA_DIR" "$PG_PORT"
log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/log" -w start >/dev/null ||
    { tail -n 30 "$PGDATA_DIR/log" >&2; die "PostgreSQL did not start"; }
PG_STARTED=1
PG_VERSION=$(psql -h "$WORK" -p "$PG_PORT" -U postgres -d postgres -XAtc 'show server_version')

psql -h "$WORK" -p "$PG_PORT" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 <<'EOF'
CREATE ROLE bench LOGIN PASSWORD 'bench';
CREATE DATABASE bench OWNER bench;
EOF
export PGPASSWORD=bench
log "pgbench -i -s $SCALE (directly)"
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U bench bench >"$WORK/pgbench-init.log" 2>&1 ||
    { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }

wait_ready() { # name port [pid]
    local name=$1 port=$2 pid=${3:-} err=""
    for _ in $(seq 300); do
        if err=$(psql -h 127.0.0.1 -p "$port" -U bench -d bench -XAtc 'select 1' 2>&1); then
            log "$name accepts connections on 127.0.0.1:$port"
            return 0
        fi
        if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
            die "$name exited before accepting connections; last psql error: $err"
        fi
        sleep 0.1
    done
    die "$name did not accept connections on 127.0.0.1:$port within 30 s; last psql error: $err"
}

# ---------------------------------------------------------------------------------------------
# 3. PgBouncer and pgfleet
# ---------------------------------------------------------------------------------------------
BOUNCER_PORT=$(free_port)
BOUNCER_VERSION=$(pgbouncer --version | head -n1)
# userlist with the plain password: PgBouncer then does SCRAM with the client and with the server.
write_pgbouncer_config "$WORK/pgbouncer.ini" "$BOUNCER_PORT" "$PG_PORT" "$POOL" scram-sha-256
log "starting PgBouncer ($BOUNCER_VERSION) on 127.0.0.1:$BOUNCER_PORT"
"${RUN_AS[@]}" pgbouncer -d "$WORK/pgbouncer.ini" >"$WORK/pgbouncer.out" 2>&1 ||
    { cat "$WORK/pgbouncer.out" "$WORK/pgbouncer.log" >&2 2>/dev/null; die "PgBouncer did not start"; }
wait_ready PgBouncer "$BOUNCER_PORT"

PGFLEET_PORT=$(free_port)
write_bench_config "$WORK/pgfleet.toml" "$PGFLEET_PORT" "$PG_PORT" "$POOL"
log "starting pgfleet on 127.0.0.1:$PGFLEET_PORT (RUST_LOG=$RUST_LOG)"
"$PGFLEET_BIN" serve --config "$WORK/pgfleet.toml" >"$WORK/pgfleet.log" 2>&1 &
PGFLEET_PID=$!
wait_ready pgfleet "$PGFLEET_PORT" "$PGFLEET_PID"

declare -A PORT=([direct]=$PG_PORT [pgbouncer]=$BOUNCER_PORT [pgfleet]=$PGFLEET_PORT)

mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
proc_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# ---------------------------------------------------------------------------------------------
# 6. Memory: pgfleet with IDLE_CLIENTS idle, authenticated client connections (measured first,
#    while pgfleet is still fresh, so VmHWM is not the benchmark's peak)
# ---------------------------------------------------------------------------------------------
MEM_BASE_KB=$(proc_kb "$PGFLEET_PID" VmRSS)
printf '\\sleep 20 s\n' >"$WORK/idle.sql"
log "memory: opening $IDLE_CLIENTS idle authenticated connections to pgfleet (pgbench -f idle.sql: \\sleep 20 s)"
pgbench -n -h 127.0.0.1 -p "$PGFLEET_PORT" -U bench -c "$IDLE_CLIENTS" -j 2 -t 1 -f "$WORK/idle.sql" bench \
    >"$WORK/idle.out" 2>"$WORK/idle.err" &
IDLE_PID=$!
MEM_CONNS=0
for _ in $(seq 600); do
    MEM_CONNS=$(ss -Htn state established "( dport = :$PGFLEET_PORT )" | wc -l)
    [[ $MEM_CONNS -ge $IDLE_CLIENTS ]] && break
    kill -0 "$IDLE_PID" 2>/dev/null || break
    sleep 0.1
done
sleep 2
MEM_CONNS=$(ss -Htn state established "( dport = :$PGFLEET_PORT )" | wc -l)
MEM_RSS_KB=$(proc_kb "$PGFLEET_PID" VmRSS)
MEM_HWM_KB=$(proc_kb "$PGFLEET_PID" VmHWM)
MEM_STATUS=ok
if ! wait "$IDLE_PID"; then MEM_STATUS="pgbench exited non-zero: $(grep -m1 -i 'error\|fatal' "$WORK/idle.err" || tail -n1 "$WORK/idle.err")"; fi
IDLE_PID=""
MEM_VERDICT="under 64 MiB: yes"
[[ $MEM_HWM_KB -ge $((64 * 1024)) ]] && MEM_VERDICT="under 64 MiB: NO"
MEMORY_LINE="pgfleet memory with $MEM_CONNS/$IDLE_CLIENTS idle client connections open: VmRSS $(mib "$MEM_RSS_KB") MiB, peak VmHWM $(mib "$MEM_HWM_KB") MiB (idle before: VmRSS $(mib "$MEM_BASE_KB") MiB; target < 64 MiB, $MEM_VERDICT; $MEM_STATUS)"
log "$MEMORY_LINE"
kill -0 "$PGFLEET_PID" 2>/dev/null || die "pgfleet exited during the memory test"

# ---------------------------------------------------------------------------------------------
# 4. pgbench matrix
# ---------------------------------------------------------------------------------------------
RESULTS=$WORK/results.tsv
: >"$RESULTS"
FAILURES=()

reset_tables() {
    # What pgbench does before a run, done directly so no proxy is involved (the runs use -n).
    psql -h "$WORK" -p "$PG_PORT" -U postgres -d bench -X -q \
        -c 'VACUUM pgbench_branches' -c 'VACUUM pgbench_tellers' -c 'TRUNCATE pgbench_history' >/dev/null
}

run_one() { # target mode workload_flag clients
    local target=$1 mode=$2 wl=$3 c=$4 out err rc tps lat failed note=""
    out=$WORK/run-$target-$mode-${wl#-}-$c.out
    err=${out%.out}.err
    if [[ $target == pgbouncer && $mode == prepared ]]; then
        printf '%s\t%s\t%s\t%s\tunsupported\t\t\t\t%s\n' "$wl" "$mode" "$c" "$target" \
            "PgBouncer 1.18 does not track protocol-level prepared statements in transaction mode (added in 1.21, max_prepared_statements)" >>"$RESULTS"
        return
    fi
    reset_tables
    log "$target $mode $wl -c $c (${SECONDS_PER_RUN}s)"
    rc=0
    local pid cpu="" user="" bp seen=0 u0="" s0="" u1 s1
    pid=$(proxy_pid "$target")
    pgbench -n -P 1 -h 127.0.0.1 -p "${PORT[$target]}" -U bench -c "$c" -j 2 -T "$SECONDS_PER_RUN" -M "$mode" "$wl" bench \
        >"$out" 2>"$err" &
    bp=$!
    # The proxy's own CPU (user and system, all threads) per transaction in the steady state: from
    # pgbench's second progress report (every client connected and a second of traffic behind) to
    # the end. The connection phase is left out: 256 SCRAM logins cost a proxy far more CPU than
    # the transactions of a second, and PgBouncer does them on one thread, pgfleet on two.
    while [[ -n $pid ]] && kill -0 "$bp" 2>/dev/null; do
        seen=$(grep -c '^progress:' "$err" || true)
        if (( seen >= 2 )); then read -r u0 s0 < <(cpu_user_sys "$pid"); break; fi
        sleep 0.05
    done
    wait "$bp" || rc=$?
    if [[ -n $u0 ]]; then
        read -r u1 s1 < <(cpu_user_sys "$pid")
        # Transactions after the report seen: each later report covers one second.
        local window
        window=$(awk -v from="$seen" '/^progress:/ { if (++i > from) n += $4 } END { printf "%d", n }' "$err")
        if (( window > 0 )); then
            cpu=$(awk -v t=$((u1 + s1 - u0 - s0)) -v hz="$CLK_TCK" -v n="$window" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
            user=$(awk -v t=$((u1 - u0)) -v hz="$CLK_TCK" -v n="$window" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
        fi
    fi
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$out" | head -n1)
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$out" | head -n1)
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out" | head -n1)
    [[ -z $failed ]] && failed=0
    local status=ok
    if [[ $rc != 0 || -z $tps ]]; then
        status=failed
        note=$(grep -m1 -iE 'error|fatal|abort' "$err" || tail -n1 "$err" || true)
        note=${note//$'\t'/ }
        [[ -z $note ]] && note="pgbench exit status $rc"
        FAILURES+=("$target $mode $wl -c $c: $note")
    elif [[ $failed != 0 ]]; then
        note=$(grep -m1 -iE 'error' "$err" || true)
        FAILURES+=("$target $mode $wl -c $c: $failed failed transactions ${note:+($note)}")
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$mode" "$c" "$target" "$status" "${tps:-}" "${lat:-}" "$failed" "$note" "$cpu" "$round" "$user" >>"$RESULTS"
}

proxy_pid() { # target -> the proxy's PID (empty for direct)
    case $1 in
        pgfleet) echo "$PGFLEET_PID" ;;
        pgbouncer) cat "$WORK/pgbouncer.pid" 2>/dev/null || true ;;
        *) ;;
    esac
}
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
# This machine is noisy (pgbench, PostgreSQL and the proxies share 2 cores): the targets of one cell
# run back to back, and the whole matrix is repeated ROUNDS times; the table shows medians.
# Odd rounds run the targets of a cell in one order, even rounds in the reverse one (ABBA), so a
# drift of the machine within a cell does not favour one target.
for round in $(seq "$ROUNDS"); do
    log "round $round of $ROUNDS"
    if (( round % 2 == 1 )); then order="direct pgbouncer pgfleet"; else order="pgfleet pgbouncer direct"; fi
    for wl in $WORKLOADS; do
        for mode in $MODES; do
            for c in $CLIENTS; do
                for target in $order; do
                    run_one "$target" "$mode" "$wl" "$c"
                done
            done
        done
    done
done
kill -0 "$PGFLEET_PID" 2>/dev/null || FAILURES+=("pgfleet process is no longer running after the matrix")
HWM_AFTER_KB=$(proc_kb "$PGFLEET_PID" VmHWM 2>/dev/null || echo 0)

# ---------------------------------------------------------------------------------------------
# 5. Table (terminal + markdown)
# ---------------------------------------------------------------------------------------------
# Row per (workload, mode, clients): tps/latency per target, then the two ratios.
TABLE_ROWS=$(awk -F'\t' "$AWK_MEDIAN"'
    function cell(key) {
        if (!(key in st)) return "-\t-"
        if (st[key] == "unsupported") return "unsupported\t-"
        if (st[key] == "failed") return "FAILED\t-"
        return sprintf("%.0f%s\t%.2f", tps[key], (fail[key] > 0 ? " (" fail[key] " failed)" : ""), lat[key])
    }
    function ratio(a, b) {
        if (st[a] != "ok" || st[b] != "ok" || tps[b] == 0) return "-"
        return sprintf("%.2f", tps[a] / tps[b])
    }
    {
        k = $1 SUBSEP $2 SUBSEP $3
        if (!(k in seen)) { seen[k] = 1; order[n++] = k }
        key = k SUBSEP $4
        if (st[key] != "failed") st[key] = $5
        if ($5 == "ok") { tl[key] = tl[key] " " $6; ll[key] = ll[key] " " $7; if ($10 != "") { cl[key] = cl[key] " " $10; ul[key] = ul[key] " " $12 } rt[key, $11] = $6; rounds[k] = rounds[k] " " $11 }
        fail[key] += $8
    }
    END {
        for (key in tl) { tps[key] = median(tl[key]); lat[key] = median(ll[key]) }
        for (key in cl) cpu[key] = sprintf("%.1f (%.1f)", median(cl[key]), median(ul[key]))
        # pgfleet/PgBouncer of each round (the two ran back to back), then their median: less
        # sensitive than the ratio of medians to the machine drifting between rounds.
        for (k in rounds) {
            m = split(rounds[k], rs, " "); list = ""
            delete done
            for (j = 1; j <= m; j++) {
                r = rs[j]
                if (r in done) continue
                done[r] = 1
                a = k SUBSEP "pgfleet"; b = k SUBSEP "pgbouncer"
                if (((a, r) in rt) && ((b, r) in rt) && rt[b, r] > 0) list = list " " rt[a, r] / rt[b, r]
            }
            if (list != "") paired[k] = sprintf("%.2f", median(list))
        }
        for (i = 0; i < n; i++) {
            split(order[i], p, SUBSEP)
            wl = (p[1] == "-S" ? "select-only (-S)" : "tpcb-like, no branch updates (-N)")
            k = order[i]
            print wl "\t" p[2] "\t" p[3] "\t" cell(k SUBSEP "direct") "\t" cell(k SUBSEP "pgbouncer") "\t" \
                cell(k SUBSEP "pgfleet") "\t" ratio(k SUBSEP "pgfleet", k SUBSEP "pgbouncer") "\t" \
                ratio(k SUBSEP "pgfleet", k SUBSEP "direct") "\t" \
                (k SUBSEP "pgbouncer" in cpu ? cpu[k SUBSEP "pgbouncer"] : "-") "\t" \
                (k SUBSEP "pgfleet" in cpu ? cpu[k SUBSEP "pgfleet"] : "-") "\t" \
                (k in paired ? paired[k] : "-")
        }
    }' "$RESULTS")

HEADER=$'workload\tmode\tclients\tdirect TPS\tdirect lat ms\tpgbouncer TPS\tpgbouncer lat ms\tpgfleet TPS\tpgfleet lat ms\tpgfleet/pgbouncer\tpgfleet/direct\tpgbouncer CPU µs/tx (user)\tpgfleet CPU µs/tx (user)\tpgfleet/pgbouncer per round (median)'

markdown_table() {
    printf '%s\n' "$HEADER" | awk -F'\t' '{ s = "|"; for (i = 1; i <= NF; i++) s = s " " $i " |"; print s;
        s = "|"; for (i = 1; i <= NF; i++) s = s (i <= 3 ? "---|" : "---:|"); print s }'
    printf '%s\n' "$TABLE_ROWS" | awk -F'\t' '{ s = "|"; for (i = 1; i <= NF; i++) s = s " " $i " |"; print s }'
}

echo
echo "pgbench: ${SECONDS_PER_RUN}s per run, -j 2, scale $SCALE, pool size $POOL; latency = pgbench \"latency average\" (ms)"
{ printf '%s\n' "$HEADER"; printf '%s\n' "$TABLE_ROWS"; } | column -t -s $'\t'
echo
echo "$MEMORY_LINE"
echo "pgfleet peak RSS after the whole matrix: $(mib "$HWM_AFTER_KB") MiB"
echo "$STORAGE_NOTE; fsync=off (proxy benchmark, not a durability test); PgBouncer prepared cells: unsupported in 1.18 transaction mode (not run)"
if [[ ${#FAILURES[@]} -gt 0 ]]; then
    echo "failures:"
    printf '  - %s\n' "${FAILURES[@]}"
else
    echo "failures: none"
fi

mkdir -p "$ROOT/bench/results"
SUFFIX=""
[[ $QUICK == 1 ]] && SUFFIX="-quick"
CMD="bench/pgbench-compare.sh"
[[ $QUICK == 1 ]] && CMD+=" --quick"
MD=$ROOT/bench/results/$(date -u +%Y-%m-%d-%H%M)$SUFFIX.md
{
    echo "# pgbench: direct vs PgBouncer vs pgfleet — $START_DATE"
    echo
    echo "- command: \`$CMD\` (BENCH_ROUNDS=$ROUNDS BENCH_SECONDS=$SECONDS_PER_RUN BENCH_CLIENTS=\"$CLIENTS\" BENCH_WORKLOADS=\"$WORKLOADS\" BENCH_MODES=\"$MODES\" BENCH_POOL=$POOL BENCH_SCALE=$SCALE; targets in ABBA order by round)"
    echo "- machine: $(machine_summary)"
    echo "- PostgreSQL $PG_VERSION ($STORAGE_NOTE; max_connections=400, shared_buffers=128MB, fsync=off), $BOUNCER_VERSION, pgfleet $PGFLEET_REV ($BUILD_NOTE)"
    echo "- pgbench \`-h 127.0.0.1 -p PORT -U bench -c C -j 2 -T $SECONDS_PER_RUN -M MODE -n -P 1 {-S|-N} bench\`; tables vacuumed and history truncated directly before each run"
    echo "- pool: PgBouncer default_pool_size=$POOL, pgfleet pool_size=$POOL, both transaction mode, SCRAM auth"
    echo
    markdown_table
    echo
    echo "PgBouncer \"unsupported\": PgBouncer 1.18 does not support protocol-level prepared statements in transaction pooling (support arrived in 1.21 with max_prepared_statements); those cells were not run."
    echo "CPU µs/tx (user): the proxy process's user + system CPU time (in brackets: user time alone) in the steady state, from pgbench's second progress report to the end of the run, divided by the transactions pgbench reported in that window (medians). The connection phase (SCRAM logins) is left out."
    echo "Per round (median): the pgfleet/PgBouncer TPS ratio of each round (the two ran back to back), then the median of those ratios."
    echo
    echo "## Every run (TPS in run order; the table shows their medians)"
    echo
    awk -F'\t' '$5 == "ok" { k = $1 " " $2 " -c " $3 " " $4; if (!(k in v)) o[n++] = k; v[k] = v[k] " " sprintf("%.0f", $6) }
        END { for (i = 0; i < n; i++) print "- " o[i] ":" v[o[i]] }' "$RESULTS"
    echo
    echo "## Memory"
    echo
    echo "$MEMORY_LINE"
    echo
    echo "pgfleet peak RSS after the whole matrix: $(mib "$HWM_AFTER_KB") MiB"
    echo
    echo "## Failures"
    echo
    if [[ ${#FAILURES[@]} -gt 0 ]]; then printf -- '- %s\n' "${FAILURES[@]}"; else echo "none"; fi
} >"$MD"
echo "markdown written to ${MD#"$ROOT"/}"

#!/usr/bin/env bash
# sharding.sh — issue 4's sharding performance targets, measured on this machine in one run.
#
# Usage: bench/sharding.sh [--quick]
#
# Builds pgfleet (release), starts five scratch PostgreSQL 15 clusters (one unsharded, shard0–3),
# loads them directly (each shard gets exactly the rows pgfleet's hash puts there, checked with
# PostgreSQL's satisfies_hash_partition on a temporary PARTITION BY HASH helper table), and measures:
#   1. point queries: pgbench custom script `\set id random(1, N)` / `SELECT v FROM items WHERE
#      id = :id` through pgfleet, items split over 2 shards vs the same N rows on one unsharded
#      cluster; -M simple and prepared, each client count, rounds in alternating order, medians.
#      Target: sharded / unsharded TPS >= 0.9. Also measured: a sharded database whose one shard
#      is the unsharded cluster (pgfleet's routing cost alone), PostgreSQL directly with the rows
#      on one instance vs split over the two shards (what two instances on this machine cost
#      without pgfleet), and the CPU per transaction of pgfleet, the servers and pgbench.
#   2. cross-shard top-N: `SELECT id, x FROM events ORDER BY x LIMIT 10` over 4 shards (x not
#      indexed: each shard sorts its rows) and the same ORDER BY an indexed column y; median latency
#      through pgfleet vs run directly on each shard. Target: pgfleet < 2x the slowest shard's own.
#      Also reported: the slowest shard while all four run directly at the same time.
#   3. cross-shard scan: `SELECT * FROM items` over 4 shards (SCAN_ROWS in total) through a fresh
#      pgfleet process, read by psql -At into wc -l, sampling pgfleet's RSS. Target: peak < 100 MiB.
# Prints everything (with the command and the machine) and writes it to
# bench/results/<date>-<UTC hhmm>-sharding.md (-sharding-quick.md with --quick). Everything started is
# stopped and removed on exit.
#
# Environment knobs (defaults; --quick defaults in brackets):
#   BENCH_POINT_ROWS 1000000 [100000]   BENCH_POINT_CLIENTS "16 64"   BENCH_POINT_MODES "simple prepared"
#   BENCH_POINT_SECONDS 10 [3]          BENCH_POINT_ROUNDS 6 [2]     (rounds alternate A B / B A)
#   BENCH_TOPN_ROWS_PER_SHARD 1000000 [100000]   BENCH_TOPN_ROUNDS 5 [2]   BENCH_TOPN_REPS 10 [3]
#   BENCH_TOPN_TOGETHER_SECONDS 3 [1] (per round: the four shards' queries directly, all at once)
#   BENCH_SCAN_ROWS 10000000 [1000000]  BENCH_SCAN_ROUNDS 3 [1]
#   BENCH_POOL 20 (pgfleet pool_size, per cluster)   BENCH_NOTE "" (a line added to the results)
#   BENCH_SHARD_POOL $BENCH_POOL (pool_size of the 2-shard database in part 1, per shard: half of
#     BENCH_POOL gives it as many server connections in total as the unsharded cluster has)
#   BENCH_KEEP=1 keep the scratch directory   PGFLEET_BIN use this binary instead of building   BENCH_BOLT=1 the BOLT build of bench/bolt.sh
#   PG_BIN /usr/lib/postgresql/15/bin   RUST_LOG warn
set -euo pipefail

# shellcheck source=bench/args.sh
source "$(dirname "${BASH_SOURCE[0]}")/args.sh" "$@"

# ---- sizes and rounds ---------------------------------------------------------------------------
POINT_ROWS=${BENCH_POINT_ROWS:-$(q 1000000 100000)}         # items rows in total (unsharded: all; 2 shards: split)
POINT_CLIENTS=${BENCH_POINT_CLIENTS:-"16 64"}
POINT_MODES=${BENCH_POINT_MODES:-"simple prepared"}
POINT_SECONDS=${BENCH_POINT_SECONDS:-$(q 10 3)}             # per pgbench run
POINT_ROUNDS=${BENCH_POINT_ROUNDS:-$(q 6 2)}                # A/B pairs per cell
TOPN_ROWS_PER_SHARD=${BENCH_TOPN_ROWS_PER_SHARD:-$(q 1000000 100000)}
TOPN_ROUNDS=${BENCH_TOPN_ROUNDS:-$(q 5 2)}
TOPN_REPS=${BENCH_TOPN_REPS:-$(q 10 3)}                     # executions per target per round
TOPN_TOGETHER_SECONDS=${BENCH_TOPN_TOGETHER_SECONDS:-$(q 3 1)} # per round: the four shards at once
SCAN_ROWS=${BENCH_SCAN_ROWS:-$(q 10000000 1000000)}         # in total over the 4 shards
SCAN_ROUNDS=${BENCH_SCAN_ROUNDS:-$(q 3 1)}
POOL=${BENCH_POOL:-20}
SHARD_POOL=${BENCH_SHARD_POOL:-$POOL}
NOTE=${BENCH_NOTE:-}
# --------------------------------------------------------------------------------------------------

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_common_tools
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt-get install -y time)"
make_workdir pgfleet-sharding

stop_everything_on_exit

START_EPOCH=$(date +%s)
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
CMD=bench/sharding.sh
SUFFIX=""
if [[ $QUICK == 1 ]]; then CMD+=" --quick"; SUFFIX="-quick"; fi
KNOBS="BENCH_POINT_ROWS=$POINT_ROWS BENCH_POINT_CLIENTS=\"$POINT_CLIENTS\" BENCH_POINT_MODES=\"$POINT_MODES\" BENCH_POINT_SECONDS=$POINT_SECONDS BENCH_POINT_ROUNDS=$POINT_ROUNDS BENCH_TOPN_ROWS_PER_SHARD=$TOPN_ROWS_PER_SHARD BENCH_TOPN_ROUNDS=$TOPN_ROUNDS BENCH_TOPN_REPS=$TOPN_REPS BENCH_SCAN_ROWS=$SCAN_ROWS BENCH_SCAN_ROUNDS=$SCAN_ROUNDS BENCH_POOL=$POOL BENCH_SHARD_POOL=$SHARD_POOL"

pgfleet_binary

# ---- clusters -----------------------------------------------------------------------------------
# One initdb, copied: solo (unsharded), shard0..shard3. Shards 0 and 1 also serve part 1's
# 2-shard database (`point`); part 2 and 3 use database `fan` on all four.
log "initdb ($STORAGE_NOTE)"
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$WORK/solo" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 --no-sync >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
CLUSTERS=(solo shard0 shard1 shard2 shard3)
for c in "${CLUSTERS[@]:1}"; do cp -a "$WORK/solo" "$WORK/$c"; done
declare -A PGPORT
for c in "${CLUSTERS[@]}"; do
    PGPORT[$c]=$(free_port)
    cat >>"$WORK/$c/postgresql.conf" <<CONF
port = ${PGPORT[$c]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
# part 1 runs pgbench directly with C clients next to pgfleet's pools on the same clusters.
max_connections = 200
shared_buffers = 256MB
fsync = off
full_page_writes = off
synchronous_commit = off
# One core per query on every server (a shard's own time is a one-process time), and no JIT
# compilation in the timed queries.
max_parallel_workers_per_gather = 0
jit = off
CONF
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/$c" -l "$WORK/$c.log" -w start >/dev/null ||
        die "PostgreSQL $c did not start"
    DATA_DIRS+=("$WORK/$c")
done
PG_VERSION=$(psql -h "$WORK" -p "${PGPORT[solo]}" -U postgres -d postgres -XAtc 'show server_version')
sock() { psql -h "$WORK" -p "${PGPORT[$1]}" -U "${3:-bench}" -d "$2" -X -q -v ON_ERROR_STOP=1 "${@:4}"; }
for c in "${CLUSTERS[@]}"; do
    sock "$c" postgres postgres -c "CREATE ROLE bench LOGIN PASSWORD 'bench'"
done
for c in solo shard0 shard1; do sock "$c" postgres postgres -c "CREATE DATABASE point OWNER bench"; done
for c in shard0 shard1 shard2 shard3; do sock "$c" postgres postgres -c "CREATE DATABASE fan OWNER bench"; done
export PGPASSWORD=bench

# ---- data ---------------------------------------------------------------------------------------
# shard_filter MODULUS REMAINDER: the WHERE clause that keeps exactly the ids of hash shard REMAINDER
# (pgfleet's hash is PostgreSQL's PARTITION BY HASH with modulus = number of shards).
HELPER="CREATE TEMP TABLE pgfleet_bench_hash (id bigint) PARTITION BY HASH (id);"
shard_filter() { echo "WHERE satisfies_hash_partition('pgfleet_bench_hash'::regclass, $1, $2, g)"; }
ITEMS_V="(g * 7919) % 1000003"
load_point() { # cluster filter
    sock "$1" point bench -c "$HELPER
        CREATE TABLE items (id bigint NOT NULL, v integer NOT NULL);
        INSERT INTO items SELECT g, $ITEMS_V FROM generate_series(1::bigint, $POINT_ROWS) g $2;
        ALTER TABLE items ADD PRIMARY KEY (id);" -c "VACUUM (FREEZE, ANALYZE) items"
}
load_fan() { # shard number
    sock "shard$1" fan bench -c "$HELPER
        CREATE TABLE events (id bigint NOT NULL, x bigint NOT NULL, y bigint NOT NULL);
        INSERT INTO events SELECT g, (g * 2654435761) % 4294967291, (g * 40503) % 1000000007
            FROM generate_series(1::bigint, $((4 * TOPN_ROWS_PER_SHARD))) g $(shard_filter 4 "$1");
        ALTER TABLE events ADD PRIMARY KEY (id);
        CREATE INDEX events_y ON events (y);
        CREATE TABLE items (id bigint NOT NULL, v integer NOT NULL);
        INSERT INTO items SELECT g, $ITEMS_V FROM generate_series(1::bigint, $SCAN_ROWS) g $(shard_filter 4 "$1");" \
        -c "VACUUM (FREEZE, ANALYZE) events, items"
}
LOAD_START=$(date +%s)
log "loading: items ($POINT_ROWS rows) on solo and split over shard0/1; events ($((4 * TOPN_ROWS_PER_SHARD)) rows) and items ($SCAN_ROWS rows) split over shard0-3"
LOAD_PIDS=()
load_point solo "" >"$WORK/load-solo.out" 2>&1 & LOAD_PIDS+=($!)
load_point shard0 "$(shard_filter 2 0)" >"$WORK/load-point0.out" 2>&1 & LOAD_PIDS+=($!)
load_point shard1 "$(shard_filter 2 1)" >"$WORK/load-point1.out" 2>&1 & LOAD_PIDS+=($!)
for i in 0 1 2 3; do load_fan "$i" >"$WORK/load-fan$i.out" 2>&1 & LOAD_PIDS+=($!); done
for p in "${LOAD_PIDS[@]}"; do wait "$p" || { cat "$WORK"/load-*.out >&2; die "loading failed"; }; done
LOAD_SECONDS=$(( $(date +%s) - LOAD_START ))
count() { sock "$1" "$2" bench -XAtc "SELECT count(*) FROM $3"; }
P0=$(count shard0 point items); P1=$(count shard1 point items); PS=$(count solo point items)
[[ $((P0 + P1)) == "$POINT_ROWS" && $PS == "$POINT_ROWS" ]] || die "items counts: solo $PS, shards $P0 + $P1, expected $POINT_ROWS"
EV=(); IT=()
for i in 0 1 2 3; do EV+=("$(count "shard$i" fan events)"); IT+=("$(count "shard$i" fan items)"); done
[[ $((EV[0] + EV[1] + EV[2] + EV[3])) == $((4 * TOPN_ROWS_PER_SHARD)) ]] || die "events counts ${EV[*]}"
[[ $((IT[0] + IT[1] + IT[2] + IT[3])) == "$SCAN_ROWS" ]] || die "scan items counts ${IT[*]}"
log "loaded in ${LOAD_SECONDS}s: point items $P0 + $P1; events ${EV[*]}; scan items ${IT[*]}"

# ---- pgfleet ------------------------------------------------------------------------------------
server() { printf '[clusters.%s]\nservers = [{ host = "127.0.0.1", port = %s, role = "primary" }]\n' "$1" "${PGPORT[$1]}"; }
write_config() { # file port with_point(0|1)
    {
        printf '[proxy]\nlisten = "127.0.0.1:%s"\n[pool]\npool_mode = "transaction"\npool_size = %s\ncheckout_timeout = "30s"\n' "$2" "$POOL"
        for c in "${CLUSTERS[@]}"; do server "$c"; done
        if [[ $3 == 1 ]]; then
            cat <<CONF
[databases.flat]
cluster = "solo"
server_database = "point"
[databases.sharded1]
shards = ["solo"]
server_database = "point"
[databases.sharded1.sharded_tables.items]
column = "id"
type = "bigint"
[databases.sharded2]
shards = ["shard0", "shard1"]
server_database = "point"
[databases.sharded2.pool]
pool_size = $SHARD_POOL
[databases.sharded2.sharded_tables.items]
column = "id"
type = "bigint"
CONF
        fi
        cat <<CONF
[databases.sharded4]
shards = ["shard0", "shard1", "shard2", "shard3"]
server_database = "fan"
[databases.sharded4.sharded_tables.events]
column = "id"
type = "bigint"
[databases.sharded4.sharded_tables.items]
column = "id"
type = "bigint"
[users.bench]
password = "bench"
CONF
    } >"$1"
}
start_pgfleet() { # name port ; sets LAST_PID
    "$PGFLEET_BIN" serve --config "$WORK/$1.toml" >"$WORK/pgfleet-$1.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    local err=""
    for _ in $(seq 300); do
        err=$(psql -h 127.0.0.1 -p "$2" -U bench -d sharded4 -XAtc 'select 1' 2>&1) && return 0
        kill -0 "$LAST_PID" 2>/dev/null || die "pgfleet ($1) exited: $err"
        sleep 0.1
    done
    die "pgfleet ($1) did not accept connections within 30 s: $err"
}
FLEET_PORT=$(free_port)
write_config "$WORK/main.toml" "$FLEET_PORT" 1
start_pgfleet main "$FLEET_PORT"
FLEET_PID=$LAST_PID
log "pgfleet (parts 1 and 2) on 127.0.0.1:$FLEET_PORT"
via() { psql -h 127.0.0.1 -p "$FLEET_PORT" -U bench -d "$1" -X -q -v ON_ERROR_STOP=1 "${@:2}"; }

# Checks through pgfleet: every point query finds its row (a wrong shard would answer 0 rows).
MISSING=0
for id in $(seq 1 $((POINT_ROWS / 20)) "$POINT_ROWS") 1 2 3 "$POINT_ROWS"; do
    for db in sharded1 sharded2; do
        got=$(via "$db" -At -c "SELECT v FROM items WHERE id = $id")
        [[ $got == $(( (id * 7919) % 1000003 )) ]] || MISSING=$((MISSING + 1))
    done
done
[[ $MISSING == 0 ]] || die "$MISSING point queries through pgfleet (sharded1, sharded2) did not find their row"
[[ $(via sharded4 -At -c "SELECT count(*) FROM items") == "$SCAN_ROWS" ]] || die "count(*) through pgfleet differs"

# ---- 1. point queries ---------------------------------------------------------------------------
printf '\\set id random(1, %s)\nSELECT v FROM items WHERE id = :id;\n' "$POINT_ROWS" >"$WORK/point.sql"
POINT_TSV=$WORK/point.tsv
: >"$POINT_TSV"
POINT_FAILURES=()
POINT_TARGETS=(flat sharded1 sharded2)
run_point() { # round mode clients db
    local out tps failed ticks0 ticks1 pg0 pg1 n c
    log "part 1, round $1/$POINT_ROUNDS: $4 -M $2 -c $3 (${POINT_SECONDS}s)"
    ticks0=$(cpu_ticks "$FLEET_PID"); pg0=0
    for c in solo shard0 shard1; do pg0=$((pg0 + $(cluster_ticks "$WORK/$c"))); done
    out=$(/usr/bin/time -f 'pgbench-cpu %U %S' pgbench -n -h 127.0.0.1 -p "$FLEET_PORT" -U bench -c "$3" -j 2 \
        -T "$POINT_SECONDS" -M "$2" -f "$WORK/point.sql" "$4" 2>&1) ||
        { POINT_FAILURES+=("$4 -M $2 -c $3: $(grep -m1 -iE 'error|fatal|abort' <<<"$out")"); return 0; }
    ticks1=$(cpu_ticks "$FLEET_PID"); pg1=0
    for c in solo shard0 shard1; do pg1=$((pg1 + $(cluster_ticks "$WORK/$c"))); done
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n1)
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out" | head -n1)
    [[ ${failed:-0} != 0 ]] && POINT_FAILURES+=("$4 -M $2 -c $3: $failed failed transactions")
    n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out" | head -n1)
    # CPU microseconds per transaction: pgfleet, the PostgreSQL servers, pgbench itself.
    read -r bench_cpu < <(awk '$1 == "pgbench-cpu" { print $2 + $3 }' <<<"$out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$1" "$tps" \
        "$(awk -v t=$((ticks1 - ticks0)) -v hz="$CLK_TCK" -v n="${n:-0}" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')" \
        "$(awk -v t=$((pg1 - pg0)) -v hz="$CLK_TCK" -v n="${n:-0}" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')" \
        "$(awk -v s="${bench_cpu:-0}" -v n="${n:-0}" 'BEGIN { printf "%.1f", n ? s * 1e6 / n : 0 }')" >>"$POINT_TSV"
}
# PostgreSQL alone, no pgfleet: what splitting the rows over two server instances on this machine
# costs by itself. `direct1`: two pgbench processes of C/2 clients each against the unsharded
# cluster; `direct2`: one of them against each of the two shards. The lookup is
# `WHERE id >= :id ORDER BY id LIMIT 1` for both (one row found per transaction on either side;
# with `id = :id` half of a shard's lookups would find no row).
printf '\\set id random(1, %s)\nSELECT v FROM items WHERE id >= :id ORDER BY id LIMIT 1;\n' "$POINT_ROWS" >"$WORK/point-direct.sql"
run_point_direct() { # round mode clients direct1|direct2
    local half=$(( $3 / 2 )) ports=() pids=() i tps=0 n=0 bench_cpu=0 pg0=0 pg1=0 c out
    if [[ $4 == direct1 ]]; then ports=("${PGPORT[solo]}" "${PGPORT[solo]}"); else ports=("${PGPORT[shard0]}" "${PGPORT[shard1]}"); fi
    log "part 1, round $1/$POINT_ROUNDS: $4 (PostgreSQL directly) -M $2 -c $half x 2 (${POINT_SECONDS}s)"
    for c in solo shard0 shard1; do pg0=$((pg0 + $(cluster_ticks "$WORK/$c"))); done
    for i in 0 1; do
        /usr/bin/time -f 'pgbench-cpu %U %S' pgbench -n -h 127.0.0.1 -p "${ports[$i]}" -U bench -c "$half" -j 1 \
            -T "$POINT_SECONDS" -M "$2" -f "$WORK/point-direct.sql" point >"$WORK/direct-$i.out" 2>&1 &
        pids+=($!)
    done
    for i in 0 1; do
        wait "${pids[$i]}" || { POINT_FAILURES+=("$4 -M $2 -c $3: $(grep -m1 -iE 'error|fatal|abort' "$WORK/direct-$i.out")"); return 0; }
    done
    for c in solo shard0 shard1; do pg1=$((pg1 + $(cluster_ticks "$WORK/$c"))); done
    for i in 0 1; do
        out=$(cat "$WORK/direct-$i.out")
        tps=$(awk -v a="$tps" -v b="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n1)" 'BEGIN { print a + b }')
        n=$(( n + $(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out" | head -n1) ))
        bench_cpu=$(awk -v a="$bench_cpu" '$1 == "pgbench-cpu" { a += $2 + $3 } END { print a }' <<<"$out")
    done
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$1" "$tps" "0.0" \
        "$(awk -v t=$((pg1 - pg0)) -v hz="$CLK_TCK" -v n="$n" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')" \
        "$(awk -v s="$bench_cpu" -v n="$n" 'BEGIN { printf "%.1f", n ? s * 1e6 / n : 0 }')" >>"$POINT_TSV"
}
for round in $(seq "$POINT_ROUNDS"); do
    # Forward in odd rounds, backward in even ones: a drift of the machine's speed during the run
    # favours no target.
    if (( round % 2 )); then ORDER="flat sharded1 sharded2 direct1 direct2"; else ORDER="direct2 direct1 sharded2 sharded1 flat"; fi
    for mode in $POINT_MODES; do
        for c in $POINT_CLIENTS; do
            for db in $ORDER; do
                case $db in
                    direct*) run_point_direct "$round" "$mode" "$c" "$db" ;;
                    *) run_point "$round" "$mode" "$c" "$db" ;;
                esac
            done
        done
    done
done
kill -0 "${PIDS[0]}" 2>/dev/null || die "pgfleet exited during part 1"

POINT_TABLE=$(awk -F'\t' "$AWK_MEDIAN"'
    { k = $1 SUBSEP $2; v[k SUBSEP $3] = v[k SUBSEP $3] " " sprintf("%.0f", $5); if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
    END {
        print "| mode | clients | unsharded TPS (median) | 1 shard TPS (median) | 2 shards TPS (median) | 1 shard / unsharded | 2 shards / unsharded | target >= 0.9 (2 shards) | PostgreSQL directly: 2 instances / 1 (TPS) | unsharded, per round | 1 shard, per round | 2 shards, per round | directly, 1 instance / 2, per round |"
        print "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|---|"
        for (i = 0; i < n; i++) {
            k = order[i]; split(k, kk, SUBSEP)
            a = median(v[k SUBSEP "flat"]); o = median(v[k SUBSEP "sharded1"]); b = median(v[k SUBSEP "sharded2"])
            d1 = median(v[k SUBSEP "direct1"]); d2 = median(v[k SUBSEP "direct2"])
            r1 = (a > 0 ? o / a : 0); r = (a > 0 ? b / a : 0)
            direct = (d1 > 0 && d2 > 0 ? sprintf("%.2f (%.0f / %.0f)", d2 / d1, d2, d1) : "failed, see below")
            printf "| %s | %s | %.0f | %.0f | %.0f | %.2f | %.2f | %s | %s | %s | %s | %s | %s / %s |\n", kk[1], kk[2], a, o, b, r1, r, (r >= 0.9 ? "met" : "NOT met"), direct, substr(v[k SUBSEP "flat"], 2), substr(v[k SUBSEP "sharded1"], 2), substr(v[k SUBSEP "sharded2"], 2), substr(v[k SUBSEP "direct1"], 2), substr(v[k SUBSEP "direct2"], 2)
        }
    }' "$POINT_TSV")
POINT_CPU_TABLE=$(awk -F'\t' "$AWK_MEDIAN"'
    { k = $1 SUBSEP $2; t = k SUBSEP $3; p[t] = p[t] " " $6; s[t] = s[t] " " $7; b[t] = b[t] " " $8; if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
    END {
        print "| mode | clients | pgfleet: unsharded / 1 shard / 2 shards | PostgreSQL servers: unsharded / 1 shard / 2 shards | pgbench: unsharded / 1 shard / 2 shards |"
        print "|---|---:|---|---|---|"
        for (i = 0; i < n; i++) {
            k = order[i]; split(k, kk, SUBSEP); f = k SUBSEP "flat"; o = k SUBSEP "sharded1"; w = k SUBSEP "sharded2"
            printf "| %s | %s | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f |\n", kk[1], kk[2], median(p[f]), median(p[o]), median(p[w]), median(s[f]), median(s[o]), median(s[w]), median(b[f]), median(b[o]), median(b[w])
        }
    }' "$POINT_TSV")

# ---- 2. cross-shard ORDER BY … LIMIT 10 ---------------------------------------------------------
TOPN_TARGETS=(pgfleet shard0 shard1 shard2 shard3)
topn_once() { # target sqlfile reps logprefix
    local port db
    if [[ $1 == pgfleet ]]; then port=$FLEET_PORT; db=sharded4; else port=${PGPORT[$1]}; db=fan; fi
    pgbench -n -h 127.0.0.1 -p "$port" -U bench -c 1 -j 1 -t "$3" -M simple -f "$2" ${4:+-l --log-prefix="$4"} "$db" \
        >"$WORK/topn-last.out" 2>&1 || { cat "$WORK/topn-last.out" >&2; die "pgbench top-N against $1 failed"; }
    grep -q '^number of failed transactions: 0' "$WORK/topn-last.out" || { cat "$WORK/topn-last.out" >&2; die "top-N against $1 had failed transactions"; }
}
# The four shards' own queries run directly and at the same time (one pgbench per shard, one client
# each, for TOPN_TOGETHER_SECONDS): each shard's own time while all four share the machine, as they
# do inside a cross-shard query here. Reported next to the target, which compares with a shard alone.
topn_together() { # sqlfile logprefix
    local i pids=()
    for i in 0 1 2 3; do
        pgbench -n -h 127.0.0.1 -p "${PGPORT[shard$i]}" -U bench -c 1 -j 1 -T "$TOPN_TOGETHER_SECONDS" -M simple -f "$1" \
            -l --log-prefix="$2-shard$i" fan >"$WORK/topn-together-$i.out" 2>&1 &
        pids+=($!)
    done
    for i in 0 1 2 3; do
        wait "${pids[$i]}" || { cat "$WORK/topn-together-$i.out" >&2; die "pgbench top-N on shard$i (all four at once) failed"; }
    done
}
median_ms() { # pgbench -l log files... -> median latency in ms (column 3 is in microseconds)
    cat "$@" | awk '{ print $3 }' | sort -n | awk '{ a[NR] = $1 } END { printf "%.3f", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) / 1000 }'
}
TOPN_ROWS_MD=()
for col in x y; do
    query="SELECT id, $col FROM events ORDER BY $col LIMIT 10"
    echo "$query;" >"$WORK/topn-$col.sql"
    # The merged answer must be the 10 smallest values over all shards.
    want=$(for i in 0 1 2 3; do sock "shard$i" fan bench -At -c "SELECT $col FROM events ORDER BY $col LIMIT 10"; done | sort -n | head -n 10 | tr '\n' ' ')
    got=$(via sharded4 -At -F ' ' -c "$query" | awk '{ print $2 }' | tr '\n' ' ')
    [[ $got == "$want" ]] || die "top-N ORDER BY $col through pgfleet: got [$got], want [$want]"
    for t in "${TOPN_TARGETS[@]}"; do topn_once "$t" "$WORK/topn-$col.sql" 1 ""; done # warm-up
    mkdir -p "$WORK/topn-$col"
    for round in $(seq "$TOPN_ROUNDS"); do
        log "part 2, round $round/$TOPN_ROUNDS: ORDER BY $col, $TOPN_REPS executions on each of ${TOPN_TARGETS[*]}"
        for t in "${TOPN_TARGETS[@]}"; do topn_once "$t" "$WORK/topn-$col.sql" "$TOPN_REPS" "$WORK/topn-$col/$t-$round"; done
        topn_together "$WORK/topn-$col.sql" "$WORK/topn-$col/together-$round"
    done
    declare -A MED=()
    for t in "${TOPN_TARGETS[@]}"; do MED[$t]=$(median_ms "$WORK/topn-$col/$t-"*); done
    slowest=$(for i in 0 1 2 3; do echo "${MED[shard$i]}"; done | sort -n | tail -n1)
    together=$(for i in 0 1 2 3; do median_ms "$WORK/topn-$col/together-"*"-shard$i".*; echo; done | sort -n | tail -n1)
    ratio=$(awk -v a="${MED[pgfleet]}" -v b="$slowest" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    ratio_together=$(awk -v a="${MED[pgfleet]}" -v b="$together" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    met=$(awk -v r="$ratio" 'BEGIN { print (r < 2 ? "met" : "NOT met") }')
    if [[ $col == x ]]; then what="x not indexed: each shard sorts its ~$TOPN_ROWS_PER_SHARD rows"; else what="y indexed: each shard reads 10 index entries"; fi
    TOPN_ROWS_MD+=("| \`$query\` ($what) | ${MED[pgfleet]} | ${MED[shard0]} / ${MED[shard1]} / ${MED[shard2]} / ${MED[shard3]} | $slowest | $ratio | $met | $together | $ratio_together |")
done
kill -0 "${PIDS[0]}" 2>/dev/null || die "pgfleet exited during part 2"
TOPN_TABLE=$(printf '%s\n' "| query | through pgfleet, median ms | each shard directly (0 / 1 / 2 / 3), median ms | slowest shard ms | pgfleet / slowest shard | target < 2 | slowest shard, all four at once, ms | pgfleet / that |" "|---|---:|---:|---:|---:|---|---:|---:|" "${TOPN_ROWS_MD[@]}")

# ---- 3. cross-shard scan, pgfleet's memory ------------------------------------------------------
kill -TERM "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=("${PIDS[@]:1}")
SCAN_PORT=$(free_port)
write_config "$WORK/scan.toml" "$SCAN_PORT" 0
start_pgfleet scan "$SCAN_PORT"
SCAN_PID=$LAST_PID
proc_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }
SCAN_BASE_KB=$(proc_kb "$SCAN_PID" VmRSS)
SCAN_LINES=()
SCAN_TIMES=""
for round in $(seq "$SCAN_ROUNDS"); do
    log "part 3, round $round/$SCAN_ROUNDS: SELECT * FROM items ($SCAN_ROWS rows over 4 shards) through pgfleet"
    echo 0 >"$WORK/scan-max"
    ( max=0; while kill -0 "$SCAN_PID" 2>/dev/null && [[ ! -e $WORK/scan-done ]]; do
          r=$(proc_kb "$SCAN_PID" VmRSS); (( r > max )) && { max=$r; echo "$max" >"$WORK/scan-max"; }; sleep 0.05
      done ) &
    SAMPLER=$!
    rows=$(/usr/bin/time -f '%e %M' -o "$WORK/scan-time" \
        psql -h 127.0.0.1 -p "$SCAN_PORT" -U bench -d sharded4 -X -At -v ON_ERROR_STOP=1 -c 'SELECT * FROM items' | wc -l)
    touch "$WORK/scan-done"; wait "$SAMPLER" || true; rm -f "$WORK/scan-done"
    [[ $rows == "$SCAN_ROWS" ]] || die "scan through pgfleet returned $rows rows, expected $SCAN_ROWS"
    read -r secs psql_kb <"$WORK/scan-time"
    SCAN_TIMES+=" $secs"
    SCAN_LINES+=("round $round: $rows rows in ${secs}s through pgfleet; pgfleet max sampled VmRSS $(mib "$(cat "$WORK/scan-max")") MiB; psql's own peak RSS $(mib "$psql_kb") MiB")
    log "${SCAN_LINES[-1]}"
done
kill -0 "$SCAN_PID" 2>/dev/null || die "pgfleet exited during the scan"
SCAN_HWM_KB=$(proc_kb "$SCAN_PID" VmHWM)
SCAN_MEDIAN=$(awk "$AWK_MEDIAN"' BEGIN { printf "%.2f", median(ARGV[1]) }' "$SCAN_TIMES")
# Reference: the same rows read directly, shard after shard, by the same consumer.
DIRECT_START=$(date +%s.%N)
direct_rows=0
for i in 0 1 2 3; do
    n=$(psql -h 127.0.0.1 -p "${PGPORT[shard$i]}" -U bench -d fan -X -At -c 'SELECT * FROM items' | wc -l)
    direct_rows=$((direct_rows + n))
done
DIRECT_SECS=$(awk -v a="$DIRECT_START" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
SCAN_VERDICT=$([[ $SCAN_HWM_KB -lt $((100 * 1024)) ]] && echo met || echo "NOT met")
SCAN_SUMMARY="pgfleet peak RSS (VmHWM of a fresh process, $SCAN_ROUNDS scan(s)): $(mib "$SCAN_HWM_KB") MiB (before the first scan: VmRSS $(mib "$SCAN_BASE_KB") MiB); target < 100 MiB: $SCAN_VERDICT. Scan time, median: ${SCAN_MEDIAN}s through pgfleet; the same $direct_rows rows read directly, shard after shard: ${DIRECT_SECS}s."

# ---- report -------------------------------------------------------------------------------------
ELAPSED=$(( $(date +%s) - START_EPOCH ))
MACHINE=$(machine_summary)
report() {
    echo "# Sharding (issue 4 targets) — $START_DATE"
    echo
    echo "- command: \`$KNOBS $CMD\` (took ${ELAPSED}s; loading ${LOAD_SECONDS}s)"
    echo "- machine: $MACHINE"
    echo "- PostgreSQL $PG_VERSION: 5 clusters ($STORAGE_NOTE; shared_buffers=256MB, fsync=off, max_parallel_workers_per_gather=0, jit=off); pgfleet $PGFLEET_REV ($BUILD_NOTE), transaction pooling, pool_size $POOL per cluster (part 1's 2-shard database: $SHARD_POOL per shard), SCRAM"
    echo "- every server, pgfleet and the clients share this machine's cores"
    [[ -n $NOTE ]] && echo "- note: $NOTE"
    echo
    echo "## 1. Point queries: 2 shards vs one unsharded cluster, both through pgfleet"
    echo
    echo "\`pgbench -n -h 127.0.0.1 -p PGFLEET -U bench -c C -j 2 -T $POINT_SECONDS -M MODE -f point.sql {flat|sharded1|sharded2}\`, point.sql: \`\\set id random(1, $POINT_ROWS)\` / \`SELECT v FROM items WHERE id = :id;\`. items: $POINT_ROWS rows (id bigint primary key, v integer); the unsharded cluster holds all of them, the shards $P0 and $P1 (PostgreSQL's hash partitioning, modulus 2). A third target, \`sharded1\`, is a sharded database whose one shard is the unsharded cluster itself: the same server, data and pool as \`flat\`, but every statement takes the sharded path (routing by key), so its ratio is pgfleet's routing cost alone. Two more targets run PostgreSQL directly, without pgfleet, to show what splitting the rows over two server instances on this machine costs by itself: \`direct1\` is two pgbench processes of C/2 clients each (\`-j 1\`) against the unsharded cluster, \`direct2\` one of them against each shard, both with point-direct.sql (\`\\set id random(1, $POINT_ROWS)\` / \`SELECT v FROM items WHERE id >= :id ORDER BY id LIMIT 1;\`, which finds one row on either side, where \`id = :id\` on a shard would miss half the time), no pool: C server backends in all. $POINT_ROUNDS round(s), the targets in turn (forward, then backward); medians."
    echo
    echo "$POINT_TABLE"
    echo
    echo "CPU per transaction (µs, medians over the rounds; from /proc: pgfleet's process, every process of the three clusters, and pgbench's own user + system time). pgbench does the same work for every target: where its own CPU per transaction rises, the machine as a whole got slower (more server processes sharing $(nproc) cores), not the route."
    echo
    echo "$POINT_CPU_TABLE"
    echo
    if [[ ${#POINT_FAILURES[@]} -gt 0 ]]; then echo "Failures:"; printf -- '- %s\n' "${POINT_FAILURES[@]}"; else echo "Failures: none."; fi
    echo
    echo "## 2. Cross-shard ORDER BY … LIMIT 10 over 4 shards"
    echo
    echo "events: $((4 * TOPN_ROWS_PER_SHARD)) rows (${EV[*]} per shard; id bigint primary key, x bigint not indexed, y bigint indexed). Each query run by \`pgbench -n -c 1 -t $TOPN_REPS -M simple -l\` through pgfleet (database sharded4) and directly on each shard, interleaved, $TOPN_ROUNDS round(s) after one warm-up; median of the $((TOPN_ROUNDS * TOPN_REPS)) per-execution latencies of each target. pgfleet's merged answer was checked against the 10 smallest values over all shards."
    echo
    echo "$TOPN_TABLE"
    echo
    echo "With 4 shards on $(nproc) cores, the fan-out runs the 4 shards' queries on $(nproc) cores at once, while a shard's own time is measured alone: where the shards' work dominates (ORDER BY x) expect a ratio near 4/$(nproc) here at best. The target presumes a machine per shard. The last two columns show what that costs: the four shards' queries run directly and at the same time (one \`pgbench -c 1 -T $TOPN_TOGETHER_SECONDS\` per shard, started together, each round), the median of each shard's latencies, the slowest of the four, and pgfleet's time divided by it. The target's verdict uses the shard alone."
    echo
    echo "## 3. Cross-shard scan: pgfleet's memory"
    echo
    echo "\`psql -X -At -c 'SELECT * FROM items' | wc -l\` through a freshly started pgfleet (database sharded4), items: $SCAN_ROWS rows (${IT[*]} per shard; id bigint, v integer). pgfleet's VmRSS sampled every 50 ms, VmHWM read after the scans; psql holds the whole result itself (it buffers without FETCH_COUNT, and FETCH_COUNT's cursor is refused across shards), which is the client's memory, not pgfleet's."
    echo
    printf -- '- %s\n' "${SCAN_LINES[@]}"
    echo
    echo "$SCAN_SUMMARY"
}
echo
report | tee "$WORK/report.md"
mkdir -p "$ROOT/bench/results"
MD=$ROOT/bench/results/$(date -u +%Y-%m-%d-%H%M)-sharding$SUFFIX.md
cp "$WORK/report.md" "$MD"
echo
echo "markdown written to ${MD#"$ROOT"/}"

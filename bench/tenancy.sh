#!/usr/bin/env bash
# tenancy.sh — issue 5's tenancy performance targets, measured on this machine in one run.
#
# Usage: bench/tenancy.sh [--quick]
#
# Builds pgfleet (release), starts one scratch PostgreSQL 15 cluster with a metadata database and
# three databases behind one pgfleet (transaction pooling, the same pool_size for each):
#   plain   no tenancy: items(tenant_id text, id bigint, v bigint, PRIMARY KEY (tenant_id, id))
#           holding every tenant's rows; the client filters by its tenant itself;
#   schema  tenancy model "schema": 100 tenants made with `pgfleet tenant create` (a tenant
#           migration creates items(id bigint PRIMARY KEY, v bigint) and its rows in each schema);
#   row     tenancy model "row": the same shared table as plain, row-level security from
#           `pgfleet tenant policies --apply`, 100 tenants made with `pgfleet tenant create`.
# Every tenant's rows are checked through pgfleet first (which also puts all 200 tenants in
# pgfleet's directory cache). Then, per workload and protocol mode, each of CLIENTS pgbench
# processes runs one client for its own tenant, drawn at random from the 100 (the same draw for
# the three databases of a round, a new draw each round): in schema and row it connects as
# `bench.tenantN` (tenant from the user name), in plain as `bench` with `-D tno=N`. Workloads:
#   select  `SELECT v FROM items WHERE id = :id` (one statement per transaction: the largest
#           share of per-transaction tenancy work);
#   rw      BEGIN; the SELECT; `UPDATE items SET v = v + 1 WHERE id = :id`; END.
# (plain adds `tenant_id = 'tenant' || :tno AND` to both statements.) The three databases run
# back to back in a rotating order per round (plain schema row / schema row plain / row plain
# schema), ROUNDS rounds; TPS is the sum over the processes; medians. Target: schema / plain and
# row / plain TPS >= 0.90. pgfleet's own CPU time and PostgreSQL's (postmaster and every backend)
# per transaction are read from /proc per run.
# Directory round trips: pg_stat_statements calls and pg_stat_database transactions in the
# metadata database before and after all measured runs (with every tenant cached, they must not
# grow with the client transactions).
# Prints everything (with the command and the machine) and writes it to
# bench/results/<date>-<UTC hhmm>-tenancy.md (-tenancy-quick.md with --quick). Everything started is
# stopped and removed on exit.
#
# Environment knobs (defaults; --quick defaults in brackets):
#   BENCH_TENANTS 100   BENCH_ROWS 10000 [1000] (rows per tenant)   BENCH_CLIENTS 32 [8]
#   BENCH_POOL 10 (pgfleet pool_size)   BENCH_SECONDS 10 [3]   BENCH_ROUNDS 3 [1]
#   BENCH_WORKLOADS "select rw"   BENCH_MODES "simple prepared"   BENCH_ONE_TENANT=1 every client
#   uses tenant1 (a diagnostic: the server connections then always hold that tenant's context, so
#   no settings sync is needed; results go to <date>-tenancy-one-tenant.md)   BENCH_NOTE "" (a
#   line added to the results)   BENCH_KEEP=1 keep the scratch directory   PGFLEET_BIN use this binary
#   instead of building   BENCH_BOLT=1 the BOLT build of bench/bolt.sh   PG_BIN /usr/lib/postgresql/15/bin   RUST_LOG warn
set -euo pipefail

# shellcheck source=bench/args.sh
source "$(dirname "${BASH_SOURCE[0]}")/args.sh" "$@"

# ---- sizes and rounds ---------------------------------------------------------------------------
TENANTS=${BENCH_TENANTS:-100}
ROWS=${BENCH_ROWS:-$(q 10000 1000)}          # rows per tenant
CLIENTS=${BENCH_CLIENTS:-$(q 32 8)}          # pgbench processes of one client each, one tenant each
POOL=${BENCH_POOL:-10}
SECONDS_PER_RUN=${BENCH_SECONDS:-$(q 10 3)}
ROUNDS=${BENCH_ROUNDS:-$(q 3 1)}
WORKLOADS=${BENCH_WORKLOADS:-"select rw"}
MODES=${BENCH_MODES:-"simple prepared"}
ONE_TENANT=${BENCH_ONE_TENANT:-0}
NOTE=${BENCH_NOTE:-}
# --------------------------------------------------------------------------------------------------

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_common_tools
command -v shuf >/dev/null || die "shuf not found (coreutils)"
[[ -f $PG_BIN/../lib/pg_stat_statements.so || -f $($PG_BIN/pg_config --pkglibdir 2>/dev/null || echo /nonexistent)/pg_stat_statements.so ]] ||
    die "pg_stat_statements not found next to $PG_BIN (apt-get install -y postgresql-15 or postgresql-contrib)"
(( CLIENTS <= TENANTS )) || die "BENCH_CLIENTS ($CLIENTS) must not exceed BENCH_TENANTS ($TENANTS): one tenant per client"
make_workdir pgfleet-tenancy

stop_everything_on_exit

START_EPOCH=$(date +%s)
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
CMD=bench/tenancy.sh
SUFFIX=""
if [[ $QUICK == 1 ]]; then CMD+=" --quick"; SUFFIX="-quick"; fi
if [[ $ONE_TENANT == 1 ]]; then SUFFIX+="-one-tenant"; fi
KNOBS="BENCH_ONE_TENANT=$ONE_TENANT BENCH_TENANTS=$TENANTS BENCH_ROWS=$ROWS BENCH_CLIENTS=$CLIENTS BENCH_POOL=$POOL BENCH_SECONDS=$SECONDS_PER_RUN BENCH_ROUNDS=$ROUNDS BENCH_WORKLOADS=\"$WORKLOADS\" BENCH_MODES=\"$MODES\""

pgfleet_binary

# ---- the cluster --------------------------------------------------------------------------------
log "initdb ($STORAGE_NOTE)"
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$WORK/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 --no-sync >"$WORK/initdb.log" 2>&1 || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
PG_PORT=$(free_port)
cat >>"$WORK/pg/postgresql.conf" <<CONF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
max_connections = 200
shared_buffers = 256MB
fsync = off
full_page_writes = off
synchronous_commit = off
max_parallel_workers_per_gather = 0
jit = off
# Counts the metadata database's statements (the tenant directory's round trips).
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
CONF
"${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w start >/dev/null || die "PostgreSQL did not start"
DATA_DIRS+=("$WORK/pg")
PG_VERSION=$(psql -h "$WORK" -p "$PG_PORT" -U postgres -d postgres -XAtc 'show server_version')
sock() { psql -h "$WORK" -p "$PG_PORT" -U "$2" -d "$1" -X -q -v ON_ERROR_STOP=1 "${@:3}"; } # db user args…
sock postgres postgres -c "ALTER ROLE postgres PASSWORD 'postgres'" \
    -c "CREATE ROLE bench LOGIN PASSWORD 'bench' NOSUPERUSER NOBYPASSRLS" \
    -c "CREATE DATABASE pgfleet_meta" -c "CREATE DATABASE plain OWNER bench" \
    -c "CREATE DATABASE schema_t OWNER bench" -c "CREATE DATABASE row_t" \
    -c "CREATE EXTENSION pg_stat_statements"
export PGPASSWORD=bench

# ---- data ---------------------------------------------------------------------------------------
# plain and row: one shared table with every tenant's rows. In row_t it belongs to postgres, so
# that bench, the proxy's server role, is subject to row-level security.
SHARED_TABLE="CREATE TABLE items (tenant_id text NOT NULL, id bigint NOT NULL, v bigint NOT NULL, PRIMARY KEY (tenant_id, id));
    INSERT INTO items SELECT 'tenant' || t, g, g FROM generate_series(1, $TENANTS) t, generate_series(1::bigint, $ROWS) g;"
LOAD_START=$(date +%s)
log "loading: $TENANTS tenants x $ROWS rows in plain and row_t"
sock plain bench -c "$SHARED_TABLE" -c "VACUUM (FREEZE, ANALYZE) items"
sock row_t postgres -c "$SHARED_TABLE" -c "GRANT SELECT, UPDATE ON items TO bench" -c "VACUUM (FREEZE, ANALYZE) items"

# ---- pgfleet ------------------------------------------------------------------------------------
FLEET_PORT=$(free_port)
cat >"$WORK/pgfleet.toml" <<CONF
[proxy]
listen = "127.0.0.1:$FLEET_PORT"
[pool]
pool_mode = "transaction"
pool_size = $POOL
checkout_timeout = "30s"
[clusters.main]
servers = [{ host = "127.0.0.1", port = $PG_PORT, role = "primary" }]
[metadata]
cluster = "main"
database = "pgfleet_meta"
user = "postgres"
password = "postgres"
[databases.plain]
cluster = "main"
[databases.schema_t]
cluster = "main"
[databases.schema_t.tenancy]
model = "schema"
[databases.row_t]
cluster = "main"
[databases.row_t.tenancy]
model = "row"
[users.bench]
password = "bench"
[users.admin]
password = "bench"
admin = true
CONF
"$PGFLEET_BIN" check-config "$WORK/pgfleet.toml" >/dev/null || die "check-config refused $WORK/pgfleet.toml"

# Tenants: `pgfleet tenant create` (run in $WORK, so no migrations folder of the checkout is
# picked up). Schema model: the tenant migration creates and fills the tenant's items.
mkdir -p "$WORK/migrations/tenant"
cat >"$WORK/migrations/tenant/V0001__items.sql" <<SQL
CREATE TABLE items (id bigint PRIMARY KEY, v bigint NOT NULL);
INSERT INTO items SELECT g, g FROM generate_series(1::bigint, $ROWS) g;
SQL
tenant() { (cd "$WORK" && "$PGFLEET_BIN" tenant --config "$WORK/pgfleet.toml" "$@"); }
log "creating $TENANTS tenants in schema_t and in row_t with pgfleet tenant create"
for t in $(seq "$TENANTS"); do
    tenant --database schema_t --user bench create "tenant$t" --dir "$WORK/migrations" >>"$WORK/tenant-create.out" 2>&1 ||
        { tail -n 5 "$WORK/tenant-create.out" >&2; die "pgfleet tenant create tenant$t (schema_t) failed"; }
    tenant --database row_t --user bench create "tenant$t" >>"$WORK/tenant-create.out" 2>&1 ||
        { tail -n 5 "$WORK/tenant-create.out" >&2; die "pgfleet tenant create tenant$t (row_t) failed"; }
done
PGPASSWORD=postgres tenant --database row_t --user postgres policies --apply >"$WORK/policies.out" 2>&1 ||
    { cat "$WORK/policies.out" >&2; die "pgfleet tenant policies --apply failed"; }
PGPASSWORD=postgres tenant --database row_t --user postgres policies >>"$WORK/policies.out" 2>&1 ||
    { cat "$WORK/policies.out" >&2; die "row_t still needs fixing after pgfleet tenant policies --apply"; }
for t in $(seq "$TENANTS"); do echo "VACUUM (FREEZE, ANALYZE) tenant_tenant$t.items;"; done | sock schema_t bench
LOAD_SECONDS=$(( $(date +%s) - LOAD_START ))
log "loaded and provisioned in ${LOAD_SECONDS}s"

"$PGFLEET_BIN" serve --config "$WORK/pgfleet.toml" >"$WORK/pgfleet.log" 2>&1 &
FLEET_PID=$!
PIDS+=("$FLEET_PID")
err=""
for _ in $(seq 300); do
    err=$(psql -h 127.0.0.1 -p "$FLEET_PORT" -U bench -d plain -XAtc 'select 1' 2>&1) && break
    kill -0 "$FLEET_PID" 2>/dev/null || die "pgfleet exited: $err"
    sleep 0.1
done
[[ $err == 1 ]] || die "pgfleet did not accept connections within 30 s: $err"
log "pgfleet on 127.0.0.1:$FLEET_PORT (pid $FLEET_PID)"
via() { psql -h 127.0.0.1 -p "$FLEET_PORT" -U "$1" -d "$2" -X -q -At -v ON_ERROR_STOP=1 "${@:3}"; } # user db args…

# Every tenant through pgfleet, in both databases: its own rows only, in its own schema. This is
# also the directory warm-up: afterwards every tenant is in pgfleet's cache.
log "checking every tenant's rows through pgfleet (and warming the tenant directory cache)"
meta_calls() {
    sock postgres postgres -At -c "SELECT coalesce(sum(s.calls), 0) FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'pgfleet_meta'"
}
meta_xacts() { # pg_stat_database lags up to ~10 s behind idle backends: wait for the flush first
    sleep 11
    sock postgres postgres -At -c "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'pgfleet_meta'"
}
WARM_CALLS_BEFORE=$(meta_calls)
BAD=0
for t in $(seq "$TENANTS"); do
    got=$(via "bench.tenant$t" schema_t -F ' ' -c "SELECT current_schema(), count(*), sum(v) FROM items")
    [[ $got == "tenant_tenant$t $ROWS $(( ROWS * (ROWS + 1) / 2 ))" ]] || { BAD=$((BAD + 1)); log "schema_t tenant$t: $got"; }
    got=$(via "bench.tenant$t" row_t -F ' ' -c "SELECT min(tenant_id), max(tenant_id), count(*) FROM items")
    [[ $got == "tenant$t tenant$t $ROWS" ]] || { BAD=$((BAD + 1)); log "row_t tenant$t: $got"; }
done
[[ $BAD == 0 ]] || die "$BAD tenant checks through pgfleet failed"
[[ $(via bench plain -c "SELECT count(*) FROM items") == $((TENANTS * ROWS)) ]] || die "plain items count differs"
WARM_CALLS_AFTER=$(meta_calls)

# ---- workloads ----------------------------------------------------------------------------------
# script NAME DB: the pgbench script of a workload for a database.
write_script() { # workload db file
    local filter=""
    [[ $2 == plain ]] && filter="tenant_id = 'tenant' || :tno AND "
    {
        printf '\\set id random(1, %s)\n' "$ROWS"
        case "$1" in
            select) printf 'SELECT v FROM items WHERE %sid = :id;\n' "$filter" ;;
            rw) printf 'BEGIN;\nSELECT v FROM items WHERE %sid = :id;\nUPDATE items SET v = v + 1 WHERE %sid = :id;\nEND;\n' "$filter" "$filter" ;;
            *) die "unknown workload $1 (select, rw)" ;;
        esac
    } >"$3"
}
TARGETS=(plain schema_t row_t)
for w in $WORKLOADS; do for db in "${TARGETS[@]}"; do write_script "$w" "$db" "$WORK/$w-$db.sql"; done; done

# SHOW STATS counters: settings syncs pgfleet sent ahead of a transaction (the tenant context among
# them) and statements it prepared again on a server connection that lacked them.
fleet_counters() {
    psql -h 127.0.0.1 -p "$FLEET_PORT" -U admin -d pgfleet -X -At -x -c 'SHOW STATS' |
        awk -F'|' '$1 == "settings_replays" { s = $2 } $1 == "reprepares" { r = $2 } END { print s + 0, r + 0 }'
}
CLK_TCK=$(getconf CLK_TCK)
RUN_TSV=$WORK/runs.tsv
: >"$RUN_TSV"
FAILURES=()
# run ROUND WORKLOAD MODE DB TENANTS…: CLIENTS pgbench processes at once, one per tenant.
run_cell() {
    local round=$1 w=$2 mode=$3 db=$4; shift 4
    local dir=$WORK/out/$round-$w-$mode-$db pids=() t i=0 user extra
    mkdir -p "$dir"
    local ticks0 srv0 syncs0 reps0; ticks0=$(cpu_ticks "$FLEET_PID"); srv0=$(cluster_ticks "$WORK/pg")
    read -r syncs0 reps0 <<<"$(fleet_counters)"
    for t in "$@"; do
        if [[ $db == plain ]]; then user=bench; extra=(-D "tno=$t"); else user="bench.tenant$t"; extra=(); fi
        pgbench -n -h 127.0.0.1 -p "$FLEET_PORT" -U "$user" -c 1 -j 1 -T "$SECONDS_PER_RUN" -M "$mode" \
            "${extra[@]}" -f "$WORK/$w-$db.sql" "$db" >"$dir/$i.out" 2>&1 &
        pids+=($!); i=$((i + 1))
    done
    local failed=0
    for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
    local ticks1 srv1 syncs1 reps1; ticks1=$(cpu_ticks "$FLEET_PID"); srv1=$(cluster_ticks "$WORK/pg")
    read -r syncs1 reps1 <<<"$(fleet_counters)"
    # Sum over the processes: TPS, transactions, failed transactions; mean latency weighted by TPS.
    local sums
    sums=$(awk '
        /^tps = / { tps += $3 }
        /^number of transactions actually processed:/ { split($6, a, "/"); tx += a[1] }
        /^number of failed transactions:/ { bad += $5 }
        END { printf "%.1f %d %d", tps, tx, bad }' "$dir"/*.out)
    read -r tps tx bad <<<"$sums"
    if (( failed > 0 || bad > 0 )); then
        FAILURES+=("round $round $w -M $mode $db: $failed pgbench process(es) failed, $bad failed transactions: $(grep -h -m1 -iE 'error|fatal|abort' "$dir"/*.out | head -n1)")
    fi
    local cpu_us srv_us
    cpu_us=$(awk -v d=$((ticks1 - ticks0)) -v hz="$CLK_TCK" -v tx="$tx" 'BEGIN { printf "%.1f", (tx > 0 ? d / hz * 1e6 / tx : 0) }')
    srv_us=$(awk -v d=$((srv1 - srv0)) -v hz="$CLK_TCK" -v tx="$tx" 'BEGIN { printf "%.1f", (tx > 0 ? d / hz * 1e6 / tx : 0) }')
    local per_tx
    per_tx=$(awk -v s=$((syncs1 - syncs0)) -v r=$((reps1 - reps0)) -v tx="$tx" 'BEGIN { printf "%.2f\t%.3f", (tx > 0 ? s / tx : 0), (tx > 0 ? r / tx : 0) }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$mode" "$db" "$round" "$tps" "$tx" "$cpu_us" "$per_tx" "$srv_us" >>"$RUN_TSV"
    log "  $db: $tps TPS ($tx transactions, CPU µs/transaction: pgfleet ${cpu_us}, PostgreSQL ${srv_us}; settings syncs and re-prepares per transaction: ${per_tx//$'\t'/, })"
}

# CLIENTS tenant numbers: drawn at random without repeats, or tenant 1 for everyone.
draw_tenants() {
    if [[ $ONE_TENANT == 1 ]]; then printf '1 %.0s' $(seq "$CLIENTS"); else shuf -i 1-"$TENANTS" -n "$CLIENTS" | tr '\n' ' '; fi
}

# A short warm-up of every cell (prepared statements on the server connections, caches).
log "warm-up: every workload, mode and database for 2 s"
WARM_TENANTS=$(draw_tenants)
SAVED_SECONDS=$SECONDS_PER_RUN; SECONDS_PER_RUN=2
for w in $WORKLOADS; do for mode in $MODES; do for db in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086
    run_cell 0 "$w" "$mode" "$db" $WARM_TENANTS >/dev/null 2>&1
done; done; done
SECONDS_PER_RUN=$SAVED_SECONDS
: >"$RUN_TSV"
FAILURES=()
kill -0 "$FLEET_PID" 2>/dev/null || die "pgfleet exited during the warm-up"

META_XACTS_BEFORE=$(meta_xacts)
sock postgres postgres -At -c "SELECT pg_stat_statements_reset()" >/dev/null
META_CALLS_BEFORE=$(meta_calls)
MEASURE_START=$(date +%s)
for round in $(seq "$ROUNDS"); do
    # Rotate the order per round: plain schema row / schema row plain / row plain schema.
    k=$(( (round - 1) % 3 ))
    ORDER=("${TARGETS[@]:k}" "${TARGETS[@]:0:k}")
    for w in $WORKLOADS; do
        for mode in $MODES; do
            TENANT_DRAW=$(draw_tenants)
            log "round $round/$ROUNDS: $w -M $mode, $CLIENTS clients (${SECONDS_PER_RUN}s each: ${ORDER[*]})"
            # shellcheck disable=SC2086
            for db in "${ORDER[@]}"; do run_cell "$round" "$w" "$mode" "$db" $TENANT_DRAW; done
        done
    done
done
MEASURE_SECONDS=$(( $(date +%s) - MEASURE_START ))
kill -0 "$FLEET_PID" 2>/dev/null || die "pgfleet exited during the measured runs"
META_CALLS_AFTER=$(meta_calls)
META_STATEMENTS=$(sock postgres postgres -At -F ' | ' -c "SELECT s.calls, '\`' || left(regexp_replace(s.query, '\s+', ' ', 'g'), 100) || '\`' FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'pgfleet_meta' ORDER BY s.calls DESC LIMIT 10")
META_XACTS_AFTER=$(meta_xacts)
TENANT_TX=$(awk -F'\t' '$3 != "plain" { s += $6 } END { print s + 0 }' "$RUN_TSV")
ALL_TX=$(awk -F'\t' '{ s += $6 } END { print s + 0 }' "$RUN_TSV")

# ---- tables -------------------------------------------------------------------------------------
TABLE=$(awk -F'\t' "$AWK_MEDIAN"'
    { k = $1 SUBSEP $2; tps[k SUBSEP $3] = tps[k SUBSEP $3] " " sprintf("%.0f", $5); cpu[k SUBSEP $3] = cpu[k SUBSEP $3] " " $7
      syn[k SUBSEP $3] = syn[k SUBSEP $3] " " $8; rep[k SUBSEP $3] = rep[k SUBSEP $3] " " $9; srv[k SUBSEP $3] = srv[k SUBSEP $3] " " $10
      if (!(k in seen)) { seen[k] = 1; order[n++] = k } }
    END {
        print "| workload | mode | plain TPS (median) | schema TPS | row TPS | schema / plain | row / plain | target >= 0.90 | pgfleet CPU µs/tx plain / schema / row | PostgreSQL CPU µs/tx plain / schema / row | settings syncs per tx plain / schema / row | re-prepares per tx plain / schema / row | plain, per round | schema, per round | row, per round |"
        print "|---|---|---:|---:|---:|---:|---:|---|---|---|---|---|---|---|---|"
        for (i = 0; i < n; i++) {
            k = order[i]; split(k, kk, SUBSEP)
            p = median(tps[k SUBSEP "plain"]); s = median(tps[k SUBSEP "schema_t"]); r = median(tps[k SUBSEP "row_t"])
            rs = (p > 0 ? s / p : 0); rr = (p > 0 ? r / p : 0)
            met = (rs >= 0.9 && rr >= 0.9) ? "met" : (rs >= 0.9 ? "schema met, row NOT met" : (rr >= 0.9 ? "row met, schema NOT met" : "NOT met"))
            printf "| %s | %s | %.0f | %.0f | %.0f | %.2f | %.2f | %s | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.2f / %.2f / %.2f | %.3f / %.3f / %.3f | %s | %s | %s |\n", kk[1], kk[2], p, s, r, rs, rr, met,
                median(cpu[k SUBSEP "plain"]), median(cpu[k SUBSEP "schema_t"]), median(cpu[k SUBSEP "row_t"]),
                median(srv[k SUBSEP "plain"]), median(srv[k SUBSEP "schema_t"]), median(srv[k SUBSEP "row_t"]),
                median(syn[k SUBSEP "plain"]), median(syn[k SUBSEP "schema_t"]), median(syn[k SUBSEP "row_t"]),
                median(rep[k SUBSEP "plain"]), median(rep[k SUBSEP "schema_t"]), median(rep[k SUBSEP "row_t"]),
                substr(tps[k SUBSEP "plain"], 2), substr(tps[k SUBSEP "schema_t"], 2), substr(tps[k SUBSEP "row_t"], 2)
        }
    }' "$RUN_TSV")
# Per-round ratios (each round runs the three databases back to back, so a round's ratio is the
# least disturbed by the machine's drift).
ROUND_RATIOS=$(awk -F'\t' '
    { v[$1 SUBSEP $2 SUBSEP $4 SUBSEP $3] = $5; k = $1 SUBSEP $2; if (!(k in seen)) { seen[k] = 1; order[n++] = k }; if ($4 > maxr) maxr = $4 }
    END {
        for (i = 0; i < n; i++) {
            k = order[i]; split(k, kk, SUBSEP); line = "- " kk[1] " -M " kk[2] ": schema / plain"
            for (r = 1; r <= maxr; r++) { p = v[k SUBSEP r SUBSEP "plain"]; line = line sprintf(" %.2f", (p > 0 ? v[k SUBSEP r SUBSEP "schema_t"] / p : 0)) }
            line = line "; row / plain"
            for (r = 1; r <= maxr; r++) { p = v[k SUBSEP r SUBSEP "plain"]; line = line sprintf(" %.2f", (p > 0 ? v[k SUBSEP r SUBSEP "row_t"] / p : 0)) }
            print line
        }
    }' "$RUN_TSV")

# ---- report -------------------------------------------------------------------------------------
ELAPSED=$(( $(date +%s) - START_EPOCH ))
MACHINE=$(machine_summary)
LOAD_AVG=$(cut -d' ' -f1-3 /proc/loadavg)
report() {
    echo "# Tenancy (issue 5 targets) — $START_DATE"
    echo
    echo "- command: \`$KNOBS $CMD\` (took ${ELAPSED}s; loading and provisioning ${LOAD_SECONDS}s, measured runs ${MEASURE_SECONDS}s)"
    echo "- machine: $MACHINE; load average at the end $LOAD_AVG"
    echo "- PostgreSQL $PG_VERSION: one cluster ($STORAGE_NOTE; shared_buffers=256MB, fsync=off, synchronous_commit=off, pg_stat_statements loaded); pgfleet $PGFLEET_REV ($BUILD_NOTE), transaction pooling, pool_size $POOL per (user, database), SCRAM"
    echo "- every server, pgfleet and the clients share this machine's cores"
    [[ $ONE_TENANT == 1 ]] && echo "- BENCH_ONE_TENANT=1: every client uses tenant1 (plain: tno=1), instead of one tenant each drawn at random; a diagnostic of the cost without settings syncs"
    [[ -n $NOTE ]] && echo "- note: $NOTE"
    echo
    echo "## Tenant context per transaction: TPS with tenancy vs the same workload without"
    echo
    echo "Databases behind the same pgfleet: \`plain\` (no tenancy; items(tenant_id, id, v) with $TENANTS × $ROWS rows, the client filters by its tenant), \`schema_t\` (model schema: $TENANTS tenant schemas of $ROWS rows, made with \`pgfleet tenant create\` and a tenant migration), \`row_t\` (model row: the plain table under row-level security from \`pgfleet tenant policies --apply\`, $TENANTS tenants made with \`pgfleet tenant create\`). $CLIENTS pgbench processes at once, each \`pgbench -n -c 1 -j 1 -T $SECONDS_PER_RUN -M MODE\` for one tenant (\`-U bench.tenantN\`; plain: \`-U bench -D tno=N\`), the $CLIENTS tenants drawn at random from the $TENANTS per round and cell (the same draw for the three databases); TPS summed over the processes. $ROUNDS round(s), the order of the databases rotating per round; medians. Scripts (\`\\set id random(1, $ROWS)\` first):"
    echo
    echo "- select: \`SELECT v FROM items WHERE id = :id;\`"
    echo "- rw: \`BEGIN; SELECT v FROM items WHERE id = :id; UPDATE items SET v = v + 1 WHERE id = :id; END;\`"
    echo "- plain adds \`tenant_id = 'tenant' || :tno AND\` to each WHERE."
    echo
    echo "$TABLE"
    echo
    echo "Per-round ratios:"
    echo
    echo "$ROUND_RATIOS"
    echo
    if [[ ${#FAILURES[@]} -gt 0 ]]; then echo "Failures:"; printf -- '- %s\n' "${FAILURES[@]}"; else echo "Failures: none."; fi
    echo
    echo "## Directory lookups of cached tenants"
    echo
    echo "Statements run in the metadata database (pg_stat_statements calls, database pgfleet_meta) and its transactions (pg_stat_database xact_commit + xact_rollback, read after 11 s so idle backends have flushed):"
    echo
    echo "| window | client transactions through pgfleet | with a tenant | metadata statements | metadata transactions |"
    echo "|---|---:|---:|---:|---:|"
    echo "| tenant check and warm-up (first sight of all $((2 * TENANTS)) (database, tenant) pairs, one psql session each) | $((2 * TENANTS + 1)) | $((2 * TENANTS)) | $((WARM_CALLS_AFTER - WARM_CALLS_BEFORE)) | - |"
    echo "| all measured runs (every tenant cached) | $ALL_TX | $TENANT_TX | $((META_CALLS_AFTER - META_CALLS_BEFORE)) | $((META_XACTS_AFTER - META_XACTS_BEFORE)) |"
    echo
    echo "Statements in the metadata database during the measured runs (pg_stat_statements, reset just before; calls | query):"
    echo
    if [[ -n $META_STATEMENTS ]]; then sed 's/^/- /' <<<"$META_STATEMENTS"; else echo "- none"; fi
    echo
    echo "The metadata transactions window starts 11 s before the runs and ends 11 s after them (the wait for pg_stat_database); transactions without a tracked statement (e.g. autovacuum's) count there too."
}
echo
report | tee "$WORK/report.md"
mkdir -p "$ROOT/bench/results"
MD=$ROOT/bench/results/$(date -u +%Y-%m-%d-%H%M)-tenancy$SUFFIX.md
cp "$WORK/report.md" "$MD"
echo
echo "markdown written to ${MD#"$ROOT"/}"

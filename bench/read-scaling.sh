#!/usr/bin/env bash
# read-scaling.sh — pgbench -S through pgfleet with the primary alone vs with two streaming replicas.
#
# Usage: bench/read-scaling.sh [--quick]
#
# Starts a scratch PostgreSQL 15 primary with two pg_basebackup replicas, and two pgfleet processes:
# one whose cluster is the primary alone, one whose cluster is the primary plus both replicas (reads
# spread over the replicas, primary_reads = "fallback"). Runs pgbench -S (simple protocol) against
# the primary directly and through each pgfleet, alternating, ROUNDS times, and prints medians and
# the ratio (replicas / primary alone). Everything started is stopped and removed on exit.
#
# On this 2-core machine all three servers, both proxies and pgbench share the same two cores, so
# the ratio shows the cost of routing and spreading, not the capacity gain of real extra machines.
#
# Environment knobs (defaults in brackets):
#   BENCH_SECONDS [10; 5 with --quick]  BENCH_CLIENTS ["16 64"]  BENCH_ROUNDS [3; 1 with --quick]
#   BENCH_POOL [20]  BENCH_SCALE [10]  PG_BIN [/usr/lib/postgresql/15/bin]  RUST_LOG [warn]
#   BENCH_KEEP=1 keep the scratch directory   PGFLEET_BIN use this binary instead of building   BENCH_BOLT=1 the BOLT build of bench/bolt.sh
set -euo pipefail

# shellcheck source=bench/args.sh
source "$(dirname "${BASH_SOURCE[0]}")/args.sh" "$@"
SECONDS_PER_RUN=${BENCH_SECONDS:-$(q 10 5)}
ROUNDS=${BENCH_ROUNDS:-$(q 3 1)}
CLIENTS=${BENCH_CLIENTS:-"16 64"}
POOL=${BENCH_POOL:-20}
SCALE=${BENCH_SCALE:-10}

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_common_tools
make_workdir pgfleet-scaling

stop_everything_on_exit

pgfleet_binary

start_pg() { # dir port
    cat >>"$1/postgresql.conf" <<CONF
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$WORK'
max_connections = 200
shared_buffers = 128MB
fsync = off
full_page_writes = off
hot_standby = on
CONF
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$1" -l "$WORK/$(basename "$1").log" -w start >/dev/null
    DATA_DIRS+=("$1")
}

PRIMARY_PORT=$(free_port)
log "primary: initdb and start on 127.0.0.1:$PRIMARY_PORT ($STORAGE_NOTE)"
"${RUN_AS[@]}" "$PG_BIN/initdb" -D "$WORK/primary" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 --no-sync >"$WORK/initdb.log" 2>&1
start_pg "$WORK/primary" "$PRIMARY_PORT"
psql -h "$WORK" -p "$PRIMARY_PORT" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE bench LOGIN PASSWORD 'bench'" -c "CREATE DATABASE bench OWNER bench"
export PGPASSWORD=bench
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$PRIMARY_PORT" -U bench bench >"$WORK/pgbench-init.log" 2>&1

REPLICA_PORTS=()
for i in 1 2; do
    port=$(free_port)
    log "replica $i: pg_basebackup and start on 127.0.0.1:$port"
    "${RUN_AS[@]}" "$PG_BIN/pg_basebackup" -h "$WORK" -p "$PRIMARY_PORT" -U postgres -D "$WORK/replica$i" -R -X stream \
        >"$WORK/basebackup$i.log" 2>&1
    # The copied postgresql.conf already has the primary's port lines; later lines win.
    start_pg "$WORK/replica$i" "$port"
    REPLICA_PORTS+=("$port")
done

write_config() { # file port servers
    cat >"$1" <<CONF
[proxy]
listen = "127.0.0.1:$2"
[pool]
pool_mode = "transaction"
pool_size = $POOL
checkout_timeout = "30s"
[clusters.main]
servers = [$3]
[databases.bench]
cluster = "main"
[users.bench]
password = "bench"
CONF
}
server() { printf '{ host = "127.0.0.1", port = %s, role = "%s" }' "$1" "$2"; }
ALONE_PORT=$(free_port)
SPREAD_PORT=$(free_port)
write_config "$WORK/alone.toml" "$ALONE_PORT" "$(server "$PRIMARY_PORT" primary)"
write_config "$WORK/spread.toml" "$SPREAD_PORT" \
    "$(server "$PRIMARY_PORT" primary), $(server "${REPLICA_PORTS[0]}" replica), $(server "${REPLICA_PORTS[1]}" replica)"
for name in alone spread; do
    "$PGFLEET_BIN" serve --config "$WORK/$name.toml" >"$WORK/pgfleet-$name.log" 2>&1 &
    PIDS+=($!)
done
declare -A PORT=([direct]=$PRIMARY_PORT [alone]=$ALONE_PORT [spread]=$SPREAD_PORT)
for target in alone spread; do
    for _ in $(seq 100); do
        psql -h 127.0.0.1 -p "${PORT[$target]}" -U bench -d bench -XAtc 'select 1' >/dev/null 2>&1 && break
        sleep 0.1
    done
done
# Replicas get reads once the monitor has measured them (a few hundred ms): check they do.
sleep 1
SEEN=$(for _ in $(seq 20); do psql -h 127.0.0.1 -p "$SPREAD_PORT" -U bench -d bench -XAtc 'select inet_server_port()'; done | sort -u | tr '\n' ' ')
log "ports answering reads through the replicated pgfleet: $SEEN"

RESULTS=$WORK/results.tsv
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
    for c in $CLIENTS; do
        for target in direct alone spread; do
            log "round $round: $target -c $c (${SECONDS_PER_RUN}s)"
            out=$(pgbench -n -S -h 127.0.0.1 -p "${PORT[$target]}" -U bench -c "$c" -j 2 -T "$SECONDS_PER_RUN" bench 2>&1) ||
                die "pgbench against $target failed: $(tail -n 3 <<<"$out")"
            tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -n1)
            failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out" | head -n1)
            printf '%s\t%s\t%s\t%s\n' "$c" "$target" "$tps" "${failed:-0}" >>"$RESULTS"
        done
    done
done

echo
echo "pgbench -S, simple protocol, ${SECONDS_PER_RUN}s per run, -j 2, scale $SCALE, pool size $POOL per endpoint, median of $ROUNDS round(s)"
awk -F'\t' "$AWK_MEDIAN"'
    { k = $1 SUBSEP $2; v[k] = v[k] " " $3; f[k] += $4; if (!($1 in seen)) { seen[$1] = 1; order[n++] = $1 } }
    END {
        print "| clients | direct primary TPS | pgfleet, primary alone TPS | pgfleet, primary + 2 replicas TPS | replicas / alone | failed |"
        print "|---|---:|---:|---:|---:|---:|"
        for (i = 0; i < n; i++) {
            c = order[i]; d = median(v[c SUBSEP "direct"]); a = median(v[c SUBSEP "alone"]); s = median(v[c SUBSEP "spread"])
            printf "| %s | %.0f | %.0f | %.0f | %.2f | %d |\n", c, d, a, s, (a > 0 ? s / a : 0), f[c SUBSEP "direct"] + f[c SUBSEP "alone"] + f[c SUBSEP "spread"]
        }
    }' "$RESULTS"
echo "$STORAGE_NOTE; fsync=off; all servers, both pgfleet processes and pgbench share this machine's cores"

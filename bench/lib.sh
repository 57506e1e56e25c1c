# bench/lib.sh — shared by the benchmark scripts (sourced, not run).
# The checkout and shared defaults, logging, prerequisite checks, free ports, and running PostgreSQL
# as `postgres` when root.

# The checkout (ROOT, also the working directory from here on) and the defaults every script shares.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export RUST_LOG=${RUST_LOG:-warn}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Do not let the caller's libpq environment redirect any connection.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGPASSFILE PGOPTIONS PGSSLMODE || true

# Checks the tools every benchmark needs; PG_BIN must be set.
require_common_tools() {
    command -v cargo >/dev/null || die "cargo not found (install Rust: https://rustup.rs)"
    [[ -x $PG_BIN/initdb && -x $PG_BIN/pg_ctl ]] ||
        die "PostgreSQL server binaries not found in $PG_BIN (apt-get install -y postgresql-15, or set PG_BIN)"
    command -v pgbench >/dev/null || die "pgbench not found (apt-get install -y postgresql-contrib or postgresql-client-15)"
    command -v psql >/dev/null || die "psql not found (apt-get install -y postgresql-client-15)"
    command -v python3 >/dev/null || die "python3 not found (used to pick free ports)"
}

# pgbench holds one socket per client, proxies two per client/server pair: raise the fd limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

# PostgreSQL and PgBouncer refuse to run as root; as root they run as the `postgres` user.
RUN_AS=()
if [[ $(id -u) == 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root needs an OS user \`postgres\` to run PostgreSQL and PgBouncer"
    RUN_AS=(runuser -u postgres --)
fi

# CPU time of processes, for per-transaction CPU columns: clock ticks of CLK_TCK per second.
CLK_TCK=$(getconf CLK_TCK)
cpu_user_sys() { # pid -> "utime stime" in clock ticks ("0 0" without a pid or once it is gone)
    if [[ -n $1 && -r /proc/$1/stat ]]; then
        awk '{ print $14, $15 }' "/proc/$1/stat" 2>/dev/null || echo "0 0"
    else
        echo "0 0"
    fi
}
cpu_ticks() { # pid -> utime + stime in clock ticks (0 without a pid or once it is gone)
    cpu_user_sys "$1" | awk '{ print $1 + $2 }'
}
cluster_ticks() { # data directory -> CPU ticks of its postmaster and every child (backends, …)
    local pm p sum=0
    pm=$(head -n1 "$1/postmaster.pid" 2>/dev/null) || { echo 0; return; }
    for p in "$pm" $(pgrep -P "$pm"); do sum=$((sum + $(cpu_ticks "$p"))); done
    echo "$sum"
}

# An awk function for result tables: median(list) of a space-separated list of numbers (0 when
# empty). Use as awk "$AWK_MEDIAN"'program'.
AWK_MEDIAN='
function median(list,    a, m, i, j, t) {
    m = split(list, a, " ")
    if (m == 0) return 0
    for (i = 2; i <= m; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}'

# One line about this machine for the result files: cores and CPU model, memory, OS.
machine_summary() {
    echo "$(nproc) cores ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# A scratch directory on tmpfs when possible; sets WORK and STORAGE_NOTE.
make_workdir() { # prefix
    local base
    if [[ -d /dev/shm && -w /dev/shm ]]; then
        base=/dev/shm
        STORAGE_NOTE="scratch clusters on /dev/shm (tmpfs, RAM-backed)"
    else
        base=${TMPDIR:-/tmp}
        STORAGE_NOTE="scratch clusters on $base (no writable /dev/shm)"
    fi
    WORK=$(mktemp -d "$base/$1.XXXXXX")
    chmod 755 "$WORK"
    if [[ ${#RUN_AS[@]} -gt 0 ]]; then chown postgres: "$WORK"; fi
}

# Processes to stop (PIDS) and clusters to stop (DATA_DIRS, pg_ctl -m immediate) when the script
# exits, however it exits; then the scratch directory WORK is removed (kept with BENCH_KEEP=1) and,
# after a failure, the tail of every log in it is shown.
stop_everything_on_exit() {
    PIDS=()
    DATA_DIRS=()
    trap cleanup_everything EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup_everything() {
    local rc=$?
    set +e
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    for d in "${DATA_DIRS[@]}"; do
        "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
    done
    if [[ $rc != 0 ]]; then
        for f in "$WORK"/*.log; do [[ -s $f ]] && { echo "---- $f ----" >&2; tail -n 15 "$f" >&2; }; done
    fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "scratch directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}

# initdb of a scratch cluster in DATA for one benchmark PostgreSQL server on 127.0.0.1:PORT (its
# socket in WORK; no fsync: a proxy benchmark, not a durability test).
bench_initdb() { # data port
    "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$1" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 --no-sync >"$WORK/initdb.log" 2>&1 ||
        { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
    cat >>"$1/postgresql.conf" <<EOF

# pgfleet bench: 256 direct clients + both proxies' pools must fit.
max_connections = 400
shared_buffers = 128MB
# A proxy benchmark, not a durability test: no fsync.
fsync = off
full_page_writes = off
password_encryption = 'scram-sha-256'
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$WORK'
EOF
}

# A started scratch cluster in WORK/pgdata (DATA) on 127.0.0.1:PORT with user and database `bench`
# (password bench, exported as PGPASSWORD) and pgbench's tables at scale SCALE; stopped on exit
# (see stop_everything_on_exit).
start_bench_cluster() { # port scale
    DATA=$WORK/pgdata
    bench_initdb "$DATA" "$1"
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$DATA" -l "$WORK/postgres.log" -w start >/dev/null ||
        die "PostgreSQL did not start"
    DATA_DIRS+=("$DATA")
    psql -h "$WORK" -p "$1" -U postgres -d postgres -X -q -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE bench LOGIN PASSWORD 'bench'" -c "CREATE DATABASE bench OWNER bench"
    export PGPASSWORD=bench
    pgbench -i -q -s "$2" -h 127.0.0.1 -p "$1" -U bench bench >"$WORK/pgbench-init.log" 2>&1 ||
        { cat "$WORK/pgbench-init.log" >&2; die "pgbench -i failed"; }
}

# A pgfleet config for pgbench: database and user `bench` (password bench) on one PostgreSQL server
# at 127.0.0.1:PG_PORT, transaction pooling with POOL server connections.
write_bench_config() { # file listen_port pg_port pool
    cat >"$1" <<EOF
[proxy]
listen = "127.0.0.1:$2"

[pool]
pool_mode = "transaction"
pool_size = $4
checkout_timeout = "30s"

[clusters.main]
servers = [{ host = "127.0.0.1", port = $3, role = "primary" }]

[databases.bench]
cluster = "main"

[users.bench]
password = "bench"
EOF
}

# A PgBouncer config for pgbench: database `bench` on 127.0.0.1:PG_PORT in transaction pooling with
# POOL server connections, client authentication AUTH (scram-sha-256 as the benchmarks use, or trust
# where logins must be cheap), the user list (bench/bench) and log in WORK. Readable by `postgres`.
write_pgbouncer_config() { # file listen_port pg_port pool auth
    echo '"bench" "bench"' >"$WORK/userlist.txt"
    cat >"$1" <<EOF
[databases]
bench = host=127.0.0.1 port=$3 dbname=bench

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $2
unix_socket_dir =
auth_type = $5
auth_file = $WORK/userlist.txt
pool_mode = transaction
default_pool_size = $4
max_client_conn = 2000
max_db_connections = 0
ignore_startup_parameters = extra_float_digits
log_connections = 0
log_disconnections = 0
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
EOF
    if [[ ${#RUN_AS[@]} -gt 0 ]]; then chown postgres: "$WORK/userlist.txt" "$1"; fi
}

# The pgfleet binary to measure: PGFLEET_BIN if given, else with BENCH_BOLT=1 the BOLT-optimized
# build of bench/bolt.sh, else a release build of ROOT. Sets PGFLEET_BIN, BUILD_NOTE and
# PGFLEET_REV (commit, "+ uncommitted changes" when the tree differs).
pgfleet_binary() {
    if [[ -n ${PGFLEET_BIN:-} ]]; then
        [[ -x $PGFLEET_BIN ]] || die "PGFLEET_BIN=$PGFLEET_BIN is not an executable"
        BUILD_NOTE="binary given by PGFLEET_BIN=$PGFLEET_BIN (built $(date -u -r "$PGFLEET_BIN" '+%Y-%m-%d %H:%M UTC'))"
    elif [[ ${BENCH_BOLT:-0} == 1 ]]; then
        log "building pgfleet with BOLT (bench/bolt.sh)"
        PGFLEET_BIN=$("$ROOT/bench/bolt.sh")
        BUILD_NOTE="release build laid out by BOLT (bench/bolt.sh)"
    else
        log "building pgfleet (cargo build --release -p pgfleet-cli)"
        cargo build --release -p pgfleet-cli >&2
        PGFLEET_BIN=$ROOT/target/release/pgfleet
        BUILD_NOTE="release build"
    fi
    PGFLEET_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || echo " + uncommitted changes")"
}

//! The one list of every config key (documented in docs/config.md, checked by a test),
//! and "did you mean" suggestions for unknown keys.

/// One documented config key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyDoc {
    /// Path pattern: `<name>` stands for a table name chosen by the operator, `<index>` for an
    /// array position, e.g. `users.<name>.pool.pool_size`, `clusters.<name>.servers.<index>.port`.
    pub path: &'static str,
    /// Value kind: `string`, `integer`, `boolean`, `duration`, `size`, `address`, `array`.
    pub kind: &'static str,
    /// Default as written in the file, or a sentence when there is no literal default.
    pub default: &'static str,
    /// What the key means.
    pub description: &'static str,
}

const fn key(
    path: &'static str,
    kind: &'static str,
    default: &'static str,
    description: &'static str,
) -> KeyDoc {
    KeyDoc {
        path,
        kind,
        default,
        description,
    }
}

const DB_OVERRIDE: &str = "the value from `[pool]`";
const USER_OVERRIDE: &str = "the database override, else `[pool]`";

/// Every key pgfleet reads, in documentation order.
pub const KEYS: &[KeyDoc] = &[
    key("proxy.listen", "address", "\"127.0.0.1:6432\"", "IP address and port clients connect to; changing it needs a restart"),
    key("proxy.max_client_connections", "integer", "10000", "client connections accepted at once; further connections are refused"),
    key("proxy.max_message_size", "size", "\"64MiB\"", "largest protocol message accepted, in bytes or with a unit (kB, MiB, GiB; 1 kB = 1024 bytes)"),
    key("proxy.shutdown_timeout", "duration", "\"30s\"", "how long a graceful shutdown waits for sessions to finish"),
    key("proxy.metrics_listen", "address", "none (not served)", "IP address and port where Prometheus metrics are served over HTTP (GET /metrics); changing it needs a restart"),
    key("proxy.metrics_top_tenants", "integer", "20", "tenants (the busiest by statements) with their own tenant label in the per-tenant metrics; the rest are summed into tenant=\"_other\"; 0-1000"),
    key("proxy.analysis_cache_size", "integer", "10000", "entries in the SQL analysis LRU cache"),
    key("proxy.merge_memory_limit", "size", "256MiB", "bytes one cross-shard merge may hold (GROUP BY groups, DISTINCT keys, buffered rows)"),
    key("proxy.node_id", "integer", "0", "this instance's number 0-1023, unique among pgfleet instances sharing servers (two-phase commit names, ids)"),
    key("pool.pool_mode", "string", "\"transaction\"", "\"transaction\": a server connection returns to the pool after each transaction; \"session\": when the client disconnects"),
    key("pool.pool_size", "integer", "20", "most server connections per (user, database) pool; at least 1"),
    key("pool.min_idle", "integer", "0", "idle server connections kept open per pool; at most pool_size"),
    key("pool.connect_timeout", "duration", "\"5s\"", "limit for opening and authenticating one server connection"),
    key("pool.checkout_timeout", "duration", "\"5s\"", "how long a request waits for a free server connection"),
    key("pool.idle_timeout", "duration", "\"10m\"", "idle server connections are closed after this; \"0s\" = never"),
    key("pool.server_lifetime", "duration", "\"1h\"", "server connections are closed once idle after this age; \"0s\" = unlimited"),
    key("pool.prepared_statements_cache", "integer", "500", "prepared statements remembered per server connection"),
    key("clusters.<name>", "table", "none", "a cluster: one primary and its replicas"),
    key("clusters.<name>.servers", "array", "required", "the cluster's servers, at least one; at most one with role \"primary\""),
    key("clusters.<name>.servers.<index>.host", "string", "required", "host name or IP address"),
    key("clusters.<name>.servers.<index>.port", "integer", "5432", "TCP port, 1-65535"),
    key("clusters.<name>.servers.<index>.role", "string", "\"auto\"", "\"primary\", \"replica\", or \"auto\" (asks the server with pg_is_in_recovery())"),
    key("clusters.<name>.servers.<index>.weight", "integer", "1", "relative share of reads under load_balancing = \"random\"; 0 = reads only when no candidate of weight above 0 qualifies"),
    key("clusters.<name>.load_balancing", "string", "\"round_robin\"", "how a read picks one qualifying replica: \"round_robin\", \"least_connections\" or \"random\" (weighted by each server's weight)"),
    key("clusters.<name>.primary_reads", "string", "\"fallback\"", "\"fallback\": the primary serves reads only when no replica qualifies; \"always\": the primary is one of the read candidates; \"never\": reads fail when no replica qualifies"),
    key("clusters.<name>.max_lag_bytes", "size", "\"16MiB\"", "replicas whose replay LSN is more than this many bytes of WAL behind the primary get no reads"),
    key("clusters.<name>.max_lag_time", "duration", "\"10s\"", "replicas whose replay lag (now() - pg_last_xact_replay_timestamp() while behind) exceeds this get no reads"),
    key("clusters.<name>.health_check_interval", "duration", "\"1s\"", "longest time one monitor probe of a server (role/WAL query; plus pool.connect_timeout when it must log in first) may take before it is banned; probes run every lag_check_interval; more than 0s"),
    key("clusters.<name>.lag_check_interval", "duration", "\"100ms\"", "how often replay LSNs and the primary's WAL LSN are read; more than 0s"),
    key("clusters.<name>.ban_time", "duration", "\"5s\"", "first ban of a server that failed a check or a connect; doubles with each consecutive failure"),
    key("clusters.<name>.max_ban_time", "duration", "\"60s\"", "longest ban (cap of the doubling); at least ban_time"),
    key("clusters.<name>.failover_timeout", "duration", "\"30s\"", "how long writes wait for a primary while none is known, then fail"),
    key("clusters.<name>.ryw_wait", "duration", "\"0s\"", "read-your-writes: how long a read waits for a replica to replay the session's last write before going to the primary"),
    key("clusters.<name>.write_quorum", "integer", "0", "replicas that must replay a writing transaction's commit before COMMIT is answered; at most the cluster's servers minus one"),
    key("clusters.<name>.quorum_timeout", "duration", "\"5s\"", "longest wait for write_quorum replicas"),
    key("clusters.<name>.quorum_timeout_action", "string", "\"error\"", "\"error\" or \"warning\": what the client gets when the quorum is not reached in time (the data is committed on the primary either way)"),
    key("clusters.<name>.read_volatile_allowlist", "array", "see docs/config.md", "volatile functions that do not write; statements calling them may still go to a replica"),
    key("databases.<name>", "table", "none", "a database clients connect to, by this name; \"pgfleet\" is reserved for the admin console"),
    key("databases.<name>.cluster", "string", "required unless `shards` is set", "name of the cluster that holds the database"),
    key("databases.<name>.server_database", "string", "the database's own name", "database name on the servers"),
    key("databases.<name>.shards", "array", "none", "cluster names in shard order: makes the database sharded (instead of `cluster`); no cluster twice"),
    key("databases.<name>.default_shard", "integer", "0", "shard number that holds tables which are neither sharded, reference nor placed"),
    key("databases.<name>.reference_tables", "array", "[]", "tables with a full copy on every shard"),
    key("databases.<name>.sharded_tables.<name>", "table", "none", "a sharded table, by table name"),
    key("databases.<name>.sharded_tables.<name>.column", "string", "required", "the shard key column"),
    key("databases.<name>.sharded_tables.<name>.type", "string", "required", "the shard key column's SQL type: \"bigint\", \"integer\", \"smallint\", \"text\", \"varchar\", \"uuid\", \"date\", \"timestamp\" or \"timestamptz\""),
    key("databases.<name>.sharded_tables.<name>.method", "string", "\"hash\"", "\"hash\" (PostgreSQL's PARTITION BY HASH assignment), \"range\" or \"list\""),
    key("databases.<name>.sharded_tables.<name>.ranges", "array", "required with method = \"range\"", "half-open ranges [from, to), contiguous, each with its shard"),
    key("databases.<name>.sharded_tables.<name>.ranges.<index>.shard", "integer", "required", "shard number of the range"),
    key("databases.<name>.sharded_tables.<name>.ranges.<index>.from", "string", "unbounded", "smallest value in the range"),
    key("databases.<name>.sharded_tables.<name>.ranges.<index>.to", "string", "unbounded", "first value after the range"),
    key("databases.<name>.sharded_tables.<name>.lists", "array", "required with method = \"list\"", "each shard's values; a value belongs to one shard"),
    key("databases.<name>.sharded_tables.<name>.lists.<index>.shard", "integer", "required", "shard number of the values"),
    key("databases.<name>.sharded_tables.<name>.lists.<index>.values", "array", "required", "the values, at least one"),
    key("databases.<name>.sharded_tables.<name>.default_shard", "integer", "none", "method = \"list\": shard for values no list names; without it such values are a routing error"),
    key("databases.<name>.placement.<name>", "table", "none", "a placement group: tables that live on another cluster"),
    key("databases.<name>.placement.<name>.cluster", "string", "required", "the cluster that holds the group's tables"),
    key("databases.<name>.placement.<name>.tables", "array", "required", "table names or globs with `*`, e.g. \"audit_*\"; no table in two groups"),
    key("databases.<name>.pool.pool_mode", "string", DB_OVERRIDE, "pool_mode for this database"),
    key("databases.<name>.pool.pool_size", "integer", DB_OVERRIDE, "pool_size for this database"),
    key("databases.<name>.pool.min_idle", "integer", DB_OVERRIDE, "min_idle for this database"),
    key("databases.<name>.pool.connect_timeout", "duration", DB_OVERRIDE, "connect_timeout for this database"),
    key("databases.<name>.pool.checkout_timeout", "duration", DB_OVERRIDE, "checkout_timeout for this database"),
    key("databases.<name>.pool.idle_timeout", "duration", DB_OVERRIDE, "idle_timeout for this database"),
    key("databases.<name>.pool.server_lifetime", "duration", DB_OVERRIDE, "server_lifetime for this database"),
    key("databases.<name>.pool.prepared_statements_cache", "integer", DB_OVERRIDE, "prepared_statements_cache for this database"),
    key("databases.<name>.tenancy.model", "string", "required", "how tenants are isolated: \"schema\", \"row\" or \"database\""),
    key("databases.<name>.tenancy.identify", "array", "[\"user\", \"startup\", \"set\", \"binding\"]", "ways a session names its tenant, tried in this order"),
    key("databases.<name>.tenancy.required", "boolean", "true", "a session without a tenant gets an error at its first statement"),
    key("databases.<name>.tenancy.schema_template", "string", "\"tenant_{tenant}\"", "schema model: the tenant's schema name"),
    key("databases.<name>.tenancy.shared_schemas", "array", "[\"public\"]", "schema model: schemas appended to every tenant's search_path"),
    key("databases.<name>.tenancy.setting", "string", "\"app.current_tenant\"", "row model: the setting that row-level security policies read"),
    key("databases.<name>.tenancy.tenant_column", "string", "\"tenant_id\"", "row model: the column that holds the tenant"),
    key("databases.<name>.tenancy.database_template", "string", "\"tenant_{tenant}\"", "database model: the tenant's database name"),
    key("databases.<name>.tenancy.tenant_switch", "string", "\"allow\"", "\"allow\" or \"deny\": whether a session may change its tenant"),
    key("databases.<name>.tenancy.admin_roles", "array", "[]", "users allowed statements across tenants"),
    key("databases.<name>.tenancy.max_server_connections", "integer", "0", "most server connections one tenant's sessions hold at once (0 = no cap)"),
    key("databases.<name>.tenancy.statement_timeout", "duration", "none", "statement_timeout forced on every transaction of a tenant session"),
    key("users.<name>", "table", "none", "a user clients log in as, by this name"),
    key("users.<name>.password", "string", "none", "plain text, a SCRAM verifier \"SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>\", or \"md5\" + 32 hex digits; required unless auth_method = \"trust\""),
    key("users.<name>.auth_method", "string", "\"scram-sha-256\"", "\"scram-sha-256\", \"md5\" (needs a plain or md5 password) or \"trust\""),
    key("users.<name>.server_user", "string", "the user's own name", "user name on the PostgreSQL servers"),
    key("users.<name>.server_password", "string", "password, when plain text", "password for the PostgreSQL servers"),
    key("users.<name>.admin", "boolean", "false", "may use the admin console (database \"pgfleet\")"),
    key("users.<name>.default_role", "string", "\"auto\"", "\"auto\": classify each statement; \"primary\": send everything to the primary; \"replica\": send statements to a replica (writes still go to the primary)"),
    key("users.<name>.tenant", "string", "none", "the tenant this user always is (a per-user binding)"),
    key("users.<name>.cross_shard_writes", "boolean", "true", "whether this user may write on several shards in one statement (two-phase commit)"),
    key("users.<name>.default_consistency", "string", "\"eventual\"", "\"eventual\", \"bounded\", \"read_your_writes\" or \"strong\": how stale this user's reads may be"),
    key("users.<name>.pool.pool_mode", "string", USER_OVERRIDE, "pool_mode for this user"),
    key("users.<name>.pool.pool_size", "integer", USER_OVERRIDE, "pool_size for this user"),
    key("users.<name>.pool.min_idle", "integer", USER_OVERRIDE, "min_idle for this user"),
    key("users.<name>.pool.connect_timeout", "duration", USER_OVERRIDE, "connect_timeout for this user"),
    key("users.<name>.pool.checkout_timeout", "duration", USER_OVERRIDE, "checkout_timeout for this user"),
    key("users.<name>.pool.idle_timeout", "duration", USER_OVERRIDE, "idle_timeout for this user"),
    key("users.<name>.pool.server_lifetime", "duration", USER_OVERRIDE, "server_lifetime for this user"),
    key("users.<name>.pool.prepared_statements_cache", "integer", USER_OVERRIDE, "prepared_statements_cache for this user"),
    key("metadata.cluster", "string", "required", "cluster whose primary holds the metadata database"),
    key("metadata.database", "string", "\"pgfleet_meta\"", "name of the metadata database"),
    key("metadata.user", "string", "\"postgres\"", "server login for the metadata database"),
    key("metadata.password", "string", "none", "password for metadata.user"),
];

fn segment_matches(pattern: &str, segment: &str) -> bool {
    (pattern.starts_with('<') && pattern.ends_with('>')) || pattern == segment
}

/// True when the concrete `path` (e.g. `users.app.pool`) matches the pattern (e.g. `users.<name>.pool`).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let s: Vec<&str> = path.split('.').collect();
    p.len() == s.len() && p.iter().zip(&s).all(|(p, s)| segment_matches(p, s))
}

/// "did you mean" for an unknown key path: a known sibling key within edit distance 2, or the
/// same key one table deeper (`users.app.pool_size` → `users.app.pool.pool_size`).
pub(crate) fn suggest(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('.').collect();
    let (last, parents) = segments.split_last()?;
    let prefix_matches = |pattern: &[&str]| {
        pattern.len() > parents.len()
            && pattern
                .iter()
                .zip(parents)
                .all(|(p, s)| segment_matches(p, s))
    };
    let patterns: Vec<Vec<&str>> = KEYS.iter().map(|k| k.path.split('.').collect()).collect();
    let mut best: Option<(usize, &str)> = None;
    for pattern in patterns.iter().filter(|p| prefix_matches(p)) {
        let candidate = pattern[parents.len()];
        if candidate.starts_with('<') {
            continue;
        }
        let distance = edit_distance(last, candidate);
        if distance <= 2 && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    if let Some((_, candidate)) = best {
        return Some(candidate.to_string());
    }
    patterns
        .iter()
        .filter(|p| prefix_matches(p) && p.len() == parents.len() + 2 && p[p.len() - 1] == *last)
        .map(|p| format!("{}.{}.{last}", parents.join("."), p[parents.len()]))
        .next()
}

/// Levenshtein distance over characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md"));

    #[test]
    fn every_key_is_documented() {
        let missing: Vec<&str> = KEYS
            .iter()
            .map(|k| k.path)
            .filter(|p| !DOCS.contains(&format!("`{p}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "keys missing from docs/config.md: {missing:?}"
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("pool.pool_sise").as_deref(), Some("pool_size"));
        assert_eq!(
            suggest("users.app.pool.min_idel").as_deref(),
            Some("min_idle")
        );
        assert_eq!(suggest("proxy.lissen").as_deref(), Some("listen"));
        assert_eq!(
            suggest("clusters.main.servers.0.hots").as_deref(),
            Some("host")
        );
        assert_eq!(
            suggest("users.app.pool_size").as_deref(),
            Some("users.app.pool.pool_size")
        );
        assert_eq!(suggest("pooll").as_deref(), Some("pool"));
        assert_eq!(suggest("proxy.completely_different"), None);
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("pool", "pool"), 0);
    }
}

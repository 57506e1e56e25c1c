//! Where a transaction runs: the primary or a replica. Pure: the session gathers the inputs (the
//! classification of every statement of the request that opens the transaction, its own role
//! override and settings, the volatility catalog) and acts on the answer.

use std::collections::HashSet;

use pgfleet_sql::{Classification, Target, WriteReason};

/// A session's standing choice (`SET pgfleet.role`, `-c pgfleet.role=…`, the user's default_role).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleOverride {
    /// Classify each transaction.
    Auto,
    /// Everything to the primary.
    Primary,
    /// Reads to replicas, also those that call volatile functions (the client vouches for them);
    /// writes still go to the primary.
    Replica,
}

impl RoleOverride {
    /// Parses `auto`, `primary`, `replica` (case-insensitive); anything else is `None`.
    pub fn parse(s: &str) -> Option<RoleOverride> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(RoleOverride::Auto),
            "primary" => Some(RoleOverride::Primary),
            "replica" => Some(RoleOverride::Replica),
            _ => None,
        }
    }
}

/// Functions known not to write, learned from `pg_proc`: every overload is `IMMUTABLE` or
/// `STABLE`. Anything else — a volatile function, or one created since the last refresh — counts as
/// possibly writing, so a new function can never send a write to a replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolatileCatalog {
    /// Non-volatile functions, both as `name` and as `schema.name`, lower-case. An unqualified
    /// name is only listed when every function of that name in every schema is non-volatile.
    pub safe: HashSet<String>,
}

impl VolatileCatalog {
    /// Builds the catalog from (schema, name, every overload non-volatile) rows.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, String, bool)>) -> VolatileCatalog {
        let mut safe = HashSet::new();
        let mut unsafe_bare = HashSet::new();
        for (schema, name, non_volatile) in rows {
            let (schema, name) = (schema.to_lowercase(), name.to_lowercase());
            if non_volatile {
                safe.insert(format!("{schema}.{name}"));
                safe.insert(name);
            } else {
                unsafe_bare.insert(name);
            }
        }
        safe.retain(|n| n.contains('.') || !unsafe_bare.contains(n));
        VolatileCatalog { safe }
    }

    /// Whether a function called as `called` (lower-case, maybe schema-qualified) may write, given
    /// the allowlist of volatile functions known to be read-only (unqualified names).
    pub fn may_write(&self, called: &str, allowlist: &[String]) -> bool {
        let bare = called.rsplit('.').next().unwrap_or(called);
        if allowlist.iter().any(|a| a.eq_ignore_ascii_case(bare)) {
            return false;
        }
        !self.safe.contains(called)
    }
}

/// Everything besides the SQL that decides a route.
#[derive(Clone, Copy, Debug)]
pub struct RouteContext<'a> {
    /// The session's standing choice.
    pub role: RoleOverride,
    /// Volatile functions of the cluster.
    pub volatile: &'a VolatileCatalog,
    /// Volatile functions that are read-only (config).
    pub allowlist: &'a [String],
}

/// Where the request made of these statements' classifications must run, and why (the first
/// reason found), e.g. to explain a primary route in logs. An empty request (a lone Sync) and a
/// request pgfleet cannot see whole go to the primary.
pub fn decide(
    statements: &[&Classification],
    ctx: &RouteContext<'_>,
) -> (Target, Option<WriteReason>) {
    if statements.is_empty() {
        return (
            Target::Primary,
            Some(WriteReason::Other("empty or partial request".into())),
        );
    }
    if ctx.role == RoleOverride::Primary {
        return (Target::Primary, None);
    }
    for c in statements {
        // The classification covers the whole text (every statement of a multi-statement Query):
        // trust it. `BEGIN READ ONLY` is already a replica read there.
        if c.target_with_hint() == Target::Primary {
            return (Target::Primary, c.reason.clone());
        }
        if ctx.role != RoleOverride::Replica {
            if let Some(f) = c
                .functions
                .iter()
                .find(|f| ctx.volatile.may_write(f, ctx.allowlist))
            {
                return (
                    Target::Primary,
                    Some(WriteReason::VolatileFunction(f.clone())),
                );
            }
        }
    }
    (Target::Replica, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgfleet_sql::classify_uncached;

    fn route(sqls: &[&str], role: RoleOverride, volatile: &VolatileCatalog) -> Target {
        let cs: Vec<Classification> = sqls.iter().map(|s| classify_uncached(s)).collect();
        let refs: Vec<&Classification> = cs.iter().collect();
        let allow = vec!["random".to_owned(), "now".to_owned()];
        decide(
            &refs,
            &RouteContext {
                role,
                volatile,
                allowlist: &allow,
            },
        )
        .0
    }

    #[test]
    fn routes() {
        let cat = VolatileCatalog::from_rows([
            ("public".to_owned(), "bump".to_owned(), false),
            ("pg_catalog".to_owned(), "random".to_owned(), false),
            ("pg_catalog".to_owned(), "nextval".to_owned(), false),
            ("pg_catalog".to_owned(), "length".to_owned(), true),
            ("pg_catalog".to_owned(), "lower".to_owned(), true),
            ("evil".to_owned(), "lower".to_owned(), false),
        ]);
        use RoleOverride::{Auto, Replica as ForceReplica};
        use Target::{Primary, Replica};
        let cases: &[(&[&str], RoleOverride, Target)] = &[
            (&["SELECT 1"], Auto, Replica),
            (&["SELECT * FROM t WHERE id = $1"], Auto, Replica),
            (&["SELECT 1"], RoleOverride::Primary, Primary),
            (&["SELECT bump()"], Auto, Primary),
            (&["SELECT bump()"], ForceReplica, Replica),
            (&["SELECT random()"], Auto, Replica),
            (&["SELECT length('x')"], Auto, Replica),
            (&["SELECT 1", "INSERT INTO t VALUES (1)"], Auto, Primary),
            (&["INSERT INTO t VALUES (1)"], ForceReplica, Primary),
            (&["BEGIN READ ONLY"], Auto, Replica),
            (&["BEGIN READ ONLY; COMMIT; DELETE FROM t"], Auto, Primary),
            (
                &["BEGIN READ ONLY; SELECT pg_advisory_lock(1)"],
                Auto,
                Primary,
            ),
            (&["BEGIN"], Auto, Primary),
            (&["/* pgfleet: role=primary */ SELECT 1"], Auto, Primary),
            (
                &["/* pgfleet: role=replica */ DELETE FROM t"],
                Auto,
                Primary,
            ),
            (&[], Auto, Primary),
        ];
        for (sqls, role, want) in cases {
            assert_eq!(route(sqls, *role, &cat), *want, "{sqls:?} {role:?}");
        }
        // Before the catalog is loaded, any non-allowlisted function call goes to the primary.
        assert_eq!(
            route(&["SELECT length('x')"], Auto, &VolatileCatalog::default()),
            Primary
        );
        assert_eq!(
            route(&["SELECT now()"], Auto, &VolatileCatalog::default()),
            Replica
        );
    }
}

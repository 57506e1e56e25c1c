//! What a tenant's transactions run under and what its statements may not do. Pure.
//!
//! The context is a list of *forced settings*: values pgfleet puts among the session's wanted
//! settings before every transaction, so the settings sync sets them on whichever server runs it
//! (in transaction pooling too), and that the client may not change (the guard refuses `SET`,
//! `RESET` and `set_config` of them).

use pgfleet_config::{TenancyConfig, TenantModel};
use pgfleet_sql::tenant_guard::TenantRules;

/// Settings no tenant session may change whatever the model: changing the server role would
/// escape row-level security and schema privileges.
const ROLE_SETTINGS: &[&str] = &["role", "session_authorization"];

/// The directory facts the context needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// Schema model: the tenant's schema as the directory has it.
    pub schema: Option<&'a str>,
    /// Sharded databases: the tenant's shard.
    pub shard: Option<i32>,
}

/// A session's tenant context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// (setting, value) pairs set before every transaction.
    pub forced: Vec<(String, String)>,
    /// What the guard refuses (`None`: nothing, an admin role).
    pub rules: Option<TenantRules>,
}

/// The context of a session of `t`'s database: `placement` is its tenant (`None`: no tenant),
/// `sharded` whether the database has a shard router, `admin` whether the user is in
/// `admin_roles` (its statements are not restricted), `switch_refused` why `SET pgfleet.tenant`
/// is refused now.
pub fn context(
    t: &TenancyConfig,
    placement: Option<&Placement<'_>>,
    sharded: bool,
    admin: bool,
    switch_refused: Option<String>,
) -> Context {
    let mut forced = Vec::new();
    let mut own_schemas = Vec::new();
    if let Some(p) = placement {
        match t.model {
            TenantModel::Schema => {
                let schema = p
                    .schema
                    .map_or_else(|| t.schema_for(p.tenant), str::to_owned);
                let mut path = vec![schema.clone()];
                path.extend(t.shared_schemas.iter().cloned());
                forced.push(("search_path".to_owned(), path.join(", ")));
                own_schemas.push(schema);
            }
            TenantModel::Row => forced.push((t.setting.to_ascii_lowercase(), p.tenant.to_owned())),
            TenantModel::Database => {}
        }
        // A `database`-model tenant's own database is whole on its shard's cluster: the
        // session goes there directly instead of routing by shard.
        let own_database = t.model == TenantModel::Database;
        if let (true, Some(shard), false) = (sharded, p.shard, own_database) {
            forced.push(("pgfleet.shard".to_owned(), shard.to_string()));
        }
        if let Some(d) = t.statement_timeout {
            forced.push((
                "statement_timeout".to_owned(),
                format!("{}ms", d.as_millis()),
            ));
        }
    }
    if admin {
        return Context {
            forced,
            rules: None,
        };
    }
    let mut protected: Vec<String> = ROLE_SETTINGS.iter().map(|s| (*s).to_owned()).collect();
    // The model's own setting is protected even without a tenant: a session without one must not
    // make itself somebody.
    match t.model {
        TenantModel::Schema => protected.push("search_path".to_owned()),
        TenantModel::Row => protected.push(t.setting.to_ascii_lowercase()),
        TenantModel::Database => {}
    }
    for (name, _) in &forced {
        if !protected.contains(name) {
            protected.push(name.clone());
        }
    }
    let pinned_shard = forced.iter().any(|(n, _)| n == "pgfleet.shard");
    if pinned_shard {
        protected.push("pgfleet.shard_key".to_owned());
    }
    Context {
        forced,
        rules: Some(TenantRules {
            tenant: placement.map(|p| p.tenant.to_owned()),
            protected,
            own_schemas,
            tenant_switch_refused: switch_refused,
            pinned_shard,
            shared_rows: t.model == TenantModel::Row,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_model_forces_search_path() {
        let mut t = TenancyConfig::with_model(TenantModel::Schema);
        t.shared_schemas = vec!["public".into(), "ref".into()];
        let p = Placement {
            tenant: "acme",
            schema: None,
            shard: Some(1),
        };
        let c = context(&t, Some(&p), true, false, None);
        assert_eq!(
            c.forced,
            vec![
                (
                    "search_path".to_owned(),
                    "tenant_acme, public, ref".to_owned()
                ),
                ("pgfleet.shard".to_owned(), "1".to_owned()),
            ]
        );
        let rules = c.rules.unwrap();
        assert!(rules.protected.contains(&"pgfleet.shard_key".to_owned()));
        assert_eq!(rules.own_schemas, vec!["tenant_acme".to_owned()]);
    }

    #[test]
    fn row_model_forces_setting_and_admin_is_free() {
        let mut t = TenancyConfig::with_model(TenantModel::Row);
        t.statement_timeout = Some(std::time::Duration::from_secs(2));
        let p = Placement {
            tenant: "acme",
            schema: None,
            shard: None,
        };
        let c = context(&t, Some(&p), false, false, None);
        assert_eq!(c.forced[0], ("app.current_tenant".into(), "acme".into()));
        assert_eq!(c.forced[1], ("statement_timeout".into(), "2000ms".into()));
        assert!(context(&t, Some(&p), false, true, None).rules.is_none());
        let none = context(&t, None, false, false, None);
        assert!(none.forced.is_empty());
        assert!(none
            .rules
            .unwrap()
            .protected
            .contains(&"app.current_tenant".to_owned()));
    }
}
